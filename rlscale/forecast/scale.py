"""Laws of the sigmoid's parameters across a scale N (model size, pretraining amount, ...).

Each scale (one value of a numeric run metadata key such as ``model_params``) is fitted as
``rlscale fit`` fits a group; then each parameter of the ScaleRL sigmoid gets a law in N
(:mod:`rlscale.fit.scale_law`, z = log10(N / N_ref), N_ref the geometric mean of the scales):

* ``A``: saturating ``A_max - D (N / N_ref)^-alpha`` from 3 scales (ScaleRL's ceilings rise with
  model size and level off), a line in z with 2 (no ceiling);
* ``C_mid``: a power law, ``log10 C_mid`` a line in z (its sign is free: on a GPU-hours axis a
  larger model needs more compute per step, on a step axis it may learn in fewer);
* ``B`` and ``R0``: ``shared`` (one weighted mean) or ``loglinear`` (a line in z), whichever
  predicts each scale better from the others (leave-one-scale-out squared error, weighted);
  shared below 3 scales.

Uncertainty is carried by joint draws: each scale's fit has joint draws of (A, B, C_mid, R0);
the scales are separate fits, so their draws are independent, and :func:`align_draws` brings
them to one count; draw s of every scale is one joint set, and the laws refitted to it give draw
s of the parameters at any new N, hence of the whole curve there. Scales are weighted by
1/variance of their draws. The intervals cover the parameters' uncertainty, not the choice of
law: ``law_misfit`` says when a law misses the scales by more than their uncertainty, and
``rlscale backtest --scale-by KEY --leave-largest-out`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from rlscale.errors import InputError
from rlscale.fit.laws import get_law
from rlscale.fit.result import FitWarning
from rlscale.fit.scale_law import HeadroomFit, fit_headroom_law, fit_line
from rlscale.forecast.curve import Curve, align_draws, curve
from rlscale.text import num

SCALE_PARAMS: tuple[str, ...] = ("A", "B", "C_mid", "R0")
MIN_SCALES = 3      # below this the A law has no ceiling and nothing checks it
FAR_FACTOR = 4.0    # a target scale further than this past the largest observed is flagged
CHI2_MISFIT = 3.0   # chi2/dof above this: the law misses the scales by more than their error
UNIDENTIFIED_SHARE = 0.05  # share of draws with alpha on its bound that flags A_max

SCALE_WARNINGS: dict[str, str] = {
    "few_scales": f"fewer than {MIN_SCALES} scales: the laws cannot be checked",
    "exact_fit": "the A law has as many parameters as scales, so it passes through every A",
    "exponent_not_identified": "the A law's exponent alpha sits on its bound",
    "law_misfit": "a scale law misses the scales by more than their uncertainty",
    "far_extrapolation": f"the target scale is more than {FAR_FACTOR:g}x the largest observed",
    "scale_fit_failed": "a scale's curve could not be fitted and was left out",
    "scale_fit_warning": "a scale's curve fit carries warnings",
    "nonpositive_B": "some draws put the exponent B at or below 0 at the target scale",
}


@dataclass(frozen=True)
class ParamLaw:
    """The law of one sigmoid parameter across scale.

    ``form``: ``saturating``, ``loglinear``, ``power`` (C_mid: loglinear in log10 C_mid) or
    ``shared``; ``point``/``draws``: the law fitted to the point estimates / to every joint draw;
    ``values``/``se``: the per-scale estimates it was fitted to (log10 for C_mid) and their
    draw sd; ``scores``: leave-one-scale-out score of each candidate form (B, R0); ``dof`` and
    ``chi2_dof`` (None without spare scales or without an sd).
    """

    name: str
    form: str
    point: HeadroomFit
    draws: HeadroomFit
    values: np.ndarray
    se: np.ndarray | None
    dof: int
    chi2_dof: float | None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def log(self) -> bool:
        return self.name == "C_mid"

    def predict(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The parameter at scales ``n`` (m,): point estimates (m,) and draws (S, m)."""
        n = np.asarray(n, dtype=float)
        p, d = self.point.predict(n)[0], self.draws.predict(n)
        return (10.0 ** p, 10.0 ** d) if self.log else (p, d)

    def summary(self, level: float = 0.9) -> dict[str, Any]:
        """``{form, p_ref, dof, chi2_dof, scores, params: {name: {value, lower, upper}}}``: the
        law in plain numbers (``a, b`` of a line in z; of log10 C_mid for C_mid), ``level``
        intervals over the draws' refits."""
        tail = 50.0 * (1.0 - level)
        params = {}
        for k, v in self.point.params.items():
            lo, hi = np.nanpercentile(self.draws.params[k], [tail, 100.0 - tail])
            params[k] = {"value": float(v[0]), "lower": float(lo), "upper": float(hi)}
        if self.form == "shared":
            params.pop("b")
        return {"form": self.form, "p_ref": self.point.p_ref, "dof": self.dof,
                "chi2_dof": self.chi2_dof, "scores": dict(self.scores), "params": params}


