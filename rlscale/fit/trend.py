"""The recent trend of a curve, from its points alone: is it still moving over its last stretch?

The fitted law says where a curve is heading; the points of its last stretch say, without any
law, whether it is still moving now. :func:`recent_trend` regresses the last ``frac`` of the
points (by compute) on log10 compute (on compute itself when the stretch reaches x <= 0), with
the slope's standard error widened for autocorrelated residuals (the AR(1) factor the fits use,
:func:`rlscale.fit.uncertainty.inflation`). The fit's checks (a ceiling far above a curve that has
levelled off) and the verdict (:mod:`rlscale.forecast.verdict`) read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rlscale.fit.uncertainty import ar1, inflation, t_quantile

RECENT_FRAC = 0.3  # the last 30% of the points (by compute) ...
MIN_RECENT = 6  # ... and at least this many


@dataclass(frozen=True)
class Trend:
    """Straight line through the last stretch of a curve.

    ``change``: the line's rise from ``x_start`` to ``x_end`` (in metric units), with its
    interval [``change_lower``, ``change_upper``] at ``level``; ``end_level``: the line's value at
    ``x_end`` (the curve's recent level, smoothed by the regression); ``spread``: the range of the
    whole curve's running mean (a scale for "small"); ``noise``: sd of the stretch around the line.
    """

    x_start: float
    x_end: float
    n: int
    log_x: bool
    change: float
    change_lower: float
    change_upper: float
    end_level: float
    spread: float
    noise: float
    level: float

    def significant(self) -> int:
        """+1 when the stretch rises beyond its interval, -1 when it falls, else 0."""
        if self.change_lower > 0:
            return 1
        if self.change_upper < 0:
            return -1
        return 0


def running_mean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y sorted by x, averaged over a window of max(3, n // 10) points (shorter at the ends)."""
    ys = np.asarray(y, dtype=float)[np.argsort(x, kind="stable")]
    k = max(3, ys.size // 10)
    if ys.size <= k:
        return np.full(ys.size, float(ys.mean())) if ys.size else ys
    csum = np.concatenate([[0.0], np.cumsum(ys)])
    lo = np.clip(np.arange(ys.size) - k // 2, 0, None)
    hi = np.clip(lo + k, None, ys.size)
    lo = hi - k
    return (csum[hi] - csum[lo]) / k


def recent_trend(x: np.ndarray, y: np.ndarray, run_id: np.ndarray | None = None, *,
                 frac: float = RECENT_FRAC, min_points: int = MIN_RECENT,
                 level: float = 0.95) -> Trend | None:
    """The :class:`Trend` of the last ``frac`` of the points (at least ``min_points``); None when
    the curve has fewer than ``min_points + 2`` points or its stretch has one compute value."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    good = np.isfinite(x) & np.isfinite(y)
    x, y = x[good], y[good]
    runs = np.full(x.size, "run", dtype=object) if run_id is None else \
        np.asarray(run_id, dtype=object)[good]
    if x.size < min_points + 2:
        return None
    order = np.argsort(x, kind="stable")
    k = max(min_points, math.ceil(frac * x.size))
    sel = order[-k:]
    xs, ys, rs = x[sel], y[sel], runs[sel]
    log_x = bool(np.all(xs > 0))
    u = np.log10(xs) if log_x else xs
    if np.ptp(u) == 0:
        return None
    uc = u - u.mean()
    sxx = float(np.sum(uc * uc))
    slope = float(np.sum(uc * (ys - ys.mean())) / sxx)
    resid = ys - ys.mean() - slope * uc
    dof = max(ys.size - 2, 1)
    sd = math.sqrt(float(np.sum(resid * resid)) / dof)
    infl = inflation(ar1(resid, rs, xs))
    se = sd / math.sqrt(sxx) * math.sqrt(infl)
    q = t_quantile(level, dof)
    span = float(u.max() - u.min())
    change, half = slope * span, q * se * span
    smooth = running_mean(x, y)
    return Trend(x_start=float(xs.min()), x_end=float(xs.max()), n=int(ys.size), log_x=log_x,
                 change=change, change_lower=change - half, change_upper=change + half,
                 end_level=float(ys.mean() + slope * (u.max() - u.mean())),
                 spread=float(np.ptp(smooth)) if smooth.size else 0.0, noise=sd,
                 level=float(level))
