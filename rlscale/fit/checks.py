"""Warnings about a finished fit: is it trustworthy, and if not, why."""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from rlscale.fit.metric_kind import direction
from rlscale.fit.result import FitWarning, ParamEstimate
from rlscale.fit.solver import Space
from rlscale.fit.trend import recent_trend

MIN_PAST_MID = 3  # points beyond C_mid needed to call the asymptote identified


def check_fit(space: Space, x: np.ndarray, y: np.ndarray, u: np.ndarray,
              params: dict[str, ParamEstimate], cov_u: np.ndarray, *, converged: bool,
              rho: float, metric: str | None = None, run_id: np.ndarray | None = None
              ) -> list[FitWarning]:
    """The warnings of one fit. ``metric`` (its name) says which way is up: a loss should fall
    (:func:`rlscale.fit.metric_kind.direction`), so it is checked for ``not_decreasing``."""
    out: list[FitWarning] = []
    law = space.law
    if not converged:
        out.append(FitWarning("did_not_converge", "the optimiser stopped before converging; "
                              "try --loss huber, a narrower window, or more points"))
    elif cov_u.size and not np.all(np.isfinite(cov_u)):
        out.append(FitWarning("did_not_converge", "the covariance is singular (parameters are "
                              "not separately identified by these points)"))
    span = space.upper - space.lower
    for i, name in enumerate(space.free):
        if not math.isfinite(span[i]):
            continue
        tol = 1e-4 * span[i]
        if u[i] - space.lower[i] <= tol or space.upper[i] - u[i] <= tol:
            side = "lower" if u[i] - space.lower[i] <= tol else "upper"
            edge = space.lower if side == "lower" else space.upper
            bound_val = float(space.to_natural(edge)[i])
            out.append(FitWarning("param_at_bound", f"{name} = {params[name].value:.6g} is at its "
                                  f"{side} bound {bound_val:.6g}"))
    srho, p_up = spearman_up(x, y)
    p_down = spearman_up(x, -y)[1]
    if direction(metric) > 0 and not (srho > 0 and p_up < 0.01):
        out.append(FitWarning("not_increasing", f"the metric does not rise with compute (Spearman "
                              f"{srho:.2f}); a saturating law's A and C_mid mean little here"))
    if direction(metric) < 0 and not (srho < 0 and p_down < 0.01):
        out.append(FitWarning("not_decreasing", f"the metric ({metric}, better when lower) does "
                              f"not fall with compute (Spearman {srho:.2f}); a saturating law's "
                              "A and C_mid mean little here"))
    out.extend(_direction(space, x, u, srho, p_up, p_down))
    out.extend(_asymptote(law.name, x, y, params))
    out.extend(_ceiling_above_plateau(space, x, y, u, params, run_id))
    if math.isfinite(rho) and rho > 0.2:
        out.append(FitWarning("autocorrelated_residuals", f"lag-1 residual autocorrelation "
                              f"{rho:.2f}; intervals widened by the AR(1) factor "
                              f"{math.sqrt((1 + min(rho, .9)) / (1 - min(rho, .9))):.2f} on sd"))
    return out


def _direction(space: Space, x: np.ndarray, u: np.ndarray, srho: float, p_up: float,
               p_down: float) -> list[FitWarning]:
    """The fitted curve must move the way the data do (when the data clearly move)."""
    data = 1 if (srho > 0 and p_up < 0.01) else (-1 if (srho < 0 and p_down < 0.01) else 0)
    if data == 0 or x.size < 2:
        return []
    ends = space.predict(np.array([float(np.min(x)), float(np.max(x))]), u[None, :])[0]
    moved = float(ends[1] - ends[0])
    if not math.isfinite(moved) or moved * data >= 0:
        return []
    word, fit_word = ("rise", "falls") if data > 0 else ("fall", "rises")
    return [FitWarning("direction_mismatch", f"the data {word} with compute (Spearman {srho:.2f}) "
                       f"but the fitted curve {fit_word} by {abs(moved):.4g} over them: the fit "
                       "is in the wrong basin; try --r0 first, a narrower window or --law all")]


