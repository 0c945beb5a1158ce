"""Has my run plateaued? How often the verdict is right on real curves, against naive rules.

For every curve of ``../shared/real-curves/curves.csv`` and each cut (the first 30%, 50% and 70%
of its compute range), the fit sees only the points up to the cut and gives its verdict
(:func:`rlscale.forecast.verdict`): still rising, plateaued or declining. What happened next is
read from the rest of the run, without any model: the change from the median of the last 5
points before the cut to the median of the run's last 5 points, in the metric's good direction,
measured in the verdict's own ``tol`` (what the curve already wobbles by):

* **rose**: it gained more than ``tol`` afterwards; the right verdict was *still rising*;
* **flat**: it moved by at most ``tol``; the right verdict was *plateaued*;
* **fell**: it lost more than ``tol``; the right verdict was *declining*.

It prints, per cut, the verdicts against the outcomes (a confusion table), the share right, and
the costly error for a user deciding whether to stop a run: **plateaued, but it rose** by more
than its wobble afterwards. Beside it, measured in the same run, two naive rules: *always still
rising* (most RL runs rise) and *the last stretch's slope alone* (the verdict's own trend, no
law: rising / flat / falling by its interval), so the law's part of the verdict has to earn its
keep.

    python benchmarks/verdicts.py                 # the real curves
    python benchmarks/verdicts.py --per-curve     # plus one line per curve and cut
    python benchmarks/verdicts.py --sim 25        # plus simulated ScaleRL curves (the law exact)
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extrapolation import (  # noqa: E402
    CUTS,
    add_curve_arguments,
    curve_paths,
    load_curves,
    sim_curves,
)
from rlscale.fit import fit  # noqa: E402
from rlscale.forecast.verdict import verdict  # noqa: E402

OUTCOMES = ("rose", "flat", "fell")
RIGHT = {"still rising": "rose", "plateaued": "flat", "declining": "fell"}
END_K = 5


def outcome(change: float, tol: float) -> str:
    """What happened after the cut: ``change`` in the good direction, against ``tol``."""
    if change > tol:
        return "rose"
    if change < -tol:
        return "fell"
    return "flat"


def trend_word(trend: str) -> str:
    """The last stretch's slope alone, as a verdict."""
    return {"improving": "still rising", "flat": "plateaued", "worsening": "declining"}[trend]


def evaluate(curves, cuts) -> pd.DataFrame:
    rows = []
    for _source, name, df in curves:
        x, y = df["x"].to_numpy(float), df["y"].to_numpy(float)
        lo, hi = float(x.min()), float(x.max())
        for cut in cuts:
            cx = lo + cut * (hi - lo)
            train = df[x <= cx]
            if len(train) < 8 or (x > cx).sum() < END_K:
                continue
            frame = pd.DataFrame({"run_id": "run", "metric": "reward", "step": train["x"],
                                  "gpu_hours": train["x"], "value": train["y"]})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                v = verdict(fit(frame, metric="reward", x="gpu_hours"))
            if v.verdict not in RIGHT or not np.isfinite(v.tol):
                rows.append({"curve": name, "cut": cut, "verdict": v.verdict, "outcome": None})
                continue
            end = float(np.median(y[-END_K:]))
            before = float(np.median(train["y"].to_numpy(float)[-END_K:]))
            change = v.direction * (end - before)
            slope = "improving" if v.recent_change_lower > 0 else \
                "worsening" if v.recent_change_upper < 0 else "flat"
            if v.direction < 0:
                slope = {"improving": "worsening", "worsening": "improving"}.get(slope, slope)
            rows.append({"curve": name, "cut": cut, "verdict": v.verdict,
                         "slope": trend_word(slope), "outcome": outcome(change, v.tol),
                         "change_in_tol": change / v.tol})
    return pd.DataFrame(rows)


def score(res: pd.DataFrame, col: str) -> dict[str, float]:
    said = res[col]
    right = said.map(RIGHT) == res["outcome"]
    stop = said == "plateaued"
    return {"right": float(right.mean()), "n": int(len(res)),
            "plateaued": int(stop.sum()),
            "plateaued_but_rose": int((stop & (res["outcome"] == "rose")).sum()),
            "rising_but_not": int(((said == "still rising") & (res["outcome"] != "rose")).sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_curve_arguments(ap, CUTS)
    ap.add_argument("--per-curve", action="store_true")
    ap.add_argument("--sim", type=int, default=0, help="simulated curves per noise kind")
    args = ap.parse_args()
    paths = curve_paths(args.curves)
    cuts = tuple(float(c) for c in args.cuts.split(","))
    sets = [(", ".join(p.name for p in paths), load_curves(paths))]
    if args.sim:
        sets.append((f"simulated ScaleRL curves ({args.sim} iid + {args.sim} AR(1))",
                     sim_curves(args.sim)))
    sets = [(t, c) for t, c in sets if c]
    if not sets:
        print(f"no curves found in {[str(p) for p in paths]}", file=sys.stderr)
        return 1
    for title, curves in sets:
        report(title, evaluate(curves, cuts), per_curve=args.per_curve)
    return 0


def report(title: str, res: pd.DataFrame, *, per_curve: bool) -> None:
    unknown = res["outcome"].isna()
    if unknown.any():
        print(f"{int(unknown.sum())} fits gave no verdict: "
              f"{res.loc[unknown, 'verdict'].value_counts().to_dict()}")
    res = res[~unknown].assign(always="still rising")
    print(f"\nverdicts on {res['curve'].nunique()} curves ({title}): fit up to the cut, "
          "outcome from the rest")
    for cut in sorted(res["cut"].unique()):
        r = res[res["cut"] == cut]
        print(f"\ncut {cut:.1f}: {len(r)} curves; outcomes "
              + ", ".join(f"{o} {int((r['outcome'] == o).sum())}" for o in OUTCOMES))
        table = pd.crosstab(r["verdict"], r["outcome"]).reindex(columns=list(OUTCOMES),
                                                                 fill_value=0)
        print(table.to_string())
        print(f"{'rule':<22} {'right':>6} {'said plateaued':>15} {'...but it rose':>15} "
              f"{'said rising, did not':>21}")
        for label, col in (("verdict", "verdict"), ("last stretch alone", "slope"),
                           ("always still rising", "always")):
            s = score(r, col)
            print(f"{label:<22} {s['right']:>6.2f} {s['plateaued']:>15} "
                  f"{s['plateaued_but_rose']:>15} {s['rising_but_not']:>21}")
    print("\nall cuts:")
    for label, col in (("verdict", "verdict"), ("last stretch alone", "slope"),
                       ("always still rising", "always")):
        s = score(res, col)
        print(f"  {label:<22} right {s['right']:.2f} of {s['n']}; said plateaued "
              f"{s['plateaued']}, of which rose afterwards {s['plateaued_but_rose']}")
    if per_curve:
        print(res.drop(columns="always").round(2).to_string(index=False))


if __name__ == "__main__":
    raise SystemExit(main())
