"""How does the RL ceiling depend on pretraining, and what will it be at a larger budget?

Two stages, each with its uncertainty carried into the next:

1. per pretraining level (a metadata key such as ``pretrain_tokens``): fit the RL law (default the
   ScaleRL sigmoid) to that level's runs with :func:`rlscale.fit.fit`, giving the ceiling A and a
   set of joint parameter draws (bootstrap refits or draws from the fit's covariance);
2. across levels: fit the headroom law A(P) (see :mod:`rlscale.analysis.headroom_law`) to the
   A estimates, and refit it on every joint draw of the per-level ceilings (draw j of every level
   together, after an independent shuffle of each level's draws: the levels are independent fits,
   and the fit engine already gives every group its own draw stream (derived from the seed, the
   group key and its data); the shuffle is a cheap guard that keeps the pairing independent even
   for draws that came from one shared stream). The
   percentiles of the refits give the intervals of A_max and of the forecast A(P) at ``at``.

What the interval covers: the uncertainty of each level's A. It does not cover the choice of the
headroom law itself. With as many levels as free parameters (0 residual degrees of freedom) the
law passes through every point exactly and nothing in the data can contradict it: the result says
so (``exact_fit``). With spare levels, a chi2 per degree of freedom well above 1 means the law
misses the levels by more than their uncertainty, and the interval is then too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rlscale.errors import input_error
from rlscale.fit import fit
from rlscale.fit.laws import get_law
from rlscale.fit.scale_law import fit_headroom_law, n_params, resolve_law
from rlscale.store import POINT_COLUMNS


@dataclass
class HeadroomResult:
    """Outcome of :func:`headroom` / :func:`headroom_from_levels`.

    ``levels``: one row per pretraining level: ``level, A, A_lower, A_upper, A_se, A_law`` (the
    headroom law at that level) and, from the store, ``n_runs, ok, warnings``. ``params``: name ->
    ``{value, lower, upper}`` of the headroom law. ``forecast``: ``P, A, lower, upper``.
    ``dof``: levels minus free parameters; ``chi2_dof``: weighted residual chi2 / dof (None when
    dof = 0). ``notes``: plain-language caveats (exact fit, ceiling not identified, ...).
    """

    headroom_law: str
    p_ref: float
    cap: float | None
    level: float
    levels: pd.DataFrame
    params: dict[str, dict[str, float]]
    forecast: pd.DataFrame
    dof: int
    chi2_dof: float | None
    n_draws: int
    notes: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def exact_fit(self) -> bool:
        return self.dof == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.context, "headroom_law": self.headroom_law, "p_ref": self.p_ref, "cap": self.cap,
            "level": self.level, "dof": self.dof, "exact_fit": self.exact_fit,
            "chi2_dof": self.chi2_dof, "n_draws": self.n_draws,
            "interval_method": "percentiles of the headroom law refitted on joint draws of the "
                               "per-level ceilings",
            "params": self.params, "levels": _records(self.levels),
            "forecast": _records(self.forecast), "notes": list(self.notes),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: _plain(v) for k, v in row.items()})
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def headroom_from_levels(p: Sequence[float], a: Sequence[float], *,
                         draws: np.ndarray | None = None, law: str = "auto",
                         cap: float | None = None, at: Sequence[float] = (),
                         level: float = 0.95) -> HeadroomResult:
    """Fit the headroom law to ceilings ``a`` (shape ``(L,)``) at pretraining budgets ``p``.

    ``draws``: ``(N, L)`` joint draws of the ceilings (e.g. from the per-level fits); without
    them there are no intervals. Levels are weighted by 1/var of their draws (equal without).
    ``law``: ``auto``, ``saturating`` or ``loglinear``; ``cap`` fixes A_max of the saturating law.
    ``at``: budgets to forecast A at. Raises ValueError on unusable input.
    """
    p_arr, a_arr = np.asarray(p, dtype=float), np.asarray(a, dtype=float)
    _check_levels(p_arr, a_arr, at=at, level=level)
    name = resolve_law(law, p_arr.size, cap=cap)
    if draws is not None:
        draws = np.asarray(draws, dtype=float)
        if draws.ndim != 2 or draws.shape[1] != p_arr.size or not np.isfinite(draws).all():
            msg = f"draws must be a finite array of shape (n, {p_arr.size}); got {draws.shape}"
            raise ValueError(msg)
    se = draws.std(axis=0, ddof=1) if draws is not None and len(draws) > 1 else None
    weights = None if se is None or (se <= 0).any() else 1.0 / se ** 2
    point = fit_headroom_law(p_arr, a_arr, law=name, weights=weights, cap=cap)
    at_arr = np.asarray(list(at), dtype=float)
    dof = p_arr.size - n_params(name, cap=cap)
    notes = _notes(point, name=name, dof=dof)
    chi2_dof = None
    if dof > 0 and weights is not None:
        resid = a_arr - point.predict(p_arr)[0]
        chi2_dof = float(np.sum(resid ** 2 / se ** 2) / dof)
        if chi2_dof > 3:
            notes.append(f"chi2/dof = {chi2_dof:.3g}: the {name} law misses the levels by more than "
                         "their uncertainty; the intervals understate the error")
    fits = fit_headroom_law(p_arr, draws, law=name, weights=weights, cap=cap) if (
        draws is not None) else None
    if fits is not None and fits.at_bound.mean() > 0.05 and name == "saturating":
        notes.append(f"{100 * fits.at_bound.mean():.0f}% of the draws put alpha on its bound: "
                     "A_max is poorly identified")
    params = {k: _summ(v[0], None if fits is None else fits.params[k], level)
              for k, v in point.params.items()}
    if name == "saturating" and cap is not None:
        params["A_max"] = {"value": float(cap), "fixed": True}
    levels = pd.DataFrame({"level": p_arr, "A": a_arr})
    if draws is not None:
        lo, hi = _pct(draws, level)
        levels = levels.assign(A_lower=lo, A_upper=hi, A_se=se if se is not None else np.nan)
    levels["A_law"] = point.predict(p_arr)[0]
    fc = pd.DataFrame({"P": at_arr, "A": point.predict(at_arr)[0] if at_arr.size else []})
    if fits is not None and at_arr.size:
        lo, hi = _pct(fits.predict(at_arr), level)
        fc = fc.assign(lower=lo, upper=hi)
    if at_arr.size and at_arr.max() > 10 * p_arr.max():
        notes.append(f"forecast at {at_arr.max():.3g} is {at_arr.max() / p_arr.max():.3g}x the "
                     "largest level: an extrapolation the sweep cannot check")
    return HeadroomResult(headroom_law=name, p_ref=point.p_ref, cap=cap, level=level,
                          levels=levels, params=params, forecast=fc, dof=dof, chi2_dof=chi2_dof,
                          n_draws=0 if draws is None else len(draws), notes=notes)


def _check_levels(p: np.ndarray, a: np.ndarray, *, at: Sequence[float], level: float) -> None:
    if p.ndim != 1 or p.shape != a.shape:
        msg = f"p and a must be 1-D of the same length; got shapes {p.shape} and {a.shape}"
        raise ValueError(msg)
    if not (np.isfinite(p).all() and (p > 0).all()) or len(set(p.tolist())) != p.size:
        msg = f"pretraining levels must be distinct positive numbers; got {p.tolist()}"
        raise ValueError(msg)
    if not np.isfinite(a).all():
        msg = f"ceilings must be finite; got {a.tolist()}"
        raise ValueError(msg)
    if any(not (np.isfinite(v) and v > 0) for v in at):
        msg = f"forecast budgets must be positive numbers; got {list(at)}"
        raise ValueError(msg)
    if not 0 < level < 1:
        msg = f"level must be in (0, 1), e.g. 0.95; got {level}"
        raise ValueError(msg)


def _notes(point: Any, *, name: str, dof: int) -> list[str]:
    notes = []
    if dof == 0:
        notes.append(f"exact fit: the {name} law has as many free parameters as there are levels, "
                     "so it passes through every A and the data cannot test it; the interval "
                     "reflects only the per-level A uncertainty (add levels, or fix the ceiling "
                     "with --cap, for a check)")
    if name == "loglinear":
        notes.append("loglinear has no ceiling: A grows without bound in log P; read the forecast "
                     "as a local trend, not a limit")
    if name == "saturating" and bool(point.at_bound[0]):
        notes.append("alpha is on its bound (A does not bend over the sweep): the ceiling A_max "
                     "is not identified")
    return notes


def _pct(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 50.0 * (1.0 - level)
    return np.nanpercentile(values, tail, axis=0), np.nanpercentile(values, 100.0 - tail, axis=0)


def _summ(value: float, draws: np.ndarray | None, level: float) -> dict[str, Any]:
    out: dict[str, Any] = {"value": float(value)}
    if draws is not None:
        lo, hi = _pct(draws, level)
        out.update(lower=float(lo), upper=float(hi))
    return out


# -- from a store ----------------------------------------------------------------------------------
def headroom(points: pd.DataFrame, *, metric: str | None, by: str, x: str = "gpu_hours",
             law: str = "sigmoid", headroom_law: str = "auto", cap: float | None = None,
             at: Sequence[float] = (), burn_in: float | None = None, max_x: float | None = None,
             bootstrap: int = 0, resample: str = "points", level: float = 0.95,
             seed: int = 0) -> HeadroomResult:
    """Per-level RL fits (``rlscale.fit.fit(..., by=by)``), then the headroom law across levels.

    ``points``: as from ``rlscale.load_points(store, with_meta=True)``; ``by``: the metadata key
    holding the pretraining budget (numeric). The remaining fit options pass through to
    :func:`rlscale.fit.fit`. Raises :class:`~rlscale.errors.InputError` on unusable input.
    """
    law_obj = get_law(law)
    if law_obj.ceiling is None:
        raise input_error(f"law {law_obj.name!r} has no ceiling parameter", field="law",
                          expected="a saturating law such as sigmoid, power or exp")
    if by not in points.columns:
        keys = sorted(c for c in points.columns if c not in POINT_COLUMNS)
        raise input_error(f"no metadata key {by!r} in the runs", field="by",
                          expected=f"one of {keys}")
    results = fit(points, metric=metric, x=x, law=law_obj, by=by, burn_in=burn_in, max_x=max_x,
                  bootstrap=bootstrap, resample=resample, level=level, seed=seed)
    results = results if isinstance(results, list) else [results]
    rows, draws, notes = [], [], []
    for res in results:
        p = _level_value(res.group.get(by), by=by)
        if not res.ok:
            notes.append(f"{by}={res.group.get(by)}: RL fit failed and was left out "
                         f"({', '.join(res.warning_codes) or 'no detail'})")
            continue
        est = res.params[law_obj.ceiling]
        rows.append({"level": p, "n_runs": int(res.data["run_id"].nunique()),
                     "fit_warnings": ",".join(res.warning_codes)})
        draws.append((est.value, res.samples[law_obj.ceiling].to_numpy(dtype=float)))
    if not rows:
        raise input_error(f"no pretraining level could be fitted (levels of {by!r}: "
                          f"{[r.group.get(by) for r in results]})", field=by,
                          expected="runs whose reward curves the RL law can fit")
    order = np.argsort([r["level"] for r in rows])
    rows, draws = [rows[i] for i in order], [draws[i] for i in order]
    n = min(len(d[1]) for d in draws)
    # The levels are independent fits and each level's draws are exchangeable. rlscale.fit gives
    # every group its own stream already; an independent permutation per level also protects the
    # pairing against draws that shared one stream (which would make the levels perfectly
    # correlated and the intervals several times too narrow).
    rng = np.random.default_rng(seed)
    joint = np.column_stack([rng.permutation(d[1])[:n] for d in draws]) if n > 1 else None
    if joint is not None:
        keep = np.isfinite(joint).all(axis=1)
        joint = joint[keep]
    try:
        out = headroom_from_levels([r["level"] for r in rows], [d[0] for d in draws], draws=joint,
                                   law=headroom_law, cap=cap, at=at, level=level)
    except ValueError as exc:
        raise input_error(str(exc), field=by) from exc
    meta = pd.DataFrame(rows).drop(columns="level")
    out.levels = pd.concat([out.levels, meta], axis=1)
    out.notes = notes + out.notes
    samples_method = results[0].samples_method if results else ""
    out.context = {"metric": results[0].metric, "x": x, "by": by, "law": law_obj.name,
                   "samples_method": samples_method, "bootstrap": bootstrap}
    return out




def _level_value(value: Any, *, by: str) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        p = float("nan")
    if not (np.isfinite(p) and p > 0):
        raise input_error(f"level {value!r} of {by!r} is not a positive number", field=by,
                          expected="a numeric pretraining budget (tokens, FLOPs, steps) per run")
    return p
