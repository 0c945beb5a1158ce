"""Forecasts from fitted laws: reward at a budget, compute for a reward or a fraction of the gain.

Pure functions over :class:`rlscale.fit.FitResult` objects (one or a list, one per group). Each
returns a DataFrame with one row per group and budget/target, and every number carries an interval
at ``level``, propagated from the fit's joint parameter draws (``FitResult.samples``):

* ``mean_lower``/``mean_upper``: where the mean curve lies (quantiles of the law over the draws);
* ``pred_lower``/``pred_upper``: where one new run's point lies: quantiles of each draw's curve
  plus a normal residual with the fit's residual sd (Monte Carlo, seeded). The fit's draws already
  carry the widening for autocorrelated residuals (``samples_method`` ``normal-ar1``) or come
  from a bootstrap over runs, which keeps each run's correlation;
* ``x_lower``/``x_upper`` for compute: quantiles over the draws of the compute each draw needs;
  a draw whose ceiling is below the target needs infinite compute, so ``x_upper`` is ``inf`` when
  more than ``(1 - level) / 2`` of the draws never get there, and the target is ``reachable=False``
  ("never") when fewer than that fraction reach it, i.e. the target lies above the interval of A.

Ranking and crossovers live in :mod:`rlscale.forecast.ranking`, backtests in :mod:`rlscale.forecast.backtest`.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from rlscale.errors import InputError
from rlscale.fit.metric_kind import value_range
from rlscale.forecast.curve import Curve, as_fit_list, curve
from rlscale.forecast.ensemble import FORECASTS, ensemble
from rlscale.forecast.roots import check_level, interval, sigmoid_fraction_compute

# fit warnings that mean the ceiling A is not pinned down by the data
UNIDENTIFIED = frozenset({"asymptote_not_identified", "ceiling_above_plateau"})
# a compute interval wider than this ratio (upper / lower) says nothing a user can plan with
MAX_COMPUTE_SPAN = 1e3

REWARD_COLUMNS = ("group", "x", "mean", "mean_lower", "mean_upper", "pred_lower", "pred_upper",
                  "level", "law", "method", "warnings")
COMPUTE_COLUMNS = ("group", "target", "x", "x_lower", "x_upper", "reachable", "status", "p_reach",
                   "level", "law", "method", "warnings")


def reward_at(fits: Any, budgets: float | Sequence[float], *, level: float | None = None,
              seed: int = 0, forecast: str = "ensemble") -> pd.DataFrame:
    """Reward each group reaches at each compute budget, with confidence and prediction intervals.

    ``fits``: a FitResult or a list of them. ``budgets``: compute values on each fit's x axis
    (scalar or sequence, all > 0). ``level``: interval level (default: each fit's own level).
    Returns a DataFrame with columns :data:`REWARD_COLUMNS`, one row per (group, budget);
    ``group`` holds the fit's group dict. For a pass rate
    (:func:`rlscale.fit.metric_kind.value_range`) the mean and intervals are clipped to [0, 1],
    and a row that needed it carries the warning ``interval_clipped``.

    ``forecast="ensemble"`` (the default): the mean and prediction interval are the ensemble
    forecast's (:mod:`rlscale.forecast.ensemble`; ``method`` says ``ensemble``) at budgets past the
    fit's last point, and the band of the mean curve is the law's, moved with the mean; inside the
    fitted window, for fits with too few points for it, and with
    ``forecast="law"``, give the single fit's own curve and joint-draw intervals.
    """
    if forecast not in FORECASTS:
        raise InputError(f"forecast={forecast!r} is not one of {list(FORECASTS)}")
    xs = _budgets(budgets)
    rows = []
    for fit in as_fit_list(fits):
        lvl = check_level(fit.level if level is None else level)
        if not fit.ok:
            rows.extend({**_base(fit, lvl), "x": float(x)} for x in xs)
            continue
        c = curve(fit, seed=seed)
        pred = pd.DataFrame(c.predict(xs, level=lvl, seed=seed))
        ens = ensemble(fit) if forecast == "ensemble" else None
        beyond = ens.beyond(xs) if ens is not None else np.zeros(xs.shape, dtype=bool)
        if beyond.any():  # inside the fitted window the fit itself answers
            epred = ens.predict(xs, level=lvl)
            shift = np.where(beyond, epred["mean"] - pred["mean"].to_numpy(), 0.0)
            pred["mean_lower"] += shift
            pred["mean_upper"] += shift
            for key in ("mean", "pred_lower", "pred_upper"):
                pred[key] = np.where(beyond, epred[key], pred[key].to_numpy())
        bounds = value_range(fit.metric, fit.data["y"].to_numpy())
        for rec in pred.to_dict("records"):
            row = {**_base(fit, lvl, c), **rec}
            if ens is not None and rec["x"] > ens.x_last:
                row["method"] = "ensemble"
                if bool(ens.far(np.array([rec["x"]]))[0]):
                    row["warnings"] = [*row["warnings"], "far_from_recent"]
            if bounds is not None:
                clip_row(row, bounds)
            rows.append(row)
    return _frame(rows, REWARD_COLUMNS)


CLIPPED = ("mean", "mean_lower", "mean_upper", "pred_lower", "pred_upper")


def clip_row(row: dict[str, Any], bounds: tuple[float, float]) -> None:
    """Clip a row's mean and intervals to the metric's possible range (a pass rate's [0, 1]);
    a row that needed it gets the warning ``interval_clipped``."""
    lo, hi = bounds
    outside = False
    for key in CLIPPED:
        v = row.get(key)
        if v is not None and np.isfinite(v) and not lo <= v <= hi:
            row[key] = float(min(max(v, lo), hi))
            outside = True
    if outside:
        row["warnings"] = [*row["warnings"], "interval_clipped"]


def compute_for_reward(fits: Any, target: float, *, level: float | None = None,
                       seed: int = 0) -> pd.DataFrame:
    """Compute each group needs to reach reward ``target``, with an interval; ``never`` is explicit.

    Returns a DataFrame with columns :data:`COMPUTE_COLUMNS`. ``x`` is the compute where the
    best-fit curve reaches ``target`` (``inf`` if it levels off below it, ``0`` if it starts above
    it); ``x_lower``/``x_upper`` are quantiles over the parameter draws; ``p_reach`` is the share
    of draws that ever reach ``target``; ``reachable`` is False when ``p_reach`` is at most
    ``(1 - level) / 2`` (the target is above the interval of the ceiling A): the forecast "never".
    ``status`` says which case holds: ``reached`` (the best-fit curve gets there, at ``x``),
    ``uncertain`` (the best-fit curve levels off below the target but the interval of A includes
    it: ``x`` is ``inf``, ``x_lower`` is finite), ``never`` (``x`` and its bounds ``inf``) or
    ``not identified`` (the best fit gets there, but its interval spans more than three orders of
    magnitude, :data:`MAX_COMPUTE_SPAN`, or the fit's ceiling is not identified by its points,
    :data:`UNIDENTIFIED`: ``x`` is a guess, not a forecast).
    """
    if not np.isfinite(target):
        msg = f"target reward must be a finite number, got {target!r}"
        raise InputError(msg)
    rows = []
    for fit in as_fit_list(fits):
        lvl = check_level(fit.level if level is None else level)
        if not fit.ok:
            rows.append({**_base(fit, lvl), "target": float(target)})
            continue
        c = curve(fit, seed=seed)
        x_hat = float(c.inverse(target, c.point))
        x_draws = c.inverse(target, c.draws)
        rows.append(_identified({**_base(fit, lvl, c), "target": float(target),
                                 **compute_interval(x_hat, x_draws, lvl)}))
    return _frame(rows, COMPUTE_COLUMNS)


def compute_for_fraction(fits: Any, fraction: float, *, level: float | None = None,
                         seed: int = 0) -> pd.DataFrame:
    """Compute each group needs to reach fraction ``fraction`` of its gain ``A - R0`` (e.g. 0.9).

    For the sigmoid this is ``C_mid * (F / (1 - F))**(1/B)`` for every draw (independent of A and
    R0, so always reachable); other laws with a ceiling and a baseline (``exp``) go through the
    law's inverse at ``R0 + F * (A - R0)``. Columns as :func:`compute_for_reward` plus
    ``fraction``; ``target`` is the reward that fraction means on the best-fit curve.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0):
        msg = f"fraction of the gain must be strictly between 0 and 1 (e.g. 0.9), got {fraction!r}"
        raise InputError(msg)
    rows = []
    for fit in as_fit_list(fits):
        lvl = check_level(fit.level if level is None else level)
        if not fit.ok:
            rows.append({**_base(fit, lvl), "fraction": float(fraction)})
            continue
        c = curve(fit, seed=seed)
        top, base = c.law.ceiling, c.law.baseline
        if top is None or base is None:
            msg = (f"law {c.law.name!r} has no ceiling and baseline, so 'fraction of the gain' is "
                   "undefined; use --target, or fit --law sigmoid or exp")
            raise InputError(msg)
        target = c.point[base] + fraction * (c.point[top] - c.point[base])
        if c.law.name == "sigmoid":
            x_hat = float(sigmoid_fraction_compute(fraction, B=c.point["B"], C_mid=c.point["C_mid"]))
            x_draws = sigmoid_fraction_compute(fraction, B=c.draws["B"], C_mid=c.draws["C_mid"])
        else:
            x_hat = float(c.inverse(target, c.point))
            y_draws = c.draws[base] + fraction * (c.draws[top] - c.draws[base])
            x_draws = c.inverse(y_draws, c.draws)
        rows.append(_identified({**_base(fit, lvl, c), "fraction": float(fraction),
                                 "target": float(target),
                                 **compute_interval(x_hat, np.asarray(x_draws, dtype=float), lvl)}))
    return _frame(rows, ("group", "fraction") + COMPUTE_COLUMNS[1:])


def _identified(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a ``reached`` row into ``not identified`` when its interval spans more than
    :data:`MAX_COMPUTE_SPAN` or its fit's ceiling is not identified (see compute_for_reward)."""
    if row.get("status") != "reached":
        return row
    lo, hi = row.get("x_lower", np.nan), row.get("x_upper", np.nan)
    too_wide = bool(np.isfinite(lo) and np.isfinite(hi) and (lo <= 0 or hi / lo > MAX_COMPUTE_SPAN))
    unbounded = bool(np.isfinite(lo) and not np.isfinite(hi))
    if too_wide or unbounded or UNIDENTIFIED & set(row.get("warnings", [])):
        row["status"] = "not identified"
    return row


def compute_interval(x_hat: float, x_draws: np.ndarray, level: float) -> dict[str, Any]:
    if x_draws.size == 0:  # no parameter draws: the point estimate only, no interval
        return {"x": x_hat, "x_lower": float("nan"), "x_upper": float("nan"),
                "reachable": bool(np.isfinite(x_hat)), "p_reach": float("nan"),
                "status": "reached" if np.isfinite(x_hat) else "never"}
    finite = np.isfinite(x_draws)
    p_reach = float(np.mean(finite)) if x_draws.size else float("nan")
    lo, hi = interval(x_draws, level)
    reachable = bool(p_reach > (1.0 - level) / 2.0)
    if not reachable:
        return {"x": float("inf"), "x_lower": float("inf"), "x_upper": float("inf"),
                "reachable": False, "status": "never", "p_reach": p_reach}
    return {"x": x_hat, "x_lower": float(lo), "x_upper": float(hi), "reachable": True,
            "status": "reached" if np.isfinite(x_hat) else "uncertain", "p_reach": p_reach}


def _budgets(budgets: float | Iterable[float]) -> np.ndarray:
    xs = np.atleast_1d(np.asarray(budgets, dtype=float))
    if xs.size == 0 or not np.all(np.isfinite(xs)) or np.any(xs <= 0):
        msg = f"budgets must be positive finite compute values, got {list(xs)}"
        raise InputError(msg)
    return xs


def _base(fit: Any, level: float, c: Curve | None = None) -> dict[str, Any]:
    method = c.method if c is not None else str(getattr(fit, "samples_method", "") or "")
    return {"group": dict(fit.group or {}), "level": level, "law": fit.law, "method": method,
            "warnings": [w.code for w in getattr(fit, "warnings", [])] + ([] if fit.ok else ["not_fitted"])}


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in columns:
        if col not in df.columns:
            df[col] = np.nan
    return df[list(columns)]
