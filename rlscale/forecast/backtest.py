"""Backtests: fit each group on the compute up to a cut, then score the forecast of the points past it.

This is the honest check of a forecast: the truth past the cut was never shown to the fit. Per
point it records the predicted mean and prediction interval at the point's compute, the absolute
error and whether the interval covered the observed value; per group and overall it reports the
mean and max absolute error and the coverage rate (which should sit near the nominal ``level``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rlscale.errors import InputError
from rlscale.fit import fit
from rlscale.fit.metric_kind import value_range
from rlscale.forecast.baselines import BASELINES, baseline_forecast
from rlscale.forecast.curve import curve
from rlscale.forecast.ensemble import FORECASTS, ensemble
from rlscale.text import group_label, records

POINT_COLUMNS = ("group", "run_id", "x", "y", "mean", "pred_lower", "pred_upper", "abs_error",
                 "covered", "far")
BASELINE_COLUMNS = tuple(f"mae_{b.replace('-', '_')}" for b in BASELINES)
SUMMARY_COLUMNS = ("group", "cut_x", "n_fit", "n_test", "mae", "max_abs_error", "coverage", "level",
                   *BASELINE_COLUMNS, "best_baseline", "vs_best", "forecast", "fit_ok", "warnings")


@dataclass
class BacktestResult:
    """What :func:`backtest` returns.

    ``points``: one row per held-out point, columns :data:`POINT_COLUMNS` (``group`` is the group
    label such as ``recipe=a``). ``summary``: one row per group plus a last row ``group="overall"``
    pooling every held-out point, columns :data:`SUMMARY_COLUMNS`. ``fits``: the FitResults made
    on the data before each cut (for plotting the fitted curves).
    """

    metric: str
    x: str
    level: float
    points: pd.DataFrame
    summary: pd.DataFrame
    fits: list[Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"metric", "x", "level", "summary": [...], "points": [...]}``."""
        return {"metric": self.metric, "x": self.x, "level": self.level,
                "summary": records(self.summary), "points": records(self.points)}


def backtest(points: pd.DataFrame, *, metric: str, x: str = "gpu_hours",
             by: str | Sequence[str] | None = None, cut: float | None = None,
             cut_x: float | None = None, level: float = 0.9, forecast: str = "ensemble",
             **fit_options: Any) -> BacktestResult:
    """Fit each group on ``x <= cut`` and score the forecast of its points with ``x > cut``.

    ``points``: long frame as from ``rlscale.load_points(store, with_meta=True)``. Exactly one of
    ``cut`` (a fraction in (0, 1) of each group's largest compute, so ``0.5`` keeps the first half
    of each group's compute range) or ``cut_x`` (one compute value for every group). Other
    keyword arguments (``law``, ``burn_in``, ``r0``, ``bootstrap``, ``resample``, ``seed``, ...)
    go to :func:`rlscale.fit.fit`; ``max_x`` is set by the cut. ``forecast``: ``"ensemble"``
    (the default forecast) or ``"law"`` (the single fit), see :func:`forecast_fit`.

    Beside the forecast, every group is scored for the naive baselines of
    :mod:`rlscale.forecast.baselines` (each run forecast from its own points before the cut):
    columns ``mae_last``, ``mae_last_k``, ``mae_log_linear``, the best of them
    (``best_baseline``) and the forecast's MAE divided by that best one's (``vs_best``; below 1
    means the forecast beat every baseline).
    """
    if forecast not in FORECASTS:
        raise InputError(f"forecast={forecast!r} is not one of {list(FORECASTS)}")
    if (cut is None) == (cut_x is None):
        msg = "give exactly one of cut (a fraction of each group's compute) or cut_x (a compute value)"
        raise InputError(msg)
    if cut is not None and not 0 < cut < 1:
        msg = f"cut must be a fraction strictly between 0 and 1 (e.g. 0.5), got {cut!r}"
        raise InputError(msg)
    if "max_x" in fit_options:
        msg = "backtest sets max_x from the cut; do not pass max_x"
        raise InputError(msg)
    df = _metric_points(points, metric=metric, x=x)
    by_cols = [b.strip() for b in by.split(",")] if isinstance(by, str) else list(by or [])
    rows, summaries, fits = [], [], []
    for group, gdf in _split(df, by_cols):
        gx = gdf[x].to_numpy(dtype=float)
        cut_g = float(cut_x) if cut_x is not None else float(cut) * float(np.nanmax(gx))
        result = fit(gdf, metric=metric, x=x, by=by_cols or None, max_x=cut_g, level=level,
                     **fit_options)
        fitted = result[0] if isinstance(result, list) else result
        fits.append(fitted)
        test = gdf[gx > cut_g]
        label = group_label(group)
        pts = _score(fitted, test, x=x, level=level, label=label, forecast=forecast)
        pts = _with_baselines(pts, gdf[gx <= cut_g], test, x=x)
        rows.append(pts)
        summaries.append(_summary(pts, label=label, cut_x=cut_g, n_fit=int(fitted.n_points),
                                  level=level, fit=fitted, forecast=forecast))
    allpts = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=POINT_COLUMNS)
    n_fit = int(sum(s["n_fit"] for s in summaries))
    summaries.append(_summary(allpts, label="overall", cut_x=float("nan"), n_fit=n_fit,
                              level=level, fit=None, forecast=forecast))
    return BacktestResult(metric=metric, x=x, level=level, points=allpts,
                          summary=pd.DataFrame(summaries, columns=list(SUMMARY_COLUMNS)), fits=fits)