def _ceiling_above_plateau(space: Space, x: np.ndarray, y: np.ndarray, u: np.ndarray,
                           params: dict[str, ParamEstimate],
                           run_id: np.ndarray | None) -> list[FitWarning]:
    """A ceiling far beyond a curve that has levelled off: the law extrapolates a gain that the
    last stretch of points does not show (A = 0.996 on a curve flat at 0.937)."""
    ceiling = space.law.ceiling
    if ceiling is None or ceiling not in params:
        return []
    tr = recent_trend(x, y, run_id)
    if tr is None:
        return []
    ends = space.predict(np.array([float(np.min(x)), float(np.max(x))]), u[None, :])[0]
    way = 1 if ends[1] >= ends[0] else -1
    A = params[ceiling].value
    gap = way * (A - tr.end_level)
    if tr.significant() == way or not math.isfinite(gap):
        return []
    if gap <= max(3 * tr.noise, 0.05 * tr.spread):
        return []
    return [FitWarning("ceiling_above_plateau", f"{ceiling} = {A:.4g} lies {gap:.3g} "
                       f"{'above' if way > 0 else 'below'} the recent level {tr.end_level:.4g}, "
                       f"but the last {tr.n} points have levelled off (change {tr.change:.3g} "
                       f"[{tr.change_lower:.3g}, {tr.change_upper:.3g}]): the law extrapolates a "
                       "gain the data do not show; read the recent level as the ceiling so far")]


def _asymptote(name: str, x: np.ndarray, y: np.ndarray,
               params: dict[str, ParamEstimate]) -> list[FitWarning]:
    A = params.get("A")
    if A is None:
        return []
    base = params.get("R0")
    start = base.value if base is not None else float(np.mean(y[np.argsort(x)[:3]]))
    gain = abs(A.value - start)
    reasons = []
    noise = float(np.std(np.diff(y[np.argsort(x)]))) / math.sqrt(2) if y.size > 2 else 0.0
    if gain <= 2 * noise:
        reasons.append(f"the fitted gain {gain:.4g} is within the noise ({noise:.4g})")
    if name == "sigmoid":
        c_mid = params["C_mid"].value
        past = int(np.sum(x > c_mid))
        if past < MIN_PAST_MID:
            reasons.append(f"only {past} points lie past C_mid = {c_mid:.4g}")
        elif float(np.max(x)) < 1.5 * c_mid:
            reasons.append(f"the data stop at {np.max(x):.4g}, under 1.5 x C_mid = {c_mid:.4g}")
    if name == "exp" and float(np.max(x)) < 2 * params["C_s"].value:
        reasons.append(f"the data stop before 2 x C_s = {2 * params['C_s'].value:.4g}")
    width = A.upper - A.lower
    if not math.isfinite(width):
        reasons.append("A has no finite interval")
    elif gain > 0 and width > 0.5 * gain:
        reasons.append(f"A's interval [{A.lower:.4g}, {A.upper:.4g}] is wider than half the "
                       f"gain {gain:.4g}")
    if not reasons:
        return []
    return [FitWarning("asymptote_not_identified", "; ".join(reasons) + ": collect compute past "
                       "C_mid, fix R0 (--r0 first), compare laws (--law all); read A's interval "
                       "from --interval profile or --bootstrap, not Wald")]


def spearman_up(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman correlation of y with x and its one-sided p-value for 'increasing' (t approx.)."""
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0, 1.0
    rx, ry = _ranks(x), _ranks(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    if rho >= 1.0:
        return 1.0, 0.0
    t = rho * math.sqrt((x.size - 2) / max(1e-300, 1 - rho * rho))
    return rho, float(special.stdtr(x.size - 2, -t))  # = t.sf(t), without scipy.stats overhead


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (as scipy.stats.rankdata), by argsort when there are no ties."""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    if (sv[1:] == sv[:-1]).any():
        return stats.rankdata(v)
    out = np.empty(v.size)
    out[order] = np.arange(1, v.size + 1)
    return out
