"""Read the claim-5 recipe study (runs/claim5_recipes.toml) and apply its verdict rule.

    python benchmarks/claim5_recipes.py runs/claim5-store

Per run (recipe, seed): rlscale's sigmoid fit of eval/mean@8 against RL FLOPs (A, B, C_mid),
the median train/clip_frac and train/ratio_dev over its steps (do the recipes' clipping and
truncation act?). Then, per parameter P in {A, B, log10 C_mid}: the one-way ANOVA F of P across
the recipes (scipy.stats.f_oneway), the spread of the recipe means beside the pooled
within-recipe (seed) standard deviation, and the rule of the spec's header: claim 5 is
SUPPORTED if B and/or C_mid move (p < 0.05) and A does not; REFUTED if A moves, or if neither B
nor C_mid moves; runs whose fit is not ok (including a fit that says its asymptote is not
identified, whose A is a bound rather than an estimate) are dropped and counted, and a recipe with fewer than
3 fitted runs makes it "not testable here".

The compute axis is RL FLOPs (``flops``), fixed before any fit was read: the store's gpu_hours
are CPU wall-hours on a machine shared with other jobs, so they would measure the contention,
not the recipe. Prints Markdown tables and the verdict. Not a test: it reads a finished store.
"""

from __future__ import annotations

import math
import sys
import warnings

import pandas as pd

from rlscale.analysis.claims import recipe_effects, recipe_verdict
from rlscale.fit import fit
from rlscale.store import Store
from rlscale.store.frames import load_points
from rlscale.text import markdown_table

METRIC, X = "eval/mean@8", "flops"




def per_run(root: str) -> pd.DataFrame:
    pts = load_points(Store(root), with_meta=True)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = fit(pts[pts["metric"] == METRIC], metric=METRIC, x=X, by="run_id")
    for f in fits:
        rid = f.group["run_id"]
        meta = pts[pts["run_id"] == rid].iloc[0]
        train = pts[pts["run_id"] == rid]
        row = {"run_id": rid, "recipe": meta.get("recipe"), "seed": int(rid.rsplit("-s", 1)[1]),
               "ok": bool(f.ok) and not any(w.code == "asymptote_not_identified"
                                             for w in f.warnings),
               "warnings": ",".join(w.code for w in f.warnings)}
        for name in ("A", "B", "C_mid"):
            row[name] = float(f.params[name].value) if name in f.params else math.nan
        row["log10 C_mid"] = math.log10(row["C_mid"]) if row["C_mid"] > 0 else math.nan
        for m in ("train/clip_frac", "train/ratio_dev"):
            v = train.loc[train["metric"] == m, "value"]
            row[m.split("/")[1]] = float(v.median()) if len(v) else math.nan
        ev = train[train["metric"] == METRIC].sort_values("step")["value"].to_numpy()
        row["first"], row["last3"] = float(ev[0]), float(ev[-3:].mean())
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["recipe", "seed"]).reset_index(drop=True)


def main(root: str) -> None:
    runs = per_run(root)
    cols = ["recipe", "seed", "ok", "A", "B", "C_mid", "first", "last3", "clip_frac",
            "ratio_dev", "warnings"]
    print(markdown_table(runs[cols]))
    print(f"\nfits not ok (dropped): {int((~runs['ok']).sum())} of {len(runs)}")
    means = runs[runs["ok"]].groupby("recipe")[["A", "B", "log10 C_mid"]].agg(["mean", "std"])
    means.columns = [f"{a} {b}" for a, b in means.columns]
    print("\n" + markdown_table(means.reset_index()))
    table = recipe_effects(runs)
    print("\n" + markdown_table(table))
    print(f"\nverdict: {recipe_verdict(runs, table)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[2].strip())
    main(sys.argv[1])