def _metric_points(points: pd.DataFrame, *, metric: str, x: str) -> pd.DataFrame:
    for col in ("metric", "value", x):
        if col not in points.columns:
            msg = f"points have no column {col!r} (expected a frame from rlscale.load_points)"
            raise InputError(msg)
    df = points[points["metric"] == metric]
    if df.empty:
        found = sorted(points["metric"].dropna().astype(str).unique())
        msg = f"no points for metric {metric!r}; the points hold {found}"
        raise InputError(msg)
    if "run_id" not in df.columns:
        df = df.assign(run_id="run")
    return df[np.isfinite(pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float))]


def _split(df: pd.DataFrame, by_cols: list[str]) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """Groups as :func:`rlscale.fit.fit` forms them (runs without a recipe count as their own)."""
    if not by_cols:
        return [({}, df)]
    df = df.copy()
    for col in by_cols:
        if col not in df.columns:
            if col != "recipe":
                msg = f"cannot group by {col!r}: the points have no such column"
                raise InputError(msg)
            df[col] = None
        df[col] = df[col].astype(object).where(df[col].notna(), df["run_id"].astype(str))
    out = []
    for key, gdf in df.groupby(by_cols, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        out.append(({c: (v.item() if hasattr(v, "item") else v) for c, v in zip(by_cols, key)}, gdf))
    return out


def forecast_fit(fitted: Any, xs: np.ndarray, *, levels: Sequence[float],
                 forecast: str = "ensemble") -> dict[str, np.ndarray]:
    """The forecast of one fit at compute ``xs``: ``{"mean", "lower@L", "upper@L", "far"}`` for
    each level ``L`` (prediction intervals for one new evaluation; NaN where the fit failed;
    ``far``: the ensemble's ``far_from_recent`` flag per point).

    ``forecast="ensemble"`` (the default) is :func:`rlscale.forecast.ensemble.ensemble` (falling
    back to the law where the fit has too few points); ``"law"`` the single fit's own curve and
    joint-draw intervals. For a pass rate (:func:`rlscale.fit.metric_kind.value_range`) the mean
    and intervals are clipped to [0, 1], as in :func:`rlscale.forecast.reward_at`. This is what a
    backtest scores, so ``benchmarks/extrapolation.py`` measures the same thing.
    """
    if forecast not in FORECASTS:
        raise InputError(f"forecast={forecast!r} is not one of {list(FORECASTS)}")
    xs = np.asarray(xs, dtype=float)
    nan = np.full(xs.shape, np.nan)
    out: dict[str, np.ndarray] = {"mean": nan, "far": np.zeros(xs.shape, dtype=bool)}
    for lv in levels:
        out[f"lower@{lv:g}"], out[f"upper@{lv:g}"] = nan, nan
    if not fitted.ok:
        return out
    ens = ensemble(fitted) if forecast == "ensemble" else None
    beyond = ens.beyond(xs) if ens is not None else np.zeros(xs.shape, dtype=bool)
    out["far"] = ens.far(xs) if ens is not None else np.zeros(xs.shape, dtype=bool)
    c = curve(fitted)
    bounds = value_range(fitted.metric, fitted.data["y"].to_numpy())
    for lv in levels:
        pred = c.predict(xs, level=lv)
        mean, lo, hi = pred["mean"], pred["pred_lower"], pred["pred_upper"]
        if beyond.any():  # past the last fitted point the ensemble forecasts; inside, the fit
            epred = ens.predict(xs, level=lv)
            mean = np.where(beyond, epred["mean"], mean)
            lo = np.where(beyond, epred["pred_lower"], lo)
            hi = np.where(beyond, epred["pred_upper"], hi)
        if bounds is not None:  # a pass rate's forecast stays in [0, 1], as forecast --budget's
            mean, lo, hi = (np.clip(v, *bounds) for v in (mean, lo, hi))
        out["mean"], out[f"lower@{lv:g}"], out[f"upper@{lv:g}"] = mean, lo, hi
    return out


def _score(fitted: Any, test: pd.DataFrame, *, x: str, level: float, label: str,
           forecast: str) -> pd.DataFrame:
    if test.empty:
        return pd.DataFrame(columns=list(POINT_COLUMNS))
    xs = test[x].to_numpy(dtype=float)
    ys = test["value"].to_numpy(dtype=float)
    pred = forecast_fit(fitted, xs, levels=(level,), forecast=forecast)
    mean, lo, hi = pred["mean"], pred[f"lower@{level:g}"], pred[f"upper@{level:g}"]
    far = pred["far"]
    return pd.DataFrame({"group": label, "run_id": test["run_id"].astype(str).to_numpy(), "x": xs,
                         "y": ys, "mean": mean, "pred_lower": lo, "pred_upper": hi,
                         "abs_error": np.abs(ys - mean), "covered": (ys >= lo) & (ys <= hi),
                         "far": far})


def _with_baselines(pts: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, *,
                    x: str) -> pd.DataFrame:
    """``pts`` plus one absolute-error column per baseline, each run forecast from its own points
    before the cut (a run with no such point gets NaN)."""
    pts = pts.copy()
    for col in BASELINE_COLUMNS:
        pts[col] = np.nan
    if pts.empty:
        return pts
    run_test = test["run_id"].astype(str).to_numpy()
    run_train = train["run_id"].astype(str).to_numpy()
    xs_test = test[x].to_numpy(dtype=float)
    ys_test = test["value"].to_numpy(dtype=float)
    for run in pd.unique(run_test):
        here, before = run_test == run, run_train == run
        if not before.any():
            continue
        tx = train[x].to_numpy(dtype=float)[before]
        ty = train["value"].to_numpy(dtype=float)[before]
        for name, col in zip(BASELINES, BASELINE_COLUMNS):
            mean = baseline_forecast(name, tx, ty, xs_test[here])["mean"]
            pts.loc[here, col] = np.abs(ys_test[here] - mean)
    return pts


def _mean(pts: pd.DataFrame, col: str) -> float:
    err = pts[col].to_numpy(dtype=float) if len(pts) and col in pts else np.array([])
    ok = err[np.isfinite(err)]
    return float(ok.mean()) if ok.size else float("nan")


def _summary(pts: pd.DataFrame, *, label: str, cut_x: float, n_fit: int, level: float,
             fit: Any, forecast: str) -> dict[str, Any]:
    err = pts["abs_error"].to_numpy(dtype=float) if len(pts) else np.array([])
    ok = err[np.isfinite(err)]
    mae = float(ok.mean()) if ok.size else float("nan")
    base = {col: _mean(pts, col) for col in BASELINE_COLUMNS}
    finite = {name: base[col] for name, col in zip(BASELINES, BASELINE_COLUMNS)
              if np.isfinite(base[col])}
    best = min(finite, key=finite.get) if finite else None
    vs = (mae / finite[best] if best is not None and finite[best] > 0 else float("nan"))
    return {"group": label, "cut_x": cut_x, "n_fit": n_fit, "n_test": int(len(pts)),
            "mae": mae, "max_abs_error": float(ok.max()) if ok.size else float("nan"),
            "coverage": float(pts["covered"].astype(bool).mean()) if len(pts) else float("nan"),
            "level": level, **base, "best_baseline": best, "vs_best": vs, "forecast": forecast,
            "fit_ok": None if fit is None else bool(fit.ok),
            "warnings": ([] if fit is None else [w.code for w in fit.warnings])
            + (["far_from_recent"] if fit is not None and len(pts) and "far" in pts
               and pts["far"].astype(bool).any() else [])}
