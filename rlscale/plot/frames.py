"""Long tables behind the charts: pure pandas, no altair, so each can be tested on numbers.

Every frame has a ``series`` column (the colour: a group's label without the facet key), a
``facet`` column when panels are split, and plain numeric columns. :mod:`rlscale.plot.charts` only maps
these columns to marks.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from rlscale.errors import input_error
from rlscale.text import format_value, series_label

CURVE_PARAMS: tuple[str, ...] = ("A", "B", "C_mid")
GRID_IN = 60
GRID_OUT = 40


def facet_label(key: str, value: Any) -> str:
    return f"{key} = {format_value(value)}"


def check_columns(frame: pd.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Raise :class:`InputError` naming the first missing column and the ones that exist."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise input_error(f"no column {missing[0]!r} to {what}", field=missing[0],
                          expected=f"one of {sorted(map(str, frame.columns))}")


def select_points(points: pd.DataFrame, *, metric: str, x: str) -> pd.DataFrame:
    """Rows of ``points`` for ``metric`` with a positive value on compute axis ``x``.

    ``points`` is the long frame of :func:`rlscale.store.load_points` (``with_meta=True`` to group
    on metadata). Rows whose ``x`` is null or not positive cannot sit on a log axis and are
    dropped; raises :class:`InputError` if nothing is left, saying what is available.
    """
    check_columns(points, ["metric", "value", "run_id", x], what="plot on")
    rows = points[points["metric"] == metric]
    if rows.empty:
        have = sorted(points["metric"].dropna().unique().tolist())
        raise input_error(f"no points for metric {metric!r}", field="metric",
                          expected=f"one of {have}")
    xs = pd.to_numeric(rows[x], errors="coerce")
    rows = rows[xs > 0].copy()
    if rows.empty:
        raise input_error(f"metric {metric!r} has no positive values on compute axis {x!r}",
                          field=x, expected="another --x axis that the runs logged")
    rows[x] = pd.to_numeric(rows[x]).astype(float)
    return rows


def points_frame(points: pd.DataFrame, *, metric: str, x: str, by: Sequence[str],
                 facet: str | None) -> pd.DataFrame:
    """Observed points as (series, facet?, run_id, step, x, y)."""
    rows = select_points(points, metric=metric, x=x)
    by = list(by)
    check_columns(rows, by + ([facet] if facet else []), what="group by")
    series = _row_labels(rows, by)
    frame = pd.DataFrame({
        "series": series,
        "run_id": rows["run_id"].astype(str).to_numpy(),
        "step": rows["step"].to_numpy() if "step" in rows else np.nan,
        "x": rows[x].to_numpy(),
        "y": rows["value"].astype(float).to_numpy(),
    })
    if facet:
        frame["facet"] = rows[facet].map(lambda v: facet_label(facet, v)).to_numpy()
    return frame


def _row_labels(rows: pd.DataFrame, by: list[str]) -> np.ndarray:
    """series_label of each row's ``by`` values, computed once per distinct combination."""
    if not by:
        return np.full(len(rows), "all", dtype=object)
    keys = rows[by].astype(object).where(rows[by].notna(), None)
    combos = keys.drop_duplicates()
    labels = {tuple(c): series_label(dict(zip(by, c))) for c in combos.itertuples(index=False)}
    return np.array([labels[tuple(c)] for c in keys.itertuples(index=False)], dtype=object)


# -- fits --------------------------------------------------------------------------------------
def check_fits(fits: Sequence[Any], *, facet: str | None = None) -> list[Any]:
    """The fits as a list, checked to share metric and compute axis (and to carry ``facet``)."""
    fits = list(fits)
    if not fits:
        raise input_error("no fits to plot", expected="at least one FitResult")
    kinds = {(f.metric, f.x, f.law) for f in fits}
    if len(kinds) > 1:
        msg = (f"fits mix (metric, compute axis, law) {sorted(kinds)}; "
               "plot one metric, axis and law at a time")
        raise ValueError(msg)
    if facet is not None:
        lacking = [f.group for f in fits if facet not in f.group]
        if lacking:
            raise input_error(f"fit group {lacking[0]} has no key {facet!r} to facet on",
                              field=facet, expected=f"{facet!r} among the fit's --by keys")
    return fits


