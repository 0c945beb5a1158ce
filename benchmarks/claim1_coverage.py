"""Read the claim-1 coverage x amount study (runs/claim1_coverage_amount.toml) and apply its rule.

    python benchmarks/claim1_coverage.py runs/claim1-store [MORE_STORES...]

(Several stores are read as one: the RL seed-1 runs may have been made by a second sweep of the
same spec with ``seeds = [1]`` into a store of their own, beside the first.)

Per run (pretraining tokens, coverage ops_max, pretraining seed, RL seed): A from rlscale's
sigmoid fit of eval/mean@8 against RL FLOPs (a run whose fit is not ok gets A = the mean of its
last 3 evaluations, flagged; "not ok" includes a fit that says its asymptote is not identified,
``asymptote_not_identified``, since its A is then a bound, not an estimate: a run that never
earns reward fits "ok" with A at the bound 1), and the base-only prediction, the run's eval/pass@8 at step 0
(:func:`rlscale.analysis.ceiling_prediction.base_prediction`). Per cell (tokens x ops_max, 4
runs): the mean A and its standard error. Then the rule of the spec's header: supported if A
rises with coverage (2->3, 3->4) at every amount and with amount (5M->10M->20M) at every
coverage, each step beyond 2 standard errors of the difference (ordering_steps, z = 2), and the
prediction ranks the 9 cells with Spearman >= 0.8; refuted if any step goes down beyond 2 SE or
Spearman < 0.5; otherwise partly supported, naming what holds. Prints Markdown tables and the
verdict. Not a test: it reads a finished store.
"""

from __future__ import annotations

import math
import re
import sys
import warnings

import numpy as np
import pandas as pd

from rlscale.analysis.ceiling_prediction import base_prediction, check_prediction, ordering_steps
from rlscale.analysis.claims import coverage_amount_verdict
from rlscale.fit import fit
from rlscale.store import Store
from rlscale.store.frames import load_points
from rlscale.text import markdown_table

METRIC, X = "eval/mean@8", "flops"
RUN = re.compile(r"tokens=(\d+)-ops_max=(\d+)-seed=(\d+)-s(\d+)$")




def per_run(roots: list[str]) -> pd.DataFrame:
    pts = pd.concat([load_points(Store(r)) for r in roots], ignore_index=True)
    if pts["run_id"].nunique() != sum(len(Store(r).run_ids()) for r in roots):
        sys.exit(f"a run id appears in more than one of {roots}")
    pred = base_prediction(pts, metric="eval/pass@8")
    pass1 = base_prediction(pts, metric=METRIC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = fit(pts[pts["metric"] == METRIC], metric=METRIC, x=X, by="run_id")
    rows = []
    for f in fits:
        rid = f.group["run_id"]
        m = RUN.search(rid)
        ev = pts[(pts["run_id"] == rid) & (pts["metric"] == METRIC)].sort_values("step")
        last3 = float(ev["value"].to_numpy()[-3:].mean())
        codes = {w.code for w in f.warnings}
        ok = bool(f.ok) and "A" in f.params and "asymptote_not_identified" not in codes
        a = float(f.params["A"].value) if ok else last3
        rows.append({"tokens": int(m[1]), "ops_max": int(m[2]), "pt_seed": int(m[3]),
                     "rl_seed": int(m[4]), "fit_ok": ok,
                     "A": a, "A_flag": "" if ok else "last-3 mean",
                     "last3": last3, "base_pass8": float(pred[rid]),
                     "base_pass1": float(pass1[rid]), "steps": int(ev["step"].max()),
                     "warnings": ",".join(w.code for w in f.warnings)})
    return pd.DataFrame(rows).sort_values(["tokens", "ops_max", "pt_seed", "rl_seed"])


def main(roots: list[str]) -> None:
    runs = per_run(roots)
    print(markdown_table(runs))
    cells = runs.groupby(["tokens", "ops_max"]).agg(
        runs=("A", "size"), A=("A", "mean"), A_sd=("A", "std"), base_pass8=("base_pass8", "mean"),
        base_pass1=("base_pass1", "mean"), flagged=("fit_ok", lambda v: int((~v).sum())))
    cells["A_se"] = cells["A_sd"] / np.sqrt(cells["runs"])
    cells = cells.reset_index()
    print("\n" + markdown_table(cells))
    cov = ordering_steps(runs, along="ops_max", within="tokens")
    amt = ordering_steps(runs, along="tokens", within="ops_max")
    print("\ncoverage steps (within each amount):\n" + markdown_table(cov))
    print("\namount steps (within each coverage):\n" + markdown_table(amt))
    chk = check_prediction(cells["base_pass8"], cells["A"]) if len(cells) >= 3 else None
    print(f"\nprediction (base pass@8 at step 0) vs cell A: {chk}")
    full = len(cells) == 9 and bool((cells["runs"] == 4).all())
    a = cells.set_index(["tokens", "ops_max"])["A"]
    if {(20_000_000, 4), (20_000_000, 2), (5_000_000, 4), (5_000_000, 2)} <= set(a.index):
        inter = (a[(20_000_000, 4)] - a[(20_000_000, 2)]) - (a[(5_000_000, 4)] - a[(5_000_000, 2)])
        print(f"interaction: coverage effect A(ops 4) - A(ops 2) at 20M minus at 5M = {inter:+.4f}")
    rho = chk["spearman"] if chk else math.nan
    print(f"\nverdict: {coverage_amount_verdict(cov, amt, rho, complete=full)} ({len(runs)} of 36 "
          "runs)")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.splitlines()[2].strip())
    main(sys.argv[1:])