@dataclass
class ScaleLaws:
    """What :func:`fit_scale_laws` returns: the laws of ``A, B, C_mid, R0`` across ``key``.

    ``scales``: the fitted scales, ascending; ``fits``: their FitResults (same order);
    ``curves``/``draws``: their forecast curves and the aligned joint draws the laws were
    refitted on; ``noise_sd``: the sd of one new point around a curve (median over scales);
    ``warnings``: :data:`SCALE_WARNINGS` codes with messages.
    """

    key: str
    scales: np.ndarray
    fits: list[Any]
    curves: list[Curve]
    draws: list[dict[str, np.ndarray]]
    laws: dict[str, ParamLaw]
    noise_sd: float
    warnings: list[FitWarning] = field(default_factory=list)

    @property
    def largest(self) -> float:
        return float(self.scales[-1])

    def params_at(self, n: float) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray]:
        """Point parameters, joint draws ``{name: (S',)}`` of the sigmoid at scale ``n`` and
        which of the S aligned draws they are (a bool mask: draws with a non-finite parameter
        are dropped), so the scales' own draws can be paired with them."""
        point, draws = {}, {}
        for name, law in self.laws.items():
            p, d = law.predict(np.array([float(n)]))
            point[name], draws[name] = float(p[0]), d[:, 0]
        ok = np.all([np.isfinite(v) for v in draws.values()], axis=0)
        return point, {k: v[ok] for k, v in draws.items()}, ok

    def curve_at(self, n: float) -> Curve:
        """The predicted curve at scale ``n`` as a forecast :class:`Curve` (``fit`` is None)."""
        point, draws, _ = self.params_at(n)
        group = {self.key: float(n)}
        return Curve(fit=None, law=get_law("sigmoid"), point=point, draws=draws,
                     noise_sd=self.noise_sd, method="scale laws refitted on joint draws",
                     group=group, label=f"{self.key}={num(float(n))} (predicted)")

    def warnings_at(self, n: float) -> list[FitWarning]:
        """The law's warnings plus those of predicting at ``n``."""
        out = list(self.warnings)
        if n > FAR_FACTOR * self.largest:
            out.append(FitWarning("far_extrapolation",
                                  f"{self.key}={num(n)} is {n / self.largest:.3g}x the largest "
                                  f"observed scale ({num(self.largest)}), beyond the "
                                  f"{FAR_FACTOR:g}x the laws can be trusted to reach"))
        _, draws, _ = self.params_at(n)
        bad = float(np.mean(draws["B"] <= 0)) if draws["B"].size else 0.0
        if bad > 0.01:
            out.append(FitWarning("nonpositive_B", f"{100 * bad:.0f}% of the draws put B <= 0 at "
                                                   f"{self.key}={num(n)}: the B law runs out"))
        return out