def successful(fits: Sequence[Any]) -> list[Any]:
    """The fits with ``ok=True``; raises :class:`InputError` saying why when there is none."""
    ok = [f for f in fits if f.ok]
    if not ok:
        why = "; ".join(f"{series_label(f.group)}: {', '.join(f.warning_codes) or 'failed'}"
                        for f in fits[:5])
        raise input_error(f"none of the {len(fits)} fits succeeded ({why})",
                          expected="groups with enough points on the compute axis "
                                   "(check them with `rlscale fit`)")
    return ok


def fit_labels(fit: Any, facet: str | None) -> dict[str, str]:
    """``series`` (and ``facet``) labels of one fit's group."""
    rest = {k: v for k, v in fit.group.items() if k != facet}
    out = {"series": series_label(rest)}
    if facet is not None:
        out["facet"] = facet_label(facet, fit.group[facet])
    return out


def fit_window(fit: Any) -> tuple[float, float]:
    """The compute range the fit used: its window, else the range of its data."""
    lo, hi = (float(v) if v is not None else math.nan for v in fit.window)
    xs = np.asarray(fit.data["x"], dtype=float)
    xs = xs[np.isfinite(xs) & (xs > 0)]
    if not (math.isfinite(lo) and lo > 0):
        lo = float(xs.min()) if xs.size else math.nan
    if not math.isfinite(hi):
        hi = float(xs.max()) if xs.size else math.nan
    if xs.size:  # a window wider than the data would draw solid lines over nothing
        lo, hi = max(lo, float(xs.min())), min(hi, float(xs.max()))
    return lo, hi


def extrapolation_end(fits: Sequence[Any], points: pd.DataFrame | None, *,
                      extrapolate_to: float | None, factor: float = 10.0) -> float:
    """Where dashed extrapolations stop: ``extrapolate_to``, else ``factor`` x the max compute."""
    if extrapolate_to is not None:
        if not (extrapolate_to > 0 and math.isfinite(extrapolate_to)):
            raise input_error(f"extrapolate_to={extrapolate_to!r}", field="extrapolate_to",
                              expected="a positive compute value")
        return float(extrapolate_to)
    top = [float(np.nanmax(f.data["x"])) for f in fits if len(f.data)]
    if points is not None and len(points):
        top.append(float(np.nanmax(points["x"])))
    return factor * max(top) if top else math.nan


