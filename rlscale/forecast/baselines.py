"""Naive forecasts that a fitted law must beat: the yardsticks of every backtest.

A forecast of a reward curve is worth something only if it beats what anyone could do without a
law. Each baseline sees the same points up to the cut as the fit and forecasts every later point:

* ``last``: the last observed value carried forward;
* ``last-k``: the mean of the last ``k`` observed values (``k`` = :data:`LAST_K`), which smooths
  one noisy evaluation;
* ``log-linear``: a straight line in log-compute fitted by least squares to the points with
  compute > 0 (keeps rising at the rate it rose, never bends), with t-based prediction intervals.

All of them see one curve (one run) at a time; pooled groups are forecast run by run and scored
on each run's own later points.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

BASELINES: tuple[str, ...] = ("last", "last-k", "log-linear")
LAST_K = 5


def baseline_forecast(name: str, x_fit: np.ndarray, y_fit: np.ndarray, x_new: np.ndarray, *,
                      levels: Sequence[float] = ()) -> dict[str, np.ndarray]:
    """Forecast of baseline ``name`` at ``x_new`` from the points ``(x_fit, y_fit)``.

    Returns ``{"mean": (n,)}`` plus ``"lower@L"``/``"upper@L"`` for each level ``L`` where the
    baseline has intervals (``log-linear`` only; the others are point forecasts). ``x_fit``
    needs not be sorted; "last" means largest compute.
    """
    x_fit = np.asarray(x_fit, dtype=float)
    y_fit = np.asarray(y_fit, dtype=float)
    x_new = np.asarray(x_new, dtype=float)
    order = np.argsort(x_fit, kind="stable")
    x_fit, y_fit = x_fit[order], y_fit[order]
    out: dict[str, np.ndarray] = {}
    if name == "last":
        out["mean"] = np.full(x_new.shape, y_fit[-1] if y_fit.size else np.nan)
    elif name == "last-k":
        tail = y_fit[-LAST_K:]
        out["mean"] = np.full(x_new.shape, tail.mean() if tail.size else np.nan)
    elif name == "log-linear":
        out.update(_log_linear(x_fit, y_fit, x_new, levels))
    else:
        raise ValueError(f"unknown baseline {name!r}; one of {list(BASELINES)}")
    return out


def _log_linear(x: np.ndarray, y: np.ndarray, x_new: np.ndarray,
                levels: Sequence[float]) -> dict[str, np.ndarray]:
    keep = x > 0
    lx, yy = np.log(x[keep]), y[keep]
    n = lx.size
    nan = np.full(x_new.shape, np.nan)
    if n < 3 or np.ptp(lx) == 0:
        return {"mean": nan, **{f"{s}@{lv:g}": nan for lv in levels for s in ("lower", "upper")}}
    design = np.column_stack([np.ones(n), lx])
    coef, *_ = np.linalg.lstsq(design, yy, rcond=None)
    resid = yy - design @ coef
    dof = n - 2
    s2 = float(resid @ resid) / dof
    xtx_inv = np.linalg.inv(design.T @ design)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnew = np.log(x_new)
    dnew = np.column_stack([np.ones(x_new.size), lnew])
    mean = dnew @ coef
    se = np.sqrt(s2 * (1.0 + np.einsum("ij,jk,ik->i", dnew, xtx_inv, dnew)))
    out = {"mean": mean}
    for lv in levels:
        q = float(stats.t.ppf(0.5 + lv / 2.0, dof)) if math.isfinite(s2) else math.nan
        out[f"lower@{lv:g}"], out[f"upper@{lv:g}"] = mean - q * se, mean + q * se
    return out
