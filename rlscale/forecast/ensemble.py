"""The default forecast: several fits of the law and the recent level, weighted by how well each
forecast the curve's own later points, with intervals calibrated on those in-window backtests.

One fit of one law, extrapolated, is what real reward curves punish: they rise fast and then
creep, so a sigmoid fitted to the whole run bends late and runs on; they sit above or below the
law for long stretches; an evaluation can crash for one point. Measured on the real curves of
``benchmarks/extrapolation.py``, this forecast beats carrying the last value forward where the
single fit did not, and its intervals hold near their nominal level (docs/forecast.md has the
figures). It is built from the points a fit used (``FitResult.data``):

* **members**: the law refitted (Huber loss, so one crashed evaluation does not bend it) on all
  points and with the first 10%, 25% and 40% of the points dropped (burn-in: early RL is often not
  on the law), under the fit's metric name (so a pass rate's ceiling stays in [0, 1]); plus two
  constants: the **last value** (the mean of each run's last point: the naive forecast every
  method is measured against, so the ensemble holds it as a candidate rather than only as a
  yardstick) and the **recent level**, the median of the last :data:`LEVEL_K` points per run;
* **weights**: each member forecasts the last 40% and the last 20% of the fit's own points from
  the points before them (rolling-origin backtests inside the window); its weight is
  proportional to 1 / (its mean absolute error there). Members that fail get no weight;
* **intervals**: split-conformal. The errors of the weighted forecast in those in-window
  backtests, divided by ``(1 + h) ** 0.65`` where ``h`` is the distance past the origin relative to
  the length of the window fitted, give one quantile per level; the interval at a new compute is
  the forecast ± that quantile times ``(1 + h) ** 0.65`` there. So it widens with the distance
  from the data, as a forecast's uncertainty must.

It needs at least :data:`MIN_POINTS` points; with fewer, :func:`ensemble` returns None and the
single fit's own forecast is used.

**A flag for forecasts that run away** (:meth:`Ensemble.far`): a forecast that moves from the
recent level by more than :data:`FAR` times the curve's own wobble (the verdict's ``tol``: the
larger of 5% of the observed range and the scatter of the last 30% of the points about their
line) expects far more than the data have shown; on the real curves such forecasts were wrong as
often as right, and they held the worst ones. So does a forecast made just after the curve
broke: when the last point (the mean of each run's last point) lies more than :data:`FAR` times
the wobble of the points before it from the recent level (a run that collapsed, or jumped, at
the end), a forecast that far from the last point is flagged too, since the law and the recent
level both still describe the curve before the break. And when the fit says its ceiling is not
identified (``asymptote_not_identified``), a forecast that moves more than
:data:`FAR_UNIDENTIFIED` wobbles from its own value at the last fitted point is flagged: how far
it climbs past the data then rests on a parameter the data do not pin down. Forecast rows past
any of these distances carry the warning ``far_from_recent``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rlscale.fit.grouped import fit
from rlscale.fit.laws import get_law
from rlscale.fit.trend import recent_trend
from rlscale.forecast.verdict import wobble

BURN_INS = (0.0, 0.1, 0.25, 0.4)  # shares of the points dropped from the start of the window
ORIGINS = (0.6, 0.8)  # in-window backtests: fit on the first 60% / 80% of the points
LEVEL_K = 5
HORIZON_POWER = 0.65  # how intervals widen past the data (chosen on benchmarks/extrapolation.py)
FORECASTS = ("ensemble", "law")  # what --forecast chooses between
MIN_POINTS = 12
MIN_MEMBER_POINTS = 6
FAR = 4.0  # a forecast this many "wobbles" from the recent level is flagged far_from_recent
FAR_UNIDENTIFIED = 2.0  # the same, when the fit says its ceiling is not identified


@dataclass
class Ensemble:
    """A fitted ensemble forecast (see the module docstring).

    ``members``: names (``law``, ``law burn-in 10%``, ..., ``last value``, ``recent level``);
    ``weights``: one per member (sum 1); ``scores``: the in-window normalised errors the intervals
    are calibrated on; ``x0``, ``x_last``: the window's first and last compute.
    """

    law: Any
    members: list[str]
    weights: np.ndarray
    params: list[dict[str, float] | None]
    level_value: float
    scores: np.ndarray
    x0: float
    x_last: float
    n_points: int
    tol: float = math.nan
    last_value: float = math.nan  # the mean of each run's last point
    tol_before: float = math.nan  # the wobble without each run's last point (a break inflates tol)
    identified: bool = True  # False: the fit warned asymptote_not_identified (FAR_UNIDENTIFIED)

    def mean(self, x: np.ndarray | float) -> np.ndarray:
        """The weighted forecast at compute ``x`` (1-d)."""
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        return _combine(self.law, self.params, (self.last_value, self.level_value),
                        self.weights, xs)

    def far(self, x: np.ndarray | float) -> np.ndarray:
        """Where the forecast lies more than :data:`FAR` x ``tol`` from the recent level, or, when
        the last point broke away from the recent level by that much, from the last point; and,
        when the fit's ceiling is not identified, where it moves more than
        :data:`FAR_UNIDENTIFIED` x ``tol`` from its own value at the last fitted point."""
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        if not math.isfinite(self.tol) or self.tol <= 0:
            return np.zeros(xs.shape, dtype=bool)
        limit = FAR * self.tol
        mean = self.mean(xs)
        far = np.abs(mean - self.level_value) > limit
        if _broke(self.last_value, self.level_value, self.tol, self.tol_before):
            far |= np.abs(mean - self.last_value) > FAR * _before(self.tol, self.tol_before)
        if not self.identified:  # how far it moves past the data rests on an unpinned ceiling
            far |= np.abs(mean - self.mean(self.x_last)[0]) > FAR_UNIDENTIFIED * self.tol
        return self.beyond(xs) & far

    def beyond(self, x: np.ndarray | float) -> np.ndarray:
        """Where ``x`` lies past the last fitted point: only there is this the forecast (inside
        the window the fit itself is the estimate; the recent level is no curve)."""
        return np.atleast_1d(np.asarray(x, dtype=float)) > self.x_last

    def horizon(self, x: np.ndarray) -> np.ndarray:
        """Distance past the last point, relative to the window's length (0 inside the window)."""
        span = max(self.x_last - self.x0, 1e-300)
        return np.clip((np.asarray(x, dtype=float) - self.x_last) / span, 0.0, None)

    def predict(self, x: np.ndarray | float, *, level: float) -> dict[str, np.ndarray]:
        """``{"x", "mean", "pred_lower", "pred_upper"}`` at ``x``: the conformal interval at
        ``level`` for one new evaluation."""
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        mean = self.mean(xs)
        half = self.quantile(level) * (1.0 + self.horizon(xs)) ** HORIZON_POWER
        return {"x": xs, "mean": mean, "pred_lower": mean - half, "pred_upper": mean + half}

    def quantile(self, level: float) -> float:
        """The split-conformal quantile of the normalised in-window errors at ``level``."""
        n = self.scores.size
        if n == 0:
            return math.nan
        rank = min(math.ceil((n + 1) * level) / n, 1.0)  # the finite-sample correction
        return float(np.quantile(self.scores, rank))


