"""A larger model's whole reward curve from smaller ones, and the backtest that checks it.

:func:`fit_scales` fits one sigmoid per value of a numeric metadata key (the scale);
:func:`scale_forecast` fits the scale laws (:mod:`rlscale.forecast.scale`) and predicts, at each
new scale, the reward at a grid of compute, the compute to a target or to a fraction of the
gain, and where the new curve overtakes the largest scale already run, all with intervals from
the joint draws. :func:`scale_backtest` holds out the largest scale, forecasts its whole curve
from the others, and scores it against the naive forecast "the largest fitted scale's curve,
unchanged" and for interval coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rlscale.errors import InputError, input_error
from rlscale.fit import fit
from rlscale.fit.metric_kind import value_range
from rlscale.fit.result import FitWarning
from rlscale.forecast.budgets import clip_row, compute_interval
from rlscale.forecast.curve import Curve, curve
from rlscale.forecast.ranking import crossover_range, pair_crossovers
from rlscale.forecast.roots import check_level, sigmoid_fraction_compute
from rlscale.forecast.scale import SCALE_PARAMS, ScaleLaws, fit_scale_laws, scale_values
from rlscale.store import POINT_COLUMNS
from rlscale.text import num, records

COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9)
GRID_POINTS = 7


def fit_scales(points: pd.DataFrame, *, key: str, metric: str, **fit_options: Any) -> list[Any]:
    """One sigmoid fit per value of ``key`` (its runs pooled), sorted by scale.

    ``fit_options`` go to :func:`rlscale.fit.fit` (``by`` is ``key``; ``law`` must be sigmoid).
    Raises InputError when ``key`` is not a numeric metadata key of the runs.
    """
    if key not in points.columns:
        keys = sorted(c for c in points.columns if c not in POINT_COLUMNS)
        raise input_error(f"no metadata key {key!r} in the runs", field="--scale-by",
                          expected=f"a numeric run metadata key, one of {keys} (set one with "
                                   f"rlscale ingest --set {key}=VALUE)")
    missing = points.loc[points[key].isna(), "run_id"].astype(str).unique()
    if len(missing):
        raise input_error(f"{len(missing)} run(s) have no {key} (e.g. {missing[0]})",
                          field="--scale-by", expected=f"a {key} value on every run")
    fit_options = {**fit_options, "by": [key]}
    if fit_options.get("law", "sigmoid") != "sigmoid":
        raise input_error(f"--scale-by fits laws of the sigmoid's parameters, not of the "
                          f"{fit_options['law']} law", field="--law", expected="sigmoid")
    out = fit(points, metric=metric, **fit_options)
    out = out if isinstance(out, list) else [out]
    values = scale_values(out, key)
    return [f for _, f in sorted(zip(values, out), key=lambda t: t[0])]


@dataclass
class ScaleForecast:
    """What :func:`scale_forecast` returns.

    ``curve``: one row per (scale, x): ``scale, x, mean, mean_lower, mean_upper, pred_lower,
    pred_upper, warnings``; ``params``: one row per (scale, parameter) for the observed scales
    (``kind="fitted"``: the scale's own fit and ``law``: the law there) and the new ones
    (``kind="predicted"``): ``scale, param, kind, value, lower, upper``; ``compute``: with a
    target or fraction, the :func:`rlscale.forecast.budgets.compute_for_reward` columns per new
    scale (else None); ``overtakes``: per new scale, where its mean curve rises above the
    largest observed scale's: ``scale, x, x_lower, x_upper, p_cross, status`` (``crosses``,
    ``above throughout``, ``below throughout``); ``warnings``: per new scale.
    """

    key: str
    metric: str
    x_axis: str
    level: float
    laws: ScaleLaws
    curve: pd.DataFrame
    params: pd.DataFrame
    overtakes: pd.DataFrame
    compute: pd.DataFrame | None = None
    warnings: dict[float, list[FitWarning]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the tables as records, the laws' summaries, the warnings per scale."""
        return {"key": self.key, "metric": self.metric, "x_axis": self.x_axis,
                "level": self.level, "scales": [float(v) for v in self.laws.scales],
                "laws": {k: v.summary(self.level) for k, v in self.laws.laws.items()},
                "curve": records(self.curve), "params": records(self.params),
                "overtakes": records(self.overtakes),
                "compute": None if self.compute is None else records(self.compute),
                "warnings": [{"scale": n, **w.to_dict()} for n, ws in self.warnings.items()
                             for w in ws]}


def default_grid(fits: Sequence[Any], n: int = GRID_POINTS) -> np.ndarray:
    """``n`` log-spaced compute values (2 significant digits) from the smallest compute the
    scales were fitted on to 10x the largest: the reach of the new curve past the data."""
    lo, hi = crossover_range(fits)
    xs = np.geomspace(lo * 10.0, hi / 100.0, n)
    return np.array([float(f"{v:.2g}") for v in xs])


