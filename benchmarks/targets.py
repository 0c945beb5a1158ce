"""Compute to reach a target: how far `rlscale forecast --target` can be trusted on real curves.

For every curve of ``../shared/real-curves/curves.csv`` and each cut (the first 30% and 50% of
its compute range), the law is fitted on the points up to the cut (default options, as
``rlscale forecast``) and asked for the compute that reaches a target reward
(:func:`rlscale.forecast.compute_for_reward`, 90% intervals). The targets come from the rest of
the run, read without a model through a trailing median of 5 points (one noisy evaluation does
not count as reaching a target):

* **reached** targets, where the run gained more than twice its wobble (the verdict's ``tol``)
  after the cut: the level before the cut (median of its last 5 points) plus 50% and 90% of the
  largest later gain. The truth is the first compute past the cut where the median reaches it;
* one **unreached** target per curve, the largest later median plus twice the wobble: the right
  answer is "not within this run's compute" (a forecast past the run's last compute, or never).

Per cut it prints, for the reached targets, the median of ``|log10(forecast / truth)|``, the
share forecast within a factor of 2, the share whose 90% interval holds the truth, and how many
were called unreachable (``never`` / ``uncertain``, or an infinite forecast); for the unreached
targets, the share the forecast places beyond the run. Beside the law, in the same run, the
naive answer: the straight line in log-compute through the points before the cut
(:mod:`rlscale.forecast.baselines`, ``log-linear``), solved for the target.

    python benchmarks/targets.py
    python benchmarks/targets.py --per-target
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extrapolation import add_curve_arguments, curve_paths, load_curves  # noqa: E402
from rlscale.fit import fit  # noqa: E402
from rlscale.forecast.budgets import compute_for_reward  # noqa: E402
from rlscale.forecast.verdict import verdict  # noqa: E402

CUTS = (0.3, 0.5)
SHARES = (0.5, 0.9)
K = 5
LEVEL = 0.9


def log_linear_x(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """Where the least-squares line in log-compute through (x, y) reaches ``target`` (inf when
    it does not rise)."""
    keep = x > 0
    lx, yy = np.log(x[keep]), y[keep]
    if lx.size < 3 or np.ptp(lx) == 0:
        return math.nan
    slope, icpt = np.polyfit(lx, yy, 1)
    if slope <= 0:
        return math.inf
    return float(np.exp((target - icpt) / slope))


def evaluate(curves, cuts) -> pd.DataFrame:
    rows = []
    for _source, name, df in curves:
        x, y = df["x"].to_numpy(float), df["y"].to_numpy(float)
        smooth = pd.Series(y).rolling(K, min_periods=K).median().to_numpy()
        lo, hi = float(x.min()), float(x.max())
        for cut in cuts:
            cx = lo + cut * (hi - lo)
            before_mask, after = x <= cx, x > cx
            if before_mask.sum() < 8 or after.sum() < K:
                continue
            frame = pd.DataFrame({"run_id": "run", "metric": "reward", "step": x[before_mask],
                                  "gpu_hours": x[before_mask], "value": y[before_mask]})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = fit(frame, metric="reward", x="gpu_hours")
                tol = verdict(f).tol
            if not f.ok or not np.isfinite(tol):
                continue
            before = float(np.median(y[before_mask][-K:]))
            later = smooth[after]
            top = float(np.nanmax(later))
            gain = top - before
            targets = [(f"{s:.0%} of the later gain", before + s * gain, True)
                       for s in SHARES] if gain > 2 * tol else []
            targets.append(("unreached", top + 2 * tol, False))
            for label, target, reached in targets:
                truth = float(x[after][np.argmax(later >= target)]) if reached else math.inf
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = compute_for_reward(f, target, level=LEVEL).iloc[0]
                rows.append({"curve": name, "cut": cut, "target": label, "level": target,
                             "reached": reached,
                             "truth": truth, "x_end": hi, "law": float(r["x"]),
                             "law_lower": float(r["x_lower"]), "law_upper": float(r["x_upper"]),
                             "status": r["status"],
                             "loglin": log_linear_x(x[before_mask], y[before_mask], target)})
    return pd.DataFrame(rows)


def _reached_scores(r: pd.DataFrame, col: str) -> dict[str, float]:
    """For reached targets: the median |log10(forecast / truth)| over finite forecasts, the share
    within a factor of 2 (an infinite forecast is not), and how many were infinite."""
    pred = r[col].to_numpy(float)
    finite = np.isfinite(pred) & (pred > 0)
    err = np.full(pred.shape, np.inf)
    err[finite] = np.abs(np.log10(pred[finite] / r["truth"].to_numpy(float)[finite]))
    return {"n": len(r), "unreachable": int((~finite).sum()),
            "med_log10": float(np.median(err[finite])) if finite.any() else math.nan,
            "within2": float(np.mean(err <= math.log10(2))) if len(r) else math.nan}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_curve_arguments(ap, CUTS)
    ap.add_argument("--per-target", action="store_true")
    args = ap.parse_args()
    paths = curve_paths(args.curves)
    curves = load_curves(paths)
    if not curves:
        print(f"no curves found in {[str(p) for p in paths]}", file=sys.stderr)
        return 1
    res = evaluate(curves, tuple(float(c) for c in args.cuts.split(",")))
    print(f"compute to a target on {res['curve'].nunique()} curves "
          f"({', '.join(p.name for p in paths)}); law fitted up to the cut, {LEVEL:.0%} intervals")
    print(f"{'cut':>4} {'targets':<10} {'n':>3} {'method':<11} {'med |log10|':>11} "
          f"{'within 2x':>9} {'said unreachable':>16} {'90% holds':>9}")
    for cut in sorted(res["cut"].unique()):
        r = res[(res["cut"] == cut) & res["reached"]]
        for col, label in (("law", "law"), ("loglin", "log-linear")):
            s = _reached_scores(r, col)
            cover = ""
            if col == "law":
                inside = (r["law_lower"] <= r["truth"]) & (r["truth"] <= r["law_upper"])
                cover = f"{inside.mean():.2f}" if len(r) else "-"
            print(f"{cut:>4.1f} {'reached':<10} {s['n']:>3} {label:<11} {s['med_log10']:>11.2f} "
                  f"{s['within2']:>9.2f} {s['unreachable']:>16} {cover:>9}")
        u = res[(res["cut"] == cut) & ~res["reached"]]
        for col, label in (("law", "law"), ("loglin", "log-linear")):
            beyond = (u[col].to_numpy(float) > u["x_end"].to_numpy(float)) | \
                ~np.isfinite(u[col].to_numpy(float))
            print(f"{cut:>4.1f} {'unreached':<10} {len(u):>3} {label:<11} "
                  f"{'placed beyond the run: ' + format(beyond.mean(), '.2f'):>38}")
    if args.per_target:
        print(res.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
