"""``fit()``: select, group and window the points, then fit each group (see docs/fit.md)."""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rlscale.errors import RLScaleError, input_error
from rlscale.fit.batch import multistart_many
from rlscale.fit.core import failed, fit_curve, starts_for
from rlscale.fit.heldout import heldout_many
from rlscale.fit.laws import LAWS, Law, get_law
from rlscale.fit.result import FitResult, FitWarning
from rlscale.store import AUTO_X_ORDER, X_AXES

LOSSES = ("linear", "huber")
RESAMPLES = ("points", "runs")
METHODS = ("lmfit", "scalerl-grid")
NAN_POLICIES = ("error", "drop")
INTERVALS = ("wald", "profile")
BATCH_MIN_GROUPS = 4  # from this many groups on, their multi-starts share one batched solve


def _choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise input_error(f"{name}={value!r} is not allowed", field=name,
                          expected=f"one of {list(allowed)}")


def _by_columns(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [b.strip() for b in by.split(",") if b.strip()]
    return list(by)


def parse_r0(r0: str | float) -> str | float:
    """``r0`` as the fit takes it: "fit", "first" or a finite number (strings are parsed)."""
    if isinstance(r0, (int, float)) and not isinstance(r0, bool):
        if not math.isfinite(float(r0)):
            raise input_error(f"r0={r0!r} is not finite", expected="a finite number")
        return float(r0)
    if r0 in ("fit", "first"):
        return r0
    try:
        value = float(r0)
    except (TypeError, ValueError):
        raise input_error(f"r0={r0!r} is not 'fit', 'first' or a number") from None
    return parse_r0(value)


def axes_with_data(points: pd.DataFrame, metric: str | None = None) -> list[str]:
    """The x axes (:data:`rlscale.store.X_AXES`) on which some point of ``metric`` (all points
    when None) has a finite value."""
    rows = points
    if metric is not None and "metric" in points.columns:
        rows = points[points["metric"].to_numpy() == metric]
    return [a for a in X_AXES if a in rows.columns
            and np.isfinite(_floats(rows[a].to_numpy())).any()]


def choose_x(points: pd.DataFrame, metric: str | None = None, x: str | None = None) -> str:
    """``x`` when given, else the first axis of :data:`rlscale.store.AUTO_X_ORDER` (gpu_hours,
    flops, tokens, step) on which the points of ``metric`` have values."""
    if x is not None and x != "auto":
        return x
    have = axes_with_data(points, metric)
    for axis in AUTO_X_ORDER:
        if axis in have:
            return axis
    raise input_error(f"no points{f' of metric {metric!r}' if metric else ''} have a compute "
                      "axis or step", field="x", expected=f"values in one of {list(X_AXES)}")


def fit(points: pd.DataFrame, *, metric: str | None = None, x: str | None = "gpu_hours",
        law: str | Law = "sigmoid", by: str | Sequence[str] | None = None,
        burn_in: float | None = None, max_x: float | None = None, r0: str | float = "fit",
        loss: str = "linear", bootstrap: int = 0, resample: str = "points",
        method: str = "lmfit", level: float = 0.95, seed: int = 0,
        nan: str = "error", interval: str = "wald") -> FitResult | list[FitResult]:
    """Fit a compute-performance law to reward curves.

    ``points``: long frame as from ``rlscale.load_points(store, with_meta=True)`` (columns
    run_id, step, metric, value and the compute axes, plus metadata such as recipe). ``x`` is
    the compute column (``step`` uses the step column; None: the first of gpu_hours, flops,
    tokens, step that the points have, :func:`choose_x`). ``by`` pools the runs of each group
    (e.g. the seeds of a recipe) into one fit; without it all points form one group. Only points
    with ``burn_in <= x <= max_x`` are used. ``r0``: ``"fit"`` (free), ``"first"`` (fixed at the
    mean first value of the group's runs) or a number. ``law="all"`` fits every law in
    :data:`rlscale.fit.laws.LAWS` and ranks them (gof ``rank_heldout``, ``rank_aic``, ``rank_bic``).
    ``bootstrap`` > 0 refits that many resamples (of ``resample`` = points or runs) for the
    intervals (else ``interval`` = ``"wald"``, AR(1)-widened, or ``"profile"``, profile
    likelihood). ``nan="drop"`` drops NaN values (with a warning) instead of raising.

    Returns one :class:`FitResult`, or a list of them (one per group and law) when ``by`` is
    given or ``law="all"``. Groups that cannot be fitted come back with ``ok=False``.
    """
    if x is None or x == "auto":
        x = choose_x(points, metric) if isinstance(points, pd.DataFrame) else "gpu_hours"
    _choice("x", x, X_AXES)
    _choice("loss", loss, LOSSES)
    _choice("resample", resample, RESAMPLES)
    _choice("method", method, METHODS)
    _choice("nan", nan, NAN_POLICIES)
    _choice("interval", interval, INTERVALS)
    laws = list(LAWS.values()) if law == "all" else [get_law(law)]
    if not 0 < level < 1:
        raise input_error(f"level={level!r} is outside (0, 1)", field="level",
                          expected="a coverage such as 0.95")
    if int(bootstrap) < 0:
        raise input_error(f"bootstrap={bootstrap!r} is negative", field="bootstrap",
                          expected="0 (no bootstrap) or a number of resamples")
    r0v = parse_r0(r0)
    if method == "scalerl-grid" and any(lw.name != "sigmoid" for lw in laws):
        raise input_error("method 'scalerl-grid' fits only the sigmoid", field="method",
                          expected="--law sigmoid with --method scalerl-grid")
    by_cols = _by_columns(by)
    df, metric = _select(points, metric=metric, x=x, nan=nan, keep=by_cols)
    groups = _groups(df, by_cols, known=list(points.columns))
    opts = {"burn_in": burn_in, "max_x": max_x, "r0": r0v, "loss": loss,
            "bootstrap": int(bootstrap), "resample": resample, "by": by_cols,
            "interval": interval}
    fits_by_law = []
    for lw in laws:
        prepared = [_window(gdf, key, lw, metric=metric, x=x, burn_in=burn_in, max_x=max_x,
                            r0=r0v, method=method, level=level, seed=seed, opts=opts)
                    for key, gdf in groups]
        kw = dict(loss=loss, method=method, level=level, bootstrap=int(bootstrap),
                  resample=resample, seed=seed, interval=interval)
        fits: list = [p if isinstance(p, FitResult) else None for p in prepared]
        live = [i for i, p in enumerate(prepared) if not isinstance(p, FitResult)]
        if loss == "linear" and method == "lmfit" and len(live) >= BATCH_MIN_GROUPS:
            # Each group tries its single MINPACK start; the suspicious rest share one batched
            # multi-start solve and one batched held-out refit.
            for i in live:
                fits[i] = _guarded(lw, prepared[i], fast_only=True, **kw)
            rest = [i for i in live if fits[i] is None]
            solved = multistart_many(lw, [(prepared[i][0], prepared[i][1], prepared[i][3])
                                          for i in rest], starts_for, metric)
            for i, sol in zip(rest, solved):
                fits[i] = _guarded(lw, prepared[i], presolved=sol, with_heldout=False, **kw)
            heldout_many(lw, [fits[i] for i in rest])
        else:
            for i in live:
                fits[i] = _guarded(lw, prepared[i], **kw)
        fits_by_law.append(fits)
    results: list[FitResult] = []
    for per_group in zip(*fits_by_law):
        if len(per_group) > 1:
            _rank(list(per_group))
        results.extend(per_group)
    if not by_cols and law != "all":
        return results[0]
    return results


def _select(points: pd.DataFrame, *, metric: str | None, x: str, nan: str,
            keep: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """The rows of one metric as numpy columns: ``_x``, ``_y`` (floats), ``run_id`` (str), and
    the grouping columns ``keep`` that exist. No DataFrame is copied: one fit of one curve must
    not cost more in pandas than in the solver."""
    if not isinstance(points, pd.DataFrame):
        raise input_error(f"points is a {type(points).__name__}", field="points",
                          expected="a pandas DataFrame as from rlscale.load_points")
    missing = [c for c in ("value", x) if c not in points.columns]
    if missing:
        raise input_error(f"points have no column(s) {missing}", field=missing[0],
                          expected=f"columns value and {x} (as from rlscale.load_points)")
    rows: np.ndarray | None = None
    if "metric" in points.columns:
        col = points["metric"].to_numpy()
        metrics = sorted({str(m) for m in pd.unique(col) if not pd.isna(m)})
        if metric is None:
            if len(metrics) != 1:
                raise input_error(f"points hold metrics {metrics}; choose one", field="metric",
                                  expected="metric=NAME (--metric NAME)")
            metric = metrics[0]
        if metric not in metrics:
            raise input_error(f"no points for metric {metric!r}", field="metric",
                              expected=f"one of {metrics}")
        if len(metrics) > 1 or pd.isna(col).any():
            rows = np.flatnonzero(col == metric)
    elif metric is None:
        metric = "value"

    def column(name: str) -> np.ndarray:
        arr = points[name].to_numpy()
        return arr if rows is None else arr[rows]

    out: dict[str, np.ndarray] = {
        "_y": _floats(column("value")), "_x": _floats(column(x)),
        "run_id": (column("run_id").astype(str).astype(object) if "run_id" in points.columns
                   else np.full(len(points) if rows is None else rows.size, "run", dtype=object)),
    }
    if "step" in points.columns:
        out["step"] = column("step")
    for name in keep:
        if name in points.columns and name not in out:
            out[name] = column(name)
    if out["_x"].size and not np.isfinite(out["_x"]).any():
        have = [a for a in X_AXES if a != x and a in points.columns
                and np.isfinite(_floats(column(a))).any()]
        raise input_error(f"no point of metric {metric!r} has a {x} value; the runs have "
                          + (", ".join(have) if have else "no other axis"), field="x",
                          expected=(f"--x {have[0]}, or no --x: the first of "
                                    f"{', '.join(AUTO_X_ORDER)} that the runs have") if have
                          else "points with compute values")
    bad_y = ~np.isfinite(out["_y"])
    if bad_y.any() and nan == "error":
        first = int(np.flatnonzero(bad_y)[0])
        where = f"run {out['run_id'][first]!r}" + (f", step {out['step'][first]}"
                                                    if "step" in out else "")
        raise input_error(f"{int(bad_y.sum())} non-finite value(s) of metric {metric!r} "
                          f"(first: {where})", field="value",
                          expected="finite values, or nan='drop' (--drop-nan) to skip them")
    return out, metric


def _floats(arr: np.ndarray) -> np.ndarray:
    """A column as float64; anything that is not a number becomes NaN (like pd.to_numeric)."""
    if arr.dtype.kind in "fiub":
        return arr.astype(float)
    return pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(dtype=float)


def _groups(cols: dict[str, np.ndarray], by_cols: list[str], *, known: list[str]
            ) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    if not by_cols:
        return [({}, cols)]
    keys = {}
    for col in by_cols:
        values = cols.get(col)
        if values is None or pd.isna(values).all():
            if col == "recipe":  # runs without a recipe are fitted one by one
                keys[col] = cols["run_id"]
            else:
                raise input_error(f"cannot group by {col!r}: no such column", field="by",
                                  expected=f"columns among {sorted(known)}")
        else:
            missing = pd.isna(values)
            keys[col] = np.where(missing, cols["run_id"], values.astype(object)) \
                if missing.any() else values
    frame = pd.DataFrame(keys)
    out = []
    for key, idx in sorted(frame.groupby(by_cols, sort=True, dropna=False).indices.items(),
                           key=lambda kv: _sort_key(kv[0])):
        key = key if isinstance(key, tuple) else (key,)
        out.append(({c: (v.item() if hasattr(v, "item") else v) for c, v in zip(by_cols, key)},
                    {name: arr[idx] for name, arr in cols.items()}))
    return out


def _sort_key(key: Any) -> tuple:
    key = key if isinstance(key, tuple) else (key,)
    return tuple((0, v) if isinstance(v, (int, float, np.number)) else (1, str(v)) for v in key)


def _points_frame(x: np.ndarray, y: np.ndarray, run_id: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"x": x, "y": y, "run_id": run_id})


def _window(cols: dict[str, np.ndarray], key: dict[str, Any], law: Law, *, metric: str, x: str,
            burn_in: float | None, max_x: float | None, r0: str | float, method: str,
            level: float, seed: int, opts: dict[str, Any]) -> tuple | FitResult:
    """The group's points inside the window as (x, y, run_id, fixed, base, warnings), sorted by
    run then x; or a not-ok FitResult when nothing is left."""
    warnings: list[FitWarning] = []
    xs, ys, runs = cols["_x"], cols["_y"], cols["run_id"]
    good = np.isfinite(xs) & np.isfinite(ys)
    if not good.all():
        warnings.append(FitWarning("dropped_points", f"dropped {int((~good).sum())} point(s) "
                                   f"with a missing {x} or value"))
    fixed: dict[str, float] = {}
    if law.baseline is not None and r0 != "fit":
        if r0 == "first":
            firsts = [ys[good & (runs == r)][np.argmin(xs[good & (runs == r)])]
                      for r in pd.unique(runs[good])]
            if firsts:
                fixed[law.baseline] = float(np.mean(firsts))
        else:
            fixed[law.baseline] = float(r0)
    keep = good.copy()
    if burn_in is not None:
        keep &= xs >= burn_in
    if max_x is not None:
        keep &= xs <= max_x
    if law.positive_x and (keep & (xs <= 0)).any():
        warnings.append(FitWarning("dropped_points", f"dropped {int((keep & (xs <= 0)).sum())} "
                                   f"point(s) at {x} <= 0, where the {law.name} law is undefined"))
        keep &= xs > 0
    xk, yk, rk = xs[keep], ys[keep], runs[keep]
    if rk.size and (rk[1:] < rk[:-1]).any() or (np.diff(xk) < 0).any():
        order = np.lexsort((xk, rk))
        xk, yk, rk = xk[order], yk[order], rk[order]
    lo = float(burn_in) if burn_in is not None else (float(xk.min()) if xk.size else math.nan)
    hi = float(max_x) if max_x is not None else (float(xk.max()) if xk.size else math.nan)
    base = dict(group=key, law=law.name, metric=metric, x=x, n_points=int(xk.size),
                window=(lo, hi), method=method, level=float(level), data=None,
                _lazy={"data": functools.partial(_points_frame, xk, yk, rk)},
                options={**opts, "fixed": fixed, "seed": seed})
    if xk.size == 0:
        return failed(law=law, base=base, code="too_few_points", extra=warnings,
                      message=f"no points with a finite {x} and value inside the window")
    return xk, yk, rk, fixed, base, warnings


def _guarded(law: Law, prepared: tuple, **kwargs: Any) -> FitResult | None:
    """Fit one group; a numerical failure fails that group (ok=False), never the whole call.
    None only with ``fast_only=True`` when the fast path declined (see :func:`fit_curve`)."""
    x, y, run_id, fixed, base, warnings = prepared
    try:
        return fit_curve(x, y, run_id, law=law, fixed=fixed, base=base, warnings=warnings,
                         **kwargs)
    except RLScaleError:
        raise
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        return failed(law=law, base=base, code="did_not_converge", extra=warnings,
                      message=f"numerical failure ({type(exc).__name__}: {exc}); try a narrower "
                              "window, --r0 first or --loss huber")


def _rank(fits: list[FitResult]) -> None:
    """Rank the laws fitted to one group by held-out RMSE, AIC and BIC (1 = best)."""
    for key, larger_worse in (("heldout_rmse", True), ("aic", True), ("bic", True)):
        vals = [(f.gof.get(key) if f.ok else None) for f in fits]
        scored = sorted((v, i) for i, v in enumerate(vals) if v is not None and math.isfinite(v))
        rank_key = "rank_heldout" if key == "heldout_rmse" else f"rank_{key}"
        for r, (_, i) in enumerate(scored, start=1):
            fits[i].gof[rank_key] = r
