"""The single-start fast path: MINPACK Levenberg-Marquardt (the engine under lmfit's ``leastsq``)
from the law's guess, with the law's analytic Jacobian, in the solver's internal space.

One well-posed curve needs one start: the multi-start screen and the lmfit polish only pay off
when this first answer is suspicious. :func:`fast_fit` declines (returns None) when MINPACK did
not converge or left the bounds; :func:`suspicious` judges the finished fit (a warning in
:data:`SUSPICIOUS`, or residual lag-1 autocorrelation above :data:`MAX_RHO`, which is what a
curve stuck in a wrong basin leaves behind). Either way the caller falls back to the full
multi-start + lmfit path.
"""

from __future__ import annotations

import math
import warnings as pywarnings

import numpy as np
from scipy.optimize import leastsq

from rlscale.fit.solver import Space

BOUND_TOL = 1e-4  # as checks.param_at_bound: within this share of the span counts as "at bound"
MAX_RHO = 0.5  # residual lag-1 autocorrelation above this sends the fit to the multi-start
# A single-start fit with any of these warnings is redone with the multi-start and lmfit polish:
# where the asymptote is not identified or the rise is unclear, several basins fit about equally.
SUSPICIOUS = frozenset({"asymptote_not_identified", "param_at_bound", "not_increasing",
                        "not_decreasing", "direction_mismatch", "did_not_converge"})


MAX_FEV = 80  # a well-posed curve converges in ~10 evaluations; one that wanders is declined


def minpack(space: Space, x: np.ndarray, y: np.ndarray, u0: np.ndarray, *,
            max_fev: int = MAX_FEV) -> tuple[np.ndarray, float, bool, int]:
    """Unbounded MINPACK ``lmder`` from internal ``u0`` (linear loss, unit weights), at most
    ``max_fev`` function evaluations (more counts as not converged).

    Returns (internal u, 0.5 * RSS, converged, function + Jacobian evaluations)."""
    law, free, fixed = space.law, space.free, space.fixed
    is_log = space.is_log()
    n_par = len(free)

    def natural(u: np.ndarray) -> dict[str, float]:
        p = dict(fixed)
        for i, name in enumerate(free):
            v = float(u[i])
            p[name] = math.exp(min(v, 700.0)) if is_log[i] else v
        return p

    def resid(u: np.ndarray) -> np.ndarray:
        r = law.func(x, **natural(u)) - y
        return r if np.isfinite(r).all() else np.where(np.isfinite(r), r, 1e6)

    def jac(u: np.ndarray) -> np.ndarray:
        p = natural(u)
        g = law.grad(x, **p)
        out = np.empty((x.size, n_par))
        for j, name in enumerate(free):
            out[:, j] = g[name] * p[name] if is_log[j] else g[name]
        return out if np.isfinite(out).all() else np.nan_to_num(out, posinf=0.0, neginf=0.0)

    with pywarnings.catch_warnings(), np.errstate(all="ignore"):
        pywarnings.simplefilter("ignore", RuntimeWarning)
        u, _, info, _, ier = leastsq(resid, np.asarray(u0, dtype=float),
                                     Dfun=jac if law.grad is not None else None,
                                     full_output=True, maxfev=max_fev)
    u = np.atleast_1d(np.asarray(u, dtype=float))
    r = info["fvec"]
    cost = 0.5 * float(np.dot(r, r))
    ok = ier in (1, 2, 3, 4) and np.isfinite(u).all() and math.isfinite(cost) and \
        bool(np.all(np.abs(r) < 1e6))
    return u, cost if ok else math.inf, bool(ok), int(info["nfev"] + info.get("njev", 0))


def inside(space: Space, u: np.ndarray) -> bool:
    """Every parameter strictly inside its bounds (by more than BOUND_TOL of the span)."""
    span = space.upper - space.lower
    tol = np.where(np.isfinite(span), BOUND_TOL * span, 0.0)
    return bool(np.all(u - space.lower > tol) and np.all(space.upper - u > tol))


def fast_fit(space: Space, x: np.ndarray, y: np.ndarray, u0: np.ndarray
             ) -> tuple[np.ndarray, float, bool, int] | None:
    """One MINPACK fit from ``u0``, or None when it did not converge or left the bounds. The
    caller judges the finished fit too (:func:`suspicious`)."""
    if space.law.grad is None:
        return None
    u, cost, ok, nfev = minpack(space, x, y, u0)
    if not ok or not inside(space, u):
        return None
    return u, cost, True, nfev


def suspicious(codes: set[str], rho: float) -> bool:
    """Whether a finished single-start fit must be redone by the multi-start: it warns
    :data:`SUSPICIOUS`, or its residuals' lag-1 autocorrelation exceeds :data:`MAX_RHO`."""
    return bool(codes & SUSPICIOUS) or (math.isfinite(rho) and rho > MAX_RHO)
