"""Predict the RL ceiling A from the base alone, and check the prediction against fitted A.

Claim 1 says the ceiling A that RL reaches follows pretraining. If so, something measured on the
base before any RL update should rank the ceilings. The predictor used here is the base's
verified pass@k on the held-out evaluation, averaged over its difficulties (each difficulty has
the same number of problems, so this is the runner's ``eval/pass@k``), read at the run's first
evaluation (step 0: the base, before RL). :func:`base_prediction` reads it per run;
:func:`check_prediction` compares predicted with fitted ceilings per cell (Pearson, Spearman,
mean absolute error, bias); :func:`ordering_steps` tells whether A rises along one dial at every
level of the other by more than the seed spread (two standard errors of the difference).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from rlscale.errors import input_error


def base_prediction(points: pd.DataFrame, *, metric: str = "eval/pass@8") -> pd.Series:
    """Per run id, ``metric`` at the run's first step (step 0: the base before any RL update)."""
    rows = points[points["metric"] == metric]
    if rows.empty:
        raise input_error(f"no points for metric {metric!r}", field="metric",
                          expected="a metric the runs log at step 0, e.g. eval/pass@8")
    first = rows.sort_values("step").groupby("run_id", sort=True).first()
    late = first[first["step"] != 0]
    if not late.empty:
        raise input_error(f"run {late.index[0]!r} has no {metric} at step 0 (first at step "
                          f"{int(late['step'].iloc[0])})", field="metric",
                          expected="runs evaluated before their first update")
    return first["value"].rename("predicted")


def _corr(a: np.ndarray, b: np.ndarray, kind: str) -> float:
    if np.std(a) == 0 or np.std(b) == 0:  # a constant has no correlation (scipy would warn)
        return float("nan")
    res = stats.spearmanr(a, b) if kind == "spearman" else stats.pearsonr(a, b)
    return float(res.statistic)


def check_prediction(predicted: Sequence[float], actual: Sequence[float]) -> dict[str, Any]:
    """How well ``predicted`` ceilings match ``actual`` (fitted) ones, one value per cell."""
    p, a = np.asarray(predicted, float), np.asarray(actual, float)
    if p.shape != a.shape or p.size < 3 or not (np.isfinite(p).all() and np.isfinite(a).all()):
        raise input_error(f"need >= 3 finite, paired cells, got {p.size} predicted and {a.size} "
                          "actual", field="cells", expected="paired finite values")
    return {"n": int(p.size), "pearson": _corr(p, a, "pearson"),
            "spearman": _corr(p, a, "spearman"),
            "mae": float(np.mean(np.abs(p - a))), "bias": float(np.mean(p - a))}


def ordering_steps(runs: pd.DataFrame, *, along: str, within: str, value: str = "A",
                   z: float = 2.0) -> pd.DataFrame:
    """For each level of ``within``, each step between consecutive levels of ``along``: the
    change of the cell mean of ``value`` and whether it is up (or down) beyond ``z`` standard
    errors of the difference (cell standard deviations over its runs, ddof 1).

    ``runs``: one row per run with columns ``along``, ``within`` and ``value``."""
    rows = []
    for w, part in runs.groupby(within, sort=True):
        cells = part.groupby(along, sort=True)[value].agg(["mean", "std", "count"])
        for (lo, c0), (hi, c1) in zip(cells.iterrows(), list(cells.iterrows())[1:]):
            se = float(np.sqrt(np.nan_to_num(c0["std"]) ** 2 / c0["count"]
                               + np.nan_to_num(c1["std"]) ** 2 / c1["count"]))
            delta = float(c1["mean"] - c0["mean"])
            rows.append({within: w, f"{along}_from": lo, f"{along}_to": hi, "delta": delta,
                         "se": se, "up": delta > z * se, "down": delta < -z * se})
    return pd.DataFrame(rows)