def scale_values(fits: Sequence[Any], key: str) -> list[float]:
    """Each fit's scale (its group's ``key``) as a positive number; InputError otherwise."""
    out = []
    for f in fits:
        raw = (f.group or {}).get(key)
        try:
            v = float(raw)
        except (TypeError, ValueError):
            v = float("nan")
        if not (np.isfinite(v) and v > 0):
            msg = (f"scale {key}={raw!r} is not a positive number; give every run a numeric "
                   f"{key} (e.g. rlscale ingest --set {key}=5e8)")
            raise InputError(msg)
        out.append(v)
    return out


def fit_scale_laws(fits: Sequence[Any], *, key: str, seed: int = 0) -> ScaleLaws:
    """Fit the laws of :data:`SCALE_PARAMS` across ``key`` to one sigmoid FitResult per scale.

    ``fits``: e.g. ``rlscale.fit.fit(points, by=[key])``; failed fits are left out with a
    warning. Needs at least 2 fitted scales (3 for a ceiling). Raises InputError otherwise.
    """
    fits = list(fits)
    warnings: list[FitWarning] = []
    if any(f.law != "sigmoid" for f in fits):
        msg = "scale laws are laws of the sigmoid's A, B, C_mid and R0: fit with --law sigmoid"
        raise InputError(msg)
    values = scale_values(fits, key)
    if len(set(values)) != len(values):
        msg = f"two fits share a value of {key}; fit with --by {key} alone"
        raise InputError(msg)
    for f, v in zip(fits, values):
        if not f.ok:
            warnings.append(FitWarning("scale_fit_failed", f"{key}={num(v)}: the curve fit "
                                       "failed and was left out"))
        elif f.warnings:
            codes = ", ".join(dict.fromkeys(w.code for w in f.warnings))
            warnings.append(FitWarning("scale_fit_warning", f"{key}={num(v)}: {codes}"))
    kept = sorted((v, f) for v, f in zip(values, fits) if f.ok)
    if len(kept) < 2:
        msg = (f"scale laws need at least 2 fitted scales of {key}, got {len(kept)} "
               f"(scales: {[num(v) for v in sorted(values)]})")
        raise InputError(msg)
    scales = np.array([v for v, _ in kept])
    good = [f for _, f in kept]
    curves = [curve(f, seed=seed) for f in good]
    draws = _usable(align_draws(curves, seed=seed))
    if len(kept) < MIN_SCALES:
        warnings.append(FitWarning("few_scales", f"only {len(kept)} scales of {key}: A is a line "
                                   f"in log {key} (no ceiling), B and R0 are shared, and nothing "
                                   f"is left over to check the laws; fit {MIN_SCALES} or more"))
    laws = {name: _param_law(name, scales, curves, draws) for name in SCALE_PARAMS}
    warnings += _law_warnings(laws)
    noise = float(np.median([c.noise_sd for c in curves]))
    return ScaleLaws(key=key, scales=scales, fits=good, curves=curves, draws=draws, laws=laws,
                     noise_sd=noise, warnings=warnings)


def _param_law(name: str, scales: np.ndarray, curves: list[Curve],
               draws: list[dict[str, np.ndarray]]) -> ParamLaw:
    log = name == "C_mid"
    point = np.array([c.point[name] for c in curves])
    cols = np.column_stack([d[name] for d in draws])  # (S, L)
    with np.errstate(all="ignore"):
        if log:
            point, cols = np.log10(point), np.log10(cols)
    se = cols.std(axis=0, ddof=1) if len(cols) > 1 else None
    weights = None if se is None or not (se > 0).all() else 1.0 / se ** 2
    scores: dict[str, float] = {}
    if name == "A":
        form = "saturating" if scales.size >= MIN_SCALES else "loglinear"
    elif name == "C_mid":
        form = "loglinear"
    else:
        scores = {f: _loo_score(f, scales, point, weights) for f in ("shared", "loglinear")}
        form = "loglinear" if scores["loglinear"] < scores["shared"] else "shared"
    fitted = _fit(form, scales, point, weights)
    refits = _fit(form, scales, cols, weights)
    dof = scales.size - {"saturating": 3, "loglinear": 2, "shared": 1}[form]
    chi2 = None
    if dof > 0 and se is not None and (se > 0).all():
        resid = point - fitted.predict(scales)[0]
        chi2 = float(np.sum(resid ** 2 / se ** 2) / dof)
    return ParamLaw(name=name, form="power" if log else form, point=fitted, draws=refits,
                    values=point, se=se, dof=dof, chi2_dof=chi2, scores=scores)