def scale_forecast(laws: ScaleLaws, at: Sequence[float], *, metric: str, x_axis: str,
                   budgets: Sequence[float] | None = None, target: float | None = None,
                   ceiling_frac: float | None = None, level: float = 0.9,
                   seed: int = 0) -> ScaleForecast:
    """Predict the whole curve at each scale of ``at`` from ``laws`` (see :class:`ScaleForecast`).

    ``budgets``: the compute grid (default :func:`default_grid`); at most one of ``target`` (a
    reward) or ``ceiling_frac`` (a fraction of the gain) adds the ``compute`` table.
    """
    level = check_level(level)
    at = [float(v) for v in at]
    if not at or any(not (np.isfinite(v) and v > 0) for v in at):
        raise InputError(f"--at needs positive scales of {laws.key}, got {at}")
    if target is not None and ceiling_frac is not None:
        raise InputError("give at most one of target and ceiling_frac")
    xs = default_grid(laws.fits) if budgets is None else np.asarray(budgets, dtype=float)
    bounds = value_range(metric, np.concatenate([f.data["y"].to_numpy() for f in laws.fits]))
    rows, compute, over, warns = [], [], [], {}
    for n in at:
        c = laws.curve_at(n)
        warns[n] = laws.warnings_at(n)
        codes = [w.code for w in warns[n]]
        for rec in pd.DataFrame(c.predict(xs, level=level, seed=seed)).to_dict("records"):
            row = {"scale": n, **rec, "warnings": list(codes)}
            if bounds is not None:
                clip_row(row, bounds)
            rows.append(row)
        if target is not None or ceiling_frac is not None:
            compute.append({"scale": n, **_compute(c, target, ceiling_frac, level)})
        over.append({"scale": n, **_overtake(laws, n, c, level)})
    return ScaleForecast(key=laws.key, metric=metric, x_axis=x_axis, level=level, laws=laws,
                         curve=pd.DataFrame(rows), params=param_table(laws, at, level),
                         overtakes=pd.DataFrame(over),
                         compute=pd.DataFrame(compute) if compute else None, warnings=warns)


def _compute(c: Curve, target: float | None, fraction: float | None,
             level: float) -> dict[str, Any]:
    if fraction is not None:
        p, d = c.point, c.draws
        x_hat = float(sigmoid_fraction_compute(fraction, B=p["B"], C_mid=p["C_mid"]))
        x_draws = sigmoid_fraction_compute(fraction, B=d["B"], C_mid=d["C_mid"])
        reward = p["R0"] + fraction * (p["A"] - p["R0"])
        return {"fraction": fraction, "target": reward,
                **compute_interval(x_hat, np.asarray(x_draws, dtype=float), level)}
    if not np.isfinite(target):
        raise InputError(f"target reward must be a finite number, got {target!r}")
    x_hat = float(c.inverse(target, c.point))
    return {"target": float(target), **compute_interval(x_hat, c.inverse(target, c.draws), level)}


def _overtake(laws: ScaleLaws, n: float, c: Curve, level: float) -> dict[str, Any]:
    """Where the curve at ``n`` rises above the largest observed scale's (draws paired, since
    the law's draw s was fitted on that scale's draw s)."""
    _, _, ok = laws.params_at(n)
    big = laws.curves[-1]
    big_draws = {k: v[ok] for k, v in laws.draws[-1].items()}
    lo, hi = crossover_range(laws.fits)
    vs = f"{laws.key}={num(laws.largest)}"
    rows = pair_crossovers(c, big, c.draws, big_draws, x_range=(lo, hi), level=level)
    ups = [r for r in rows if r["leader_after"] == c.label]
    if ups:
        r = ups[0]
        return {"x": r["x"], "x_lower": r["x_lower"], "x_upper": r["x_upper"],
                "p_cross": r["p_cross"], "status": "crosses", "vs": vs}
    above = float(c.mean(hi)) > float(big.mean(hi)) and float(c.mean(lo)) > float(big.mean(lo))
    return {"x": lo if above else float("inf"), "x_lower": float("nan"),
            "x_upper": float("nan"), "p_cross": float("nan"),
            "status": "above throughout" if above else "below throughout", "vs": vs}


def param_table(laws: ScaleLaws, at: Sequence[float], level: float) -> pd.DataFrame:
    """The parameters behind the plots: per observed scale its fit and the law there, per new
    scale the law's prediction, each with its ``level`` interval over the joint draws."""
    tail = 50.0 * (1.0 - level)
    rows = []
    for n, c, d in zip(laws.scales, laws.curves, laws.draws):
        for name in SCALE_PARAMS:
            lo, hi = np.nanpercentile(d[name], [tail, 100 - tail])
            rows.append({"scale": float(n), "param": name, "kind": "fitted",
                         "value": c.point[name], "lower": lo, "upper": hi})
    grid = sorted({*map(float, laws.scales), *map(float, at)})
    for name, law in laws.laws.items():
        point, draws = law.predict(np.array(grid))
        lo, hi = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
        for i, n in enumerate(grid):
            kind = "predicted" if n in at and n not in laws.scales else "law"
            rows.append({"scale": n, "param": name, "kind": kind, "value": point[i],
                         "lower": lo[i], "upper": hi[i]})
    return pd.DataFrame(rows)


