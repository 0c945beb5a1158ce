"""FitResult: what a fit returns, and how it predicts, reports and serialises itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from rlscale.fit.laws import Law, get_law
from rlscale.fit.predictive import draw_columns, predictive
from rlscale.text import group_label, jsonable, short

WARNING_CODES: dict[str, str] = {
    "asymptote_not_identified": "the curve has not clearly passed C_mid; A is an extrapolation",
    "param_at_bound": "a parameter sits on its bound; the optimum may lie beyond it",
    "too_few_points": "too few points (or distinct compute values) for the free parameters",
    "not_increasing": "the metric does not rise with compute",
    "not_decreasing": "the metric is better when lower (a loss) but does not fall with compute",
    "direction_mismatch": "the fitted curve moves the other way from the data",
    "ceiling_above_plateau": "the ceiling lies far beyond a curve that has levelled off",
    "did_not_converge": "the optimiser stopped before converging, or the covariance is singular",
    "dropped_points": "some points were dropped (missing compute, x <= 0 for this law, NaN)",
    "resample_fallback": "resampling over runs needs >= 2 runs; fell back to points",
    "few_runs": "a run bootstrap over fewer than 5 runs gives coarse, optimistic intervals",
    "autocorrelated_residuals": "residuals are autocorrelated; intervals were widened for it",
}


@dataclass
class FitWarning:
    """A structured warning: ``code`` (one of :data:`WARNING_CODES`) and a human ``message``."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class ParamEstimate:
    """One parameter: best value, interval [lower, upper] at the fit's level, and how it was got.

    ``vary=False`` marks a parameter held fixed (``--r0 first``/VALUE); its interval is the value.
    ``method`` names the interval method (``wald``, ``wald-ar1``, ``bootstrap-points``, ...).
    """

    value: float
    lower: float
    upper: float
    stderr: float
    vary: bool = True
    method: str = "wald"

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in self.__dict__.items()}


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