def _usable(draws: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The aligned draws where every scale's parameters are finite and C_mid > 0 (one mask for
    all scales, so draw s stays one joint set)."""
    ok = np.ones(len(draws[0]["A"]), dtype=bool)
    for d in draws:
        ok &= np.all([np.isfinite(d[k]) for k in SCALE_PARAMS], axis=0) & (d["C_mid"] > 0)
    if ok.sum() < 2:
        msg = "the scales' fits have fewer than 2 usable joint draws; refit with --bootstrap N"
        raise InputError(msg)
    return [{k: v[ok] for k, v in d.items()} for d in draws]


def _fit(form: str, n: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> HeadroomFit:
    if form != "shared":
        return fit_headroom_law(n, y, law=form, weights=weights)
    y2 = np.atleast_2d(y)
    w = np.ones(n.size) if weights is None else weights
    mean = y2 @ (w / w.sum())
    p_ref = float(np.exp(np.mean(np.log(n))))
    rss = ((y2 - mean[:, None]) ** 2) @ (w / w.sum())
    return HeadroomFit("loglinear", p_ref, {"a": mean, "b": np.zeros_like(mean)}, rss,
                       np.zeros(len(mean), bool))


def _loo_score(form: str, n: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> float:
    """Mean weighted squared error of predicting each scale from the others with ``form``
    (inf where too few scales remain for it)."""
    if form == "loglinear" and n.size < MIN_SCALES:
        return float("inf")
    w = np.ones(n.size) if weights is None else weights
    err = []
    for i in range(n.size):
        rest = np.arange(n.size) != i
        z = np.log10(n / np.exp(np.mean(np.log(n[rest]))))
        if form == "shared":
            pred = float(y[rest] @ w[rest] / w[rest].sum())
        else:
            slope, icpt, _ = fit_line(z[rest], y[rest], weights=w[rest])
            pred = float(icpt[0] + slope[0] * z[i])
        err.append((pred - y[i]) ** 2)
    return float(np.sum(w * np.array(err)) / w.sum())


def _law_warnings(laws: dict[str, ParamLaw]) -> list[FitWarning]:
    out = []
    a = laws["A"]
    if a.form == "saturating":
        if a.dof == 0:
            out.append(FitWarning("exact_fit", "A: the saturating law has 3 parameters and "
                                  "there are 3 scales, so it passes through every A and the "
                                  "data cannot test it; add a scale"))
        share = float(np.mean(a.draws.at_bound)) if a.draws.at_bound.size else 0.0
        if bool(a.point.at_bound[0]) or share > UNIDENTIFIED_SHARE:
            out.append(FitWarning("exponent_not_identified",
                                  f"A: alpha sits on its bound in {100 * share:.0f}% of the "
                                  "draws" + (" and in the best fit" if a.point.at_bound[0] else "")
                                  + ": the ceiling A_max and A beyond the scales are not "
                                  "identified"))
    for law in laws.values():
        if law.chi2_dof is not None and law.chi2_dof > CHI2_MISFIT:
            out.append(FitWarning("law_misfit", f"{law.name}: chi2/dof = {law.chi2_dof:.3g} "
                                  f"for the {law.form} law: it misses the scales by more than "
                                  "their uncertainty, so the intervals understate the error"))
    return out