@dataclass
class ScaleBacktest:
    """What :func:`scale_backtest` returns.

    ``held_out``: the largest scale; ``fitted``: the scales the laws saw. ``summary``: ``n_test``,
    ``mae`` (the forecast's mean), ``mae_naive`` (the largest fitted scale's curve unchanged),
    ``vs_naive`` (their ratio; below 1 beats it), ``mae_own_fit`` (the held-out scale's own
    fit: the noise floor), ``coverage@L`` of the prediction interval at each
    :data:`COVERAGE_LEVELS`. ``points``: per held-out point ``run_id, x, y, mean, naive,
    lower@L, upper@L``; ``params``: predicted against fitted A, B, C_mid, R0 of the held-out
    scale; ``warnings``: of the laws and of predicting there.
    """

    key: str
    metric: str
    x_axis: str
    held_out: float
    fitted: list[float]
    summary: dict[str, Any]
    points: pd.DataFrame
    params: pd.DataFrame
    warnings: list[FitWarning]

    @property
    def beats_naive(self) -> bool:
        return bool(self.summary["vs_naive"] < 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "metric": self.metric, "x_axis": self.x_axis,
                "held_out": self.held_out, "fitted": self.fitted, "summary": self.summary,
                "params": records(self.params), "points": records(self.points),
                "warnings": [w.to_dict() for w in self.warnings]}


def scale_backtest(fits: Sequence[Any], *, key: str, metric: str, x_axis: str,
                   level: float = 0.9, seed: int = 0) -> ScaleBacktest:
    """Fit the scale laws on every scale but the largest and score the forecast of its curve.

    ``fits``: one sigmoid fit per scale (:func:`fit_scales`); needs 3 or more scales. The
    held-out scale is scored on the points its own fit used (after any burn-in).
    """
    fits = list(fits)
    values = scale_values(fits, key)
    order = np.argsort(values)
    fits, values = [fits[i] for i in order], [values[i] for i in order]
    if len(fits) < 3:
        raise InputError(f"leave-largest-out needs at least 3 scales of {key} (2 to fit the "
                         f"laws on, 1 to forecast), got {len(fits)}")
    held, n = fits[-1], values[-1]
    laws = fit_scale_laws(fits[:-1], key=key, seed=seed)
    c = laws.curve_at(n)
    data = held.data
    xs, ys = data["x"].to_numpy(dtype=float), data["y"].to_numpy(dtype=float)
    naive = laws.curves[-1].mean(xs)
    pts = pd.DataFrame({"run_id": data["run_id"].astype(str).to_numpy(), "x": xs, "y": ys,
                        "mean": c.mean(xs), "naive": naive})
    summary: dict[str, Any] = {"n_test": int(len(xs)),
                               "mae": float(np.mean(np.abs(ys - pts["mean"])))}
    summary["mae_naive"] = float(np.mean(np.abs(ys - naive)))
    summary["vs_naive"] = summary["mae"] / summary["mae_naive"] if summary["mae_naive"] > 0 \
        else float("nan")
    summary["mae_own_fit"] = (float(np.mean(np.abs(ys - curve(held).mean(xs)))) if held.ok
                              else float("nan"))
    for lv in sorted({*COVERAGE_LEVELS, level}):
        pred = c.predict(xs, level=lv, seed=seed)
        pts[f"lower@{lv:g}"], pts[f"upper@{lv:g}"] = pred["pred_lower"], pred["pred_upper"]
        summary[f"coverage@{lv:g}"] = float(np.mean((ys >= pred["pred_lower"])
                                                    & (ys <= pred["pred_upper"])))
    return ScaleBacktest(key=key, metric=metric, x_axis=x_axis, held_out=n, fitted=values[:-1],
                         summary=summary, points=pts, params=_held_params(c, held, level),
                         warnings=laws.warnings_at(n))


def _held_params(c: Curve, held: Any, level: float) -> pd.DataFrame:
    tail = 50.0 * (1.0 - level)
    rows = []
    for name in SCALE_PARAMS:
        lo, hi = np.nanpercentile(c.draws[name], [tail, 100 - tail])
        fitted = float(held.params[name].value) if held.ok else float("nan")
        rows.append({"param": name, "predicted": c.point[name], "lower": lo, "upper": hi,
                     "fitted": fitted, "inside": bool(lo <= fitted <= hi)})
    return pd.DataFrame(rows)


def summary_line(bt: ScaleBacktest) -> str:
    """One plain sentence: does the forecast beat the naive one, and is coverage sane."""
    s = bt.summary
    verdict = ("beats" if bt.beats_naive else "does NOT beat")
    cov = s.get("coverage@0.9", float("nan"))
    line = (f"the scale-law forecast {verdict} the naive forecast (the largest fitted scale's "
            f"curve unchanged): mean |err| {num(s['mae'])} vs {num(s['mae_naive'])}")
    if np.isfinite(cov) and cov < 0.7:
        line += (f"; its 90% intervals cover only {cov:.0%} of the held-out points: the scale "
                 "laws do not hold here")
    return line
