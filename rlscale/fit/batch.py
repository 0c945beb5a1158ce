"""Many groups in one solve: the multi-start of every group as rows of one batched LM.

``fit(points, by=...)`` with many groups hands each group's starts here instead of solving group
by group; rows carry their group's x (padded with weight 0), bounds and fixed values. The best
start of each group then goes on to the same lmfit polish and uncertainty as a single fit.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rlscale.fit.laws import Law
from rlscale.fit.metric_kind import level_bounds
from rlscale.fit.solver import Space, solve

Presolved = tuple[np.ndarray, float, bool]


def space_for(law: Law, x: np.ndarray, y: np.ndarray, fixed: dict[str, float],
              metric: str | None = None) -> Space:
    """The solver space of one group: the law's data-dependent bounds (the levels A and R0 in
    [0, 1] only for a pass rate by ``metric`` name or 0/1 values:
    :func:`rlscale.fit.metric_kind.level_bounds`), widened to hold any fixed value."""
    bounds = law.bounds(x, y)
    levels = level_bounds(metric, y)
    for name in (law.ceiling, law.baseline):
        if name is not None and name in bounds:
            bounds[name] = levels
    for name, value in fixed.items():
        bounds[name] = (min(bounds[name][0], value), max(bounds[name][1], value))
    return Space.build(law, bounds, fixed)


def multistart_many(law: Law, groups: Sequence[tuple[np.ndarray, np.ndarray, dict[str, float]]],
                    starts_of, metric: str | None = None) -> list[Presolved | None]:
    """Best start per group, as (internal u, cost, converged); None for groups left out (too
    few points: the per-group path reports them). ``starts_of(space, x, y)`` gives (S, P)."""
    out: list[Presolved | None] = [None] * len(groups)
    buckets: dict[tuple[str, ...], list[int]] = {}
    spaces: list[Space | None] = []
    for i, (x, y, fixed) in enumerate(groups):
        space = space_for(law, x, y, fixed, metric)
        n_free = len(space.free)
        if np.unique(x).size < n_free + 1 or x.size < n_free + 2:
            spaces.append(None)
            continue
        spaces.append(space)
        buckets.setdefault(space.free, []).append(i)
    for free, members in buckets.items():
        starts = [starts_of(spaces[i], groups[i][0], groups[i][1]) for i in members]
        n_rows = sum(len(s) for s in starts)
        n_max = max(groups[i][0].size for i in members)
        xs = np.empty((n_rows, n_max))
        ys = np.zeros((n_rows, n_max))
        ws = np.zeros((n_rows, n_max))
        lower = np.empty((n_rows, len(free)))
        upper = np.empty((n_rows, len(free)))
        fixed_names = sorted(groups[members[0]][2])
        held = {k: np.empty(n_rows) for k in fixed_names}
        owner = np.empty(n_rows, dtype=int)
        row = 0
        for i, st in zip(members, starts):
            x, y, fixed = groups[i]
            sl = slice(row, row + len(st))
            xs[sl] = x[0]
            xs[sl, :x.size] = x
            ys[sl, :x.size] = y
            ws[sl, :x.size] = 1.0
            lower[sl], upper[sl] = spaces[i].lower, spaces[i].upper
            for k in fixed_names:
                held[k][sl] = fixed[k]
            owner[sl] = i
            row += len(st)
        space = Space(law, free, {}, lower, upper)
        u0 = np.vstack(starts)
        u, cost, conv = solve(space, xs, ys, ws, u0, row_fixed=held)
        for i in members:
            rows = np.flatnonzero(owner == i)
            best = rows[int(np.argmin(cost[rows]))]
            out[i] = (u[best], float(cost[best]), bool(conv[best]))
    return out