@dataclass
class FitResult:
    """One law fitted to one group's points. See docs/fit.md.

    ``samples`` has one row per joint parameter draw (columns = the law's parameters, fixed ones
    constant): bootstrap refits when ``samples_method`` starts with ``bootstrap``, else draws from
    the asymptotic normal of the covariance (``normal-ar1``). Downstream code pushes these through
    the law to carry uncertainty. ``data`` holds the points used (columns x, y, run_id).
    """

    group: dict[str, Any]
    law: str
    metric: str
    x: str
    n_points: int
    window: tuple[float, float]
    method: str
    params: dict[str, ParamEstimate]
    level: float
    samples: pd.DataFrame
    samples_method: str
    resid_sd: float
    resid_ar1: float
    data: pd.DataFrame
    gof: dict[str, Any] = field(default_factory=dict)
    warnings: list[FitWarning] = field(default_factory=list)
    ok: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    # Factories of fields computed on first use (``samples`` of a normal-draw fit, ``data``):
    # a fit that is only read for its parameters never pays for 1,000 draws or a DataFrame.
    _lazy: dict[str, Callable[[], pd.DataFrame]] = field(default_factory=dict, repr=False,
                                                           compare=False)

    def __getstate__(self) -> dict[str, Any]:
        for name in list(self._lazy):  # materialise: a pickled fit carries no closures
            getattr(self, name)
        return {**self.__dict__, "_lazy": {}}

    # -- access -------------------------------------------------------------------------------
    @property
    def law_obj(self) -> Law:
        return get_law(self.law)

    @property
    def values(self) -> dict[str, float]:
        """Best-fit values as a plain dict, ready for ``law_obj.func(x, **values)``."""
        return {k: p.value for k, p in self.params.items()}

    @property
    def warning_codes(self) -> list[str]:
        return [w.code for w in self.warnings]

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, x: Any, *, level: float | None = None, seed: int | None = None
                ) -> pd.DataFrame:
        """Mean curve and intervals at compute ``x`` (array-like, units of ``self.x``).

        Columns: x, mean (best fit), mean_lower/mean_upper (equal-tailed quantiles of the law
        over ``samples``: the uncertainty of the mean curve), pred_lower/pred_upper (one new
        evaluation: each sample's curve plus normal residuals of sd ``resid_sd``, Monte Carlo,
        seeded with ``seed``, default the fit's seed). The same computation as
        :func:`rlscale.forecast.budgets.reward_at` (:func:`rlscale.fit.predictive.predictive`), so plots
        and forecasts agree. Intervals are NaN without samples (unknown, never zero-width); all
        columns but x are NaN where the law is undefined (e.g. the power law at x = 0) or the
        fit is not ok.
        """
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        lvl = self.level if level is None else float(level)
        rng_seed = int(self.options.get("seed", 0) or 0) if seed is None else int(seed)
        if not self.ok:
            nan = np.full(xs.shape, np.nan)
            return pd.DataFrame({"x": xs, "mean": nan, "mean_lower": nan, "mean_upper": nan,
                                 "pred_lower": nan, "pred_upper": nan})
        law = self.law_obj
        draws = draw_columns(self.samples, self.values, law, seed=rng_seed)
        sd = self.resid_sd if math.isfinite(self.resid_sd) else 0.0
        return pd.DataFrame(predictive(law, self.values, draws, sd, xs, level=lvl,
                                       seed=rng_seed))

    # -- summaries ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """JSON-safe dict: the shape ``rlscale fit --json`` prints for each fit."""
        return {
            "group": jsonable(self.group),
            "law": self.law,
            "metric": self.metric,
            "x": self.x,
            "n_points": int(self.n_points),
            "window": jsonable(list(self.window)),
            "method": self.method,
            "ok": bool(self.ok),
            "level": self.level,
            "params": {k: {"value": jsonable(p.value), "lower": jsonable(p.lower),
                           "upper": jsonable(p.upper), "stderr": jsonable(p.stderr),
                           "vary": p.vary, "method": p.method} for k, p in self.params.items()},
            "resid_sd": jsonable(self.resid_sd),
            "resid_ar1": jsonable(self.resid_ar1),
            "samples_method": self.samples_method,
            "gof": jsonable(self.gof),
            "warnings": [w.to_dict() for w in self.warnings],
        }

    def report(self) -> str:
        """A short human-readable report (like lmfit's ``fit_report``)."""
        grp = group_label(self.group, sep=", ", empty="(all points)")
        lines = [f"[{grp}] {self.law} fit of {self.metric} vs {self.x} ({self.method})",
                 f"  points: {self.n_points}, window: [{self.window[0]:.4g}, {self.window[1]:.4g}]"]
        if not self.ok:
            lines.append("  NOT FITTED")
        pct = f"{100 * self.level:g}%"
        for name, p in self.params.items():
            tag = "" if p.vary else " (fixed)"
            lines.append(f"  {name:>6} = {p.value:.6g}  {pct} [{p.lower:.6g}, {p.upper:.6g}]"
                         f" ({p.method}){tag}")
        if self.gof:
            gof = (f"{k}={short(v, missing='None')}" for k, v in self.gof.items())
            lines.append("  gof: " + ", ".join(gof))
        sd, ar1 = (short(v, missing="None") for v in (self.resid_sd, self.resid_ar1))
        lines.append(f"  residual sd {sd}, lag-1 autocorrelation {ar1}; samples: "
                     f"{len(self.samples)} ({self.samples_method})")
        for w in self.warnings:
            lines.append(f"  warning {w.code}: {w.message}")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row: group keys, law, metric, x, n_points, window, each param's value/lower/upper."""
        row: dict[str, Any] = dict(self.group)
        row.update(law=self.law, metric=self.metric, x=self.x, n_points=self.n_points,
                   window_lo=self.window[0], window_hi=self.window[1], method=self.method,
                   ok=self.ok)
        for name, p in self.params.items():
            row[name] = p.value
            row[f"{name}_lower"] = p.lower
            row[f"{name}_upper"] = p.upper
        for k, v in self.gof.items():
            if isinstance(v, (int, float, np.floating, np.integer)) or v is None:
                row[k] = v
        row["warnings"] = ",".join(self.warning_codes)
        return pd.DataFrame([row])

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe (samples and data as column lists), for :meth:`from_dict`."""
        out = self.summary()
        out["params"] = {k: p.to_dict() for k, p in self.params.items()}
        out["options"] = jsonable(self.options)
        out["samples"] = {c: jsonable(self.samples[c].tolist()) for c in self.samples.columns}
        out["data"] = {
            "x": jsonable(self.data["x"].tolist()),
            "y": jsonable(self.data["y"].tolist()),
            "run_id": [str(v) for v in self.data["run_id"].tolist()],
        }
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitResult:
        params = {k: ParamEstimate(value=_num(p["value"]), lower=_num(p["lower"]),
                                   upper=_num(p["upper"]), stderr=_num(p.get("stderr")),
                                   vary=bool(p.get("vary", True)), method=p.get("method", ""))
                  for k, p in d.get("params", {}).items()}
        samples = pd.DataFrame({c: np.array([_num(v) for v in vals], dtype=float)
                                for c, vals in d.get("samples", {}).items()})
        data = d.get("data", {"x": [], "y": [], "run_id": []})
        return cls(
            group=dict(d.get("group", {})), law=d["law"], metric=d["metric"], x=d["x"],
            n_points=int(d["n_points"]),
            window=(_num(d["window"][0]), _num(d["window"][1])),
            method=d["method"], params=params, level=float(d["level"]), samples=samples,
            samples_method=d.get("samples_method", ""), resid_sd=_num(d.get("resid_sd")),
            resid_ar1=_num(d.get("resid_ar1")),
            data=pd.DataFrame({"x": np.array([_num(v) for v in data["x"]], dtype=float),
                               "y": np.array([_num(v) for v in data["y"]], dtype=float),
                               "run_id": list(data["run_id"])}),
            gof=dict(d.get("gof", {})),
            warnings=[FitWarning(w["code"], w["message"]) for w in d.get("warnings", [])],
            ok=bool(d.get("ok", True)), options=dict(d.get("options", {})),
        )


def _lazy_property(name: str) -> property:
    """A field stored in ``__dict__['_' + name]``, built by ``self._lazy[name]()`` when first read
    while unset; assigning a value drops the factory."""
    slot = "_" + name

    def get(self: FitResult) -> pd.DataFrame:
        value = self.__dict__.get(slot)
        if value is None:
            make = self.__dict__.get("_lazy", {}).pop(name, None)
            if make is not None:
                value = make()
                self.__dict__[slot] = value
        return value

    def put(self: FitResult, value: pd.DataFrame | None) -> None:
        self.__dict__[slot] = value
        if value is not None:
            self.__dict__.get("_lazy", {}).pop(name, None)

    return property(get, put, doc=f"``{name}`` (computed on first use when the fit deferred it)")


FitResult.samples = _lazy_property("samples")  # type: ignore[assignment]
FitResult.data = _lazy_property("data")  # type: ignore[assignment]
