"""The ScaleRL paper's own fitting procedure, for comparison (``--method scalerl-grid``).

Khatri et al. (2025) fit Eq. 1 by a grid search: A over 0.450..0.800 in steps of 0.005 and C_mid
over a grid, with the remaining parameters (B, and R0 when it is free) fitted by least squares in
every cell; the cell with the smallest squared error wins. Here every cell is one row of the
batched solver. Deviation: the paper does not state its C_mid grid; we use :data:`N_CMID`
log-spaced values from the smallest positive x to 100x the largest.
"""

from __future__ import annotations

import numpy as np

from rlscale.fit.solver import Space, solve

A_GRID = np.round(np.arange(0.450, 0.800 + 1e-9, 0.005), 3)
N_CMID = 121
POLISH_ALL = 1000  # grids up to this many cells get every cell polished


def cmid_grid(x: np.ndarray, n: int = N_CMID) -> np.ndarray:
    """Log-spaced C_mid values from the smallest positive x to 100x the largest."""
    pos = x[x > 0]
    return np.geomspace(pos.min(), 100 * pos.max(), n)


def grid_search(space: Space, x: np.ndarray, y: np.ndarray, a_grid: np.ndarray,
                c_grid: np.ndarray, *, huber: float | None = None
                ) -> tuple[dict[str, float], np.ndarray]:
    """Fit the other free parameters (B, R0) in every (A, C_mid) cell by least squares.

    Returns the best cell's natural parameters and the (len(a_grid), len(c_grid)) table of
    0.5 * squared error (for large least-squares grids, cells far from the best hold their
    B-scan value, an upper bound)."""
    law = space.law
    lo_nat, hi_nat = space.to_natural(space.lower), space.to_natural(space.upper)
    bounds = {p: (float(lo_nat[i]), float(hi_nat[i])) for i, p in enumerate(space.free)}
    rest = [p for p in space.free if p not in ("A", "C_mid")]
    held = {k: v for k, v in space.fixed.items()}
    inner = Space.build(law, {p: bounds[p] for p in rest},
                        {**held, "A": 0.0, "C_mid": 1.0})
    inner.fixed = held  # A and C_mid come per row
    aa, cc = np.meshgrid(a_grid, c_grid, indexing="ij")
    cells = {"A": aa.ravel(), "C_mid": cc.ravel()}
    if huber is None and law.name == "sigmoid":
        u0, scan_cost = _scan_b(x, y, aa.ravel(), cc.ravel(), bounds, held, inner)
        # Polish only cells whose scanned loss is near the best: a cell 3x worse after the B
        # scan cannot win. Small grids (tests, users' own) are polished whole.
        near = (scan_cost <= 3 * scan_cost.min()) if aa.size > POLISH_ALL else \
            np.ones(aa.size, dtype=bool)
        cost = scan_cost.copy()
        u = u0.copy()
        sub = {k: v[near] for k, v in cells.items()}
        u[near], cost[near], _ = solve(inner, x, y, 1.0, u0[near], max_iter=60, ftol=1e-10,
                                       row_fixed=sub)
    else:
        guess = law.guess(x, y)
        start = inner.vector({p: float(np.clip(guess[p], *bounds[p])) for p in rest})
        u0 = np.tile(start, (aa.size, 1))
        # Cells far from the optimum may crawl; they cannot win, so a short cap is enough.
        u, cost, _ = solve(inner, x, y, 1.0, u0, huber=huber, max_iter=60, ftol=1e-10,
                           row_fixed=cells)
    best = int(np.argmin(cost))
    nat = inner.to_natural(u[best])
    out = {p: float(nat[i]) for i, p in enumerate(rest)}
    out.update(A=float(aa.ravel()[best]), C_mid=float(cc.ravel()[best]), **held)
    return out, cost.reshape(aa.shape)


def _scan_b(x, y, a, c, bounds, held, inner: Space) -> np.ndarray:
    """Starting (B, R0) per cell from a scan of B with R0 solved in closed form.

    For fixed A, C_mid and B the sigmoid is linear in R0: y - A s = R0 (1 - s) with
    s = 1 / (1 + (C_mid / x)^B), so R0 is a clipped one-line least squares. Scanning 40
    log-spaced B values per cell lands every cell next to its optimum, so the batched LM only
    polishes (the LM alone from one start crawls in far-away cells)."""
    b_lo, b_hi = bounds["B"]
    b_vals = np.geomspace(max(b_lo, 0.1), min(b_hi, 20.0), 40)
    logr = np.log(c)[:, None] - np.log(np.where(x > 0, x, np.nan))[None, :]  # (R, N)
    best_sse = np.full(a.size, np.inf)
    best_b = np.full(a.size, b_vals[0])
    best_r0 = np.full(a.size, np.nan)
    fixed_r0 = held.get("R0")
    r0_lo, r0_hi = bounds.get("R0", (-np.inf, np.inf))
    for b in b_vals:
        with np.errstate(over="ignore", invalid="ignore"):
            s = 1.0 / (1.0 + np.exp(b * logr))
        s = np.where(np.isnan(s), 0.0, s)  # x = 0: the curve is at R0
        if fixed_r0 is None:
            one = 1.0 - s
            den = np.sum(one * one, axis=1)
            r0 = np.sum(one * (y[None, :] - a[:, None] * s), axis=1) / np.maximum(den, 1e-300)
            r0 = np.clip(r0, r0_lo, r0_hi)
        else:
            r0 = np.full(a.size, fixed_r0)
        sse = np.sum((r0[:, None] + (a - r0)[:, None] * s - y[None, :]) ** 2, axis=1)
        better = sse < best_sse
        best_sse[better], best_b[better], best_r0[better] = sse[better], b, r0[better]
    starts = {"B": best_b}
    if "R0" in inner.free:
        starts["R0"] = best_r0
    cols = [np.log(starts[p]) if p in inner.law.log_params else starts[p] for p in inner.free]
    return np.clip(np.column_stack(cols), inner.lower, inner.upper), 0.5 * best_sse


def grid_fit(space: Space, x: np.ndarray, y: np.ndarray, *, huber: float | None = None
             ) -> tuple[np.ndarray, bool, int]:
    """The grid optimum as an internal vector of ``space`` (for FitResult), converged, n cells."""
    if "A" not in space.free or "C_mid" not in space.free:
        msg = "the ScaleRL grid needs A and C_mid free"
        raise ValueError(msg)
    c_grid = cmid_grid(x)
    best, table = grid_search(space, x, y, A_GRID, c_grid, huber=huber)
    return space.vector(best), bool(np.isfinite(table).any()), int(table.size)
