"""Leave-largest-out across model size on simulated stores: does the scale-law forecast beat
"the largest fitted size's curve, unchanged", and do its intervals cover?

Two kinds of store (``tests/_scale_sim.py``: five sizes 0.5B-14B, two seeds each, ScaleRL-like
laws of A, C_mid, R0 in the size): ``holds``, where the laws are right, and ``plateau``, where the
14B model gains nothing over 7B (the laws fitted on the smaller sizes are then wrong). Per kind
and noise level it prints, over ``--stores`` seeds, the median and worst ``vs_naive`` (the
forecast's mean |err| / the naive one's; below 1 beats it), how many stores it beats, the mean
coverage of the 50/80/90% prediction intervals, and the median ratio to the held-out size's own
fit (1 is the noise floor).

    python benchmarks/scale_backtest.py --stores 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rlscale.forecast.scale_forecast import fit_scales, scale_backtest  # noqa: E402
from rlscale.store import load_points  # noqa: E402
from tests._scale_sim import make_scale_store  # noqa: E402


def one(kind: str, noise: float, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        make_scale_store(Path(tmp) / "st", noise=noise, seed=seed,
                         plateau_after=7e9 if kind == "plateau" else None)
        points = load_points(Path(tmp) / "st", with_meta=True)
        fits = fit_scales(points, key="model_params", metric="reward", x="gpu_hours", level=0.9)
        return scale_backtest(fits, key="model_params", metric="reward",
                              x_axis="gpu_hours").summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=int, default=10, help="simulated stores per kind and noise")
    ap.add_argument("--noise", default="0.01,0.02", help="noise sd(s), comma-separated")
    args = ap.parse_args()
    print(f"{'kind':>8} {'noise':>6} {'vs_naive med':>12} {'worst':>7} {'beats':>6} "
          f"{'cov50':>6} {'cov80':>6} {'cov90':>6} {'/own fit':>8}")
    for kind in ("holds", "plateau"):
        for noise in (float(v) for v in args.noise.split(",")):
            rows = [one(kind, noise, s) for s in range(args.stores)]
            vs = np.array([r["vs_naive"] for r in rows])
            own = np.median([r["mae"] / r["mae_own_fit"] for r in rows])
            cov = [np.mean([r[f"coverage@{lv}"] for r in rows]) for lv in ("0.5", "0.8", "0.9")]
            print(f"{kind:>8} {noise:>6g} {np.median(vs):>12.3f} {vs.max():>7.3f} "
                  f"{int((vs < 1).sum()):>3}/{len(vs):<2} {cov[0]:>6.2f} {cov[1]:>6.2f} "
                  f"{cov[2]:>6.2f} {own:>8.2f}")


if __name__ == "__main__":
    main()