def _member_names() -> list[str]:
    return ([("law" if b == 0 else f"law burn-in {b:.0%}") for b in BURN_INS]
            + ["last value", "recent level"])


def _fit_law(law: Any, x: np.ndarray, y: np.ndarray, run: np.ndarray,
             fixed: dict[str, float], metric: str) -> dict[str, float] | None:
    """The law refitted on these points, under the fit's metric name: the name decides whether
    the levels are a pass rate's, bounded to [0, 1] (:mod:`rlscale.fit.metric_kind`)."""
    if x.size < MIN_MEMBER_POINTS:
        return None
    frame = pd.DataFrame({"run_id": run, "metric": metric, "value": y, "gpu_hours": x})
    r0: Any = fixed.get(law.baseline, "fit") if law.baseline else "fit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = fit(frame, metric=metric, x="gpu_hours", law=law.name, loss="huber", r0=r0)
        except Exception:  # noqa: BLE001 - a member that cannot be fitted gets no weight
            return None
    if not res.ok:
        return None
    return {name: float(res.params[name].value) for name in law.param_names}


def _all_but_last(run: np.ndarray) -> np.ndarray:
    """A mask of every point but each run's last (points in x order)."""
    last = pd.Series(np.arange(run.size)).groupby(run, sort=False).transform("max").to_numpy()
    return np.arange(run.size) != last


def _levels(y: np.ndarray, run: np.ndarray) -> tuple[float, float]:
    """The two constant members: the last value (the mean of each run's last point) and the
    recent level (the median of the last :data:`LEVEL_K` points per run)."""
    k = LEVEL_K * max(len(pd.unique(run)), 1)
    return float(y[~_all_but_last(run)].mean()), float(np.median(y[-k:]))


def _members(law: Any, x: np.ndarray, y: np.ndarray, run: np.ndarray, fixed: dict[str, float],
             metric: str) -> tuple[list[dict[str, float] | None], tuple[float, float]]:
    params = []
    for b in BURN_INS:
        start = int(round(b * x.size))
        params.append(_fit_law(law, x[start:], y[start:], run[start:], fixed, metric))
    return params, _levels(y, run)


def _member_values(law: Any, params: Sequence[dict[str, float] | None],
                   constants: Sequence[float], xs: np.ndarray) -> np.ndarray:
    """(members, len(xs)) forecasts: one row per law member (NaN where it failed), then one per
    constant member (last value, recent level)."""
    out = np.full((len(params) + len(constants), xs.size), np.nan)
    for i, p in enumerate(params):
        if p is not None:
            with np.errstate(all="ignore"):
                out[i] = np.asarray(law.func(xs, **p), dtype=float)
    for j, c in enumerate(constants):
        out[len(params) + j] = c
    return out