def curve_frame(fits: Sequence[Any], *, x_end: float, band: str = "mean",
                level: float | None = None, facet: str | None = None) -> pd.DataFrame:
    """Fitted curves and markers for the curves chart.

    Columns: series, facet?, layer, x, y, lower, upper, where ``layer`` is ``fit`` (inside the
    fitted window), ``extrapolation`` (window end to ``x_end``), ``asymptote`` (y = A) or
    ``midpoint`` (x = C_mid, y = R(C_mid)). ``band`` picks ``mean`` (uncertainty of the curve)
    or ``prediction`` (a new observation) for lower/upper at ``level`` (default: the fit's).
    """
    if band not in ("mean", "prediction"):
        msg = f"band={band!r}; expected 'mean' or 'prediction'"
        raise ValueError(msg)
    cols = ("mean_lower", "mean_upper") if band == "mean" else ("pred_lower", "pred_upper")
    parts = []
    for fit in fits:
        if not fit.ok:
            continue
        labels = fit_labels(fit, facet)
        lo, hi = fit_window(fit)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            continue
        segments = [("fit", np.geomspace(lo, hi, GRID_IN))]
        if x_end > hi:
            segments.append(("extrapolation", np.geomspace(hi, x_end, GRID_OUT)))
        for layer, grid in segments:
            pred = fit.predict(grid, level=level)
            parts.append(pd.DataFrame({**labels, "layer": layer, "x": pred["x"],
                                       "y": pred["mean"], "lower": pred[cols[0]],
                                       "upper": pred[cols[1]]}))
        marks = []
        a = fit.params.get("A")
        if a is not None and math.isfinite(a.value):
            marks.append({"layer": "asymptote", "x": np.nan, "y": a.value,
                          "lower": a.lower, "upper": a.upper})
        cmid = fit.params.get("C_mid")
        if cmid is not None and 0 < cmid.value <= x_end:
            at = fit.predict([cmid.value], level=level)
            marks.append({"layer": "midpoint", "x": cmid.value, "y": float(at["mean"].iloc[0]),
                          "lower": cmid.lower, "upper": cmid.upper})
        if marks:
            parts.append(pd.DataFrame([{**labels, **m} for m in marks]))
    if not parts:
        return pd.DataFrame(columns=["series", "layer", "x", "y", "lower", "upper"])
    return pd.concat(parts, ignore_index=True)


def fit_points_frame(fits: Sequence[Any], points: pd.DataFrame | None, *,
                     facet: str | None = None) -> pd.DataFrame:
    """Observed points of each fit: ``used`` (in the fit) or ``excluded`` (burn-in, past max_x).

    Columns: series, facet?, run_id, x, y, status. Without ``points`` only the fitted data
    (``FitResult.data``) is known, so every row is ``used``. Points at compute <= 0 (an RL run's
    step-0 evaluation) have no place on the log axis and are left out of the frame.
    """
    parts = []
    for fit in fits:
        labels = fit_labels(fit, facet)
        used = pd.DataFrame({"run_id": fit.data["run_id"].astype(str).to_numpy(),
                             "x": np.asarray(fit.data["x"], float),
                             "y": np.asarray(fit.data["y"], float)})
        used["status"] = "used"
        rows = [used]
        if points is not None:
            mine = _group_rows(points, fit)
            keys = set(zip(used["run_id"], used["x"]))
            seen = np.array([k in keys for k in zip(mine["run_id"], mine["x"])], dtype=bool)
            other = mine[~seen] if len(mine) else mine
            rows.append(other[["run_id", "x", "y"]].assign(status="excluded"))
        frame = pd.concat(rows, ignore_index=True)
        frame = frame[frame["x"] > 0].reset_index(drop=True)
        for key, value in labels.items():
            frame[key] = value
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _group_rows(points: pd.DataFrame, fit: Any) -> pd.DataFrame:
    """Rows of a points frame (metric/x already selected: columns run_id, x, y + metadata)
    that belong to ``fit``'s group, compared by label so 4e9 matches "4e9" and 4000000000."""
    mask = np.ones(len(points), dtype=bool)
    for key, value in fit.group.items():
        if key not in points.columns:
            return points.iloc[0:0]
        # as rlscale.fit groups them: a run without a value for the key is its own group
        col = points[key].astype(object).where(points[key].notna(), points["run_id"])
        mask &= col.map(format_value).to_numpy() == format_value(value)
    return points[mask]


