"""Coverage of the 95% interval for A on simulated ScaleRL curves (Table 1, first recipe).

Scenarios: iid noise (sd 0.01) and AR(1) noise (rho 0.7, marginal sd 0.01), the kind training
curves show. For each, the share of replicates whose interval holds the true A, for: Wald without
the AR(1) widening (what a plain covariance gives), Wald with it (the default), the profile
interval, and a 200-resample bootstrap (block bootstrap when residuals are autocorrelated).

    python benchmarks/fit_coverage.py [--reps 200]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlscale.fit import fit  # noqa: E402
from rlscale.fit.uncertainty import inflation  # noqa: E402
from tests.fitsim import TABLE1, ar1_noise, curve  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="replicates per scenario")
    args = ap.parse_args()
    A, B, C_mid, R0 = TABLE1[0]
    for label, rho in (("iid noise", 0.0), ("AR(1) noise, rho=0.7", 0.7)):
        rng = np.random.default_rng(1)
        hits = {"wald (no AR(1) widening)": [], "wald-ar1 (default)": [], "profile": [],
                "bootstrap 200": []}
        t0 = time.perf_counter()
        for _ in range(args.reps):
            noise = ar1_noise(rng, 75, rho, 0.01) if rho else None
            df = curve(A, B, C_mid, R0, rng=rng, noise=noise)
            w = fit(df)
            p = w.params["A"]
            half = (p.upper - p.lower) / 2 / math.sqrt(inflation(w.resid_ar1))
            hits["wald (no AR(1) widening)"].append(abs(p.value - A) <= half)
            hits["wald-ar1 (default)"].append(p.lower <= A <= p.upper)
            pr = fit(df, interval="profile").params["A"]
            hits["profile"].append(pr.lower <= A <= pr.upper)
            bs = fit(df, bootstrap=200).params["A"]
            hits["bootstrap 200"].append(bs.lower <= A <= bs.upper)
        print(f"{label} ({args.reps} replicates, {time.perf_counter() - t0:.0f} s):")
        for k, v in hits.items():
            print(f"    {k:28s} covers A in {100 * np.mean(v):5.1f}% (nominal 95%)")


if __name__ == "__main__":
    main()
