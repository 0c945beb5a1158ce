"""Profile-likelihood intervals (``interval="profile"``).

For each free parameter, hold it at a ladder of values on both sides of the optimum and refit
the others (all rungs as rows of one batched solve); the interval is where the residual sum of
squares has risen by q^2 s^2 (q the t quantile at the fit's level, s^2 the residual variance
times the AR(1) factor), i.e. the likelihood-ratio interval with the same widening as the Wald
one. Unlike Wald, it bends with the model: when the data do not pin A down, the upper end runs
to the bound instead of being symmetric. A second, finer ladder inside the bracketing rungs
refines each end (linear interpolation between the last two rungs).
"""

from __future__ import annotations

import math

import numpy as np

from rlscale.fit.solver import Space, solve

LADDER = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 7.0, 12.0, 25.0])


def _profile_costs(space: Space, x, y, u, j: int, values: np.ndarray) -> np.ndarray:
    """0.5 RSS with free parameter ``j`` held at each of ``values`` (internal space)."""
    name = space.free[j]
    rest = tuple(p for i, p in enumerate(space.free) if i != j)
    keep = [i for i in range(len(space.free)) if i != j]
    sub = Space(space.law, rest, dict(space.fixed), space.lower[keep], space.upper[keep])
    held_nat = np.exp(values) if space.is_log()[j] else values
    u0 = np.repeat(u[keep][None, :], values.size, axis=0)
    if not rest:
        f = space.law.func(x, **{name: held_nat[:, None]}, **space.fixed)
        return 0.5 * np.sum((f - y) ** 2, axis=1)
    _, cost, _ = solve(sub, x, y, 1.0, u0, row_fixed={name: held_nat})
    return cost


def _crossing(vals: np.ndarray, dcost: np.ndarray, target: float, edge: float) -> tuple[float,
                                                                                        int]:
    """First rung where dcost >= target (vals ordered outwards); interpolated value and index,
    or (edge, -1) when it never crosses."""
    above = np.flatnonzero(dcost >= target)
    if above.size == 0:
        return edge, -1
    k = int(above[0])
    return float(vals[k]), k


def profile_interval(space: Space, x: np.ndarray, y: np.ndarray, u: np.ndarray, j: int, *,
                     se: float, threshold: float, base_cost: float) -> tuple[float, float]:
    """(lower, upper) of free parameter ``j`` in natural units (bounds when never crossed)."""
    step = se if math.isfinite(se) and se > 0 else 0.1 * max(abs(u[j]), 1.0)
    out = []
    for sign, edge in ((-1, space.lower[j]), (1, space.upper[j])):
        if math.isfinite(edge) and abs(edge - u[j]) < 1e-12:
            out.append(float(edge))
            continue
        vals = u[j] + sign * step * LADDER
        vals = np.clip(vals, space.lower[j], space.upper[j]) if math.isfinite(edge) else vals
        d = _profile_costs(space, x, y, u, j, vals) - base_cost
        v, k = _crossing(vals, d, threshold, edge)
        if k < 0:
            out.append(float(edge) if math.isfinite(edge) else math.copysign(math.inf, sign))
            continue
        inner = u[j] if k == 0 else vals[k - 1]
        fine = np.linspace(inner, v, 9)[1:]
        df = _profile_costs(space, x, y, u, j, fine) - base_cost
        kk = int(np.flatnonzero(df >= threshold)[0]) if (df >= threshold).any() else fine.size - 1
        lo_v = inner if kk == 0 else fine[kk - 1]
        lo_d = 0.0 if kk == 0 else df[kk - 1]
        hi_v, hi_d = fine[kk], df[kk]
        frac = (threshold - lo_d) / (hi_d - lo_d) if hi_d > lo_d else 1.0
        out.append(float(lo_v + min(max(frac, 0.0), 1.0) * (hi_v - lo_v)))
    nat = space.to_natural(np.array([out[0] if i == j else u[i] for i in range(u.size)]))[j], \
        space.to_natural(np.array([out[1] if i == j else u[i] for i in range(u.size)]))[j]
    return float(nat[0]), float(nat[1])