def params_frame(fits: Sequence[Any], *, params: Sequence[str] | None = None,
                 facet: str | None = None) -> pd.DataFrame:
    """One row per (fit, parameter): label, series, facet?, param, value, lower, upper, vary.

    ``label`` is the full group (series plus facet value); rows come sorted by A (descending)
    where the law has one, so the best ceiling is on top.
    """
    every = list(dict.fromkeys(p for f in fits for p in f.params))
    # the sigmoid's A, B, C_mid (R0 is the start, not the recipe); other laws: all parameters
    names = list(params) if params else (
        list(CURVE_PARAMS) if set(CURVE_PARAMS) <= set(every) else every)
    rows = []
    for fit in fits:
        labels = fit_labels(fit, facet)
        label = series_label(fit.group)
        for name in names:
            est = fit.params.get(name)
            if est is None:
                continue
            rows.append({**labels, "label": label, "param": name, "value": est.value,
                         "lower": est.lower, "upper": est.upper, "vary": bool(est.vary),
                         "ok": bool(fit.ok)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise input_error(f"the fits have none of the parameters {names}", field="params",
                          expected=f"names among {sorted({p for f in fits for p in f.params})}")
    key = "A" if "A" in set(frame["param"]) else names[0]
    order = (frame[frame["param"] == key].sort_values("value", ascending=False)["label"]
             .tolist())
    order += [lab for lab in dict.fromkeys(frame["label"]) if lab not in order]
    frame["rank"] = frame["label"].map({lab: i for i, lab in enumerate(order)})
    return frame.sort_values(["rank", "param"], kind="stable").reset_index(drop=True)


def residual_frame(fits: Sequence[Any], *, facet: str | None = None) -> pd.DataFrame:
    """Residuals (observed - fitted mean) of each fit's points: series, facet?, run_id, x, y,
    fitted, residual."""
    parts = []
    for fit in successful(fits):
        if not len(fit.data):
            continue
        xs = np.asarray(fit.data["x"], float)
        fitted = fit.predict(xs)["mean"].to_numpy()
        frame = pd.DataFrame({"run_id": fit.data["run_id"].astype(str).to_numpy(), "x": xs,
                              "y": np.asarray(fit.data["y"], float), "fitted": fitted})
        frame["residual"] = frame["y"] - frame["fitted"]
        frame = frame[frame["x"] > 0].reset_index(drop=True)  # the axis is logarithmic
        for key, value in fit_labels(fit, facet).items():
            frame[key] = value
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def backtest_frames(result: Any, *, facet: str | None = None) -> tuple[list[Any], pd.DataFrame]:
    """The fits of a :class:`rlscale.forecast.backtest.BacktestResult` and one long frame for its chart.

    Rows: the fitted curves (``fit`` up to the cut, ``extrapolation`` past it, band = prediction
    interval), the points each fit saw (``observed-used``), the held-out points it was scored on
    (``observed-heldout``, with ``covered``) and one ``cut`` row per group at the cut compute.
    """
    fits = check_fits(result.fits, facet=facet)
    groups = [g for g in result.summary["group"] if g != "overall"]
    if len(groups) != len(fits):
        msg = f"backtest has {len(fits)} fits but {len(groups)} group summaries"
        raise ValueError(msg)
    labels = {g: fit_labels(f, facet) for g, f in zip(groups, fits)}
    held = result.points
    top = [float(np.nanmax(held["x"]))] if len(held) else []
    x_end = max(top + [float(np.nanmax(f.data["x"])) for f in fits if len(f.data)])
    curves = curve_frame(fits, x_end=x_end, band="prediction", level=result.level, facet=facet)
    curves = curves[curves["layer"].isin(["fit", "extrapolation"])]
    used = fit_points_frame(fits, None, facet=facet).assign(layer="observed-used")
    parts = [curves, used.drop(columns=["status"])]
    if len(held):
        lab = pd.DataFrame([labels[g] for g in held["group"]])
        parts.append(pd.DataFrame({"run_id": held["run_id"].astype(str).to_numpy(),
                                   "x": held["x"].to_numpy(float), "y": held["y"].to_numpy(float),
                                   "covered": held["covered"].astype(bool).to_numpy(),
                                   "layer": "observed-heldout"}).join(lab))
    summary = result.summary[result.summary["group"] != "overall"]
    parts.append(pd.DataFrame([{**labels[g], "layer": "cut", "x": float(c)}
                               for g, c in zip(summary["group"], summary["cut_x"])]))
    return fits, pd.concat(parts, ignore_index=True)