def _combine(law: Any, params: Sequence[dict[str, float] | None], constants: Sequence[float],
             weights: np.ndarray, xs: np.ndarray) -> np.ndarray:
    vals = _member_values(law, params, constants, xs)
    use = weights > 0
    return np.sum(weights[use, None] * vals[use], axis=0)


def _wobbles(x: np.ndarray, y: np.ndarray, run: np.ndarray) -> tuple[float, float]:
    """The curve's wobble (the verdict's ``tol``), and the same without each run's last point."""
    trend = recent_trend(x, y, run)
    tol = wobble(trend) if trend is not None else math.nan
    tol_before = math.nan
    earlier = _all_but_last(run)
    if earlier.sum() >= MIN_POINTS:
        prev = recent_trend(x[earlier], y[earlier], run[earlier])
        if prev is not None:
            tol_before = wobble(prev)
    return tol, tol_before


def _before(tol: float, tol_before: float) -> float:
    """The wobble of the points before each run's last (the whole curve's when unknown)."""
    return tol_before if math.isfinite(tol_before) else tol


def _broke(last_value: float, level: float, tol: float, tol_before: float) -> bool:
    """Whether the last point lies more than :data:`FAR` wobbles (of the points before it) from
    the recent level: the curve broke away at its end."""
    before = _before(tol, tol_before)
    return (math.isfinite(last_value) and math.isfinite(before) and before > 0
            and abs(last_value - level) > FAR * before)


def ensemble(fitted: Any) -> Ensemble | None:
    """The ensemble forecast of the points behind ``fitted`` (a FitResult), or None when it has
    fewer than :data:`MIN_POINTS` points or is not ok."""
    if not getattr(fitted, "ok", False) or fitted.n_points < MIN_POINTS:
        return None
    law = getattr(fitted, "law_obj", None) or get_law(fitted.law)
    data = fitted.data
    order = np.argsort(data["x"].to_numpy(dtype=float), kind="stable")
    x = data["x"].to_numpy(dtype=float)[order]
    y = data["y"].to_numpy(dtype=float)[order]
    run = data["run_id"].astype(str).to_numpy()[order]
    fixed = dict((fitted.options or {}).get("fixed") or {})
    metric = str(getattr(fitted, "metric", None) or "value")
    n = x.size
    errors, horizons = [], []
    for origin in ORIGINS:
        cut = int(round(origin * n))
        if cut < MIN_MEMBER_POINTS + 2 or n - cut < 2:
            continue
        params, constants = _members(law, x[:cut], y[:cut], run[:cut], fixed, metric)
        vals = _member_values(law, params, constants, x[cut:])
        errors.append(y[cut:][None, :] - vals)
        span = max(x[cut - 1] - x[0], 1e-300)
        horizons.append((x[cut:] - x[cut - 1]) / span)
    params, (last_value, level) = _members(law, x, y, run, fixed, metric)
    tol, tol_before = _wobbles(x, y, run)
    n_members = len(params) + 2
    # a last point that broke away from the recent level (a crashed evaluation, or a collapse)
    # is no forecast of its own: whether it lasts is what the data cannot tell yet (far() flags)
    full_ok = np.array([p is not None for p in params]
                       + [not _broke(last_value, level, tol, tol_before), True])
    if errors:
        err = np.concatenate(errors, axis=1)
        h = np.concatenate(horizons)
        with np.errstate(invalid="ignore"):
            mae = np.nanmean(np.abs(err), axis=1)
        usable = full_ok & np.isfinite(mae) & ~np.isnan(err).any(axis=1)
    else:
        err, h, mae = np.zeros((n_members, 0)), np.zeros(0), np.full(n_members, np.nan)
        usable = np.zeros(n_members, dtype=bool)
    if not usable.any():  # nothing was backtested: the full-window law alone, if it fitted
        usable = full_ok.copy()
        usable[-2] = False
        usable[-1] = not full_ok[:-2].any()
        weights = usable / usable.sum()
        scores = np.zeros(0)
    else:
        inv = np.where(usable, 1.0 / np.maximum(np.where(usable, mae, 1.0), 1e-300), 0.0)
        weights = inv / inv.sum()
        combined = np.sum(weights[usable, None] * err[usable], axis=0)
        scores = np.abs(combined) / (1.0 + np.clip(h, 0.0, None)) ** HORIZON_POWER
    return Ensemble(law=law, members=_member_names(), weights=weights, params=params,
                    level_value=level, scores=scores, x0=float(x[0]), x_last=float(x[-1]),
                    n_points=n, tol=tol, last_value=last_value,
                    tol_before=tol_before,
                    identified=not any(w.code == "asymptote_not_identified"
                                       for w in getattr(fitted, "warnings", [])))
