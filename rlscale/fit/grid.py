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


def cmid_grid(x: np.ndarray, n: int = N_CMID) -> np.ndarray:
    """Log-spaced C_mid values from the smallest positive x to 100x the largest."""
    pos = x[x > 0]
    return np.geomspace(pos.min(), 100 * pos.max(), n)


def grid_search(space: Space, x: np.ndarray, y: np.ndarray, a_grid: np.ndarray,
                c_grid: np.ndarray, *, huber: float | None = None
                ) -> tuple[dict[str, float], np.ndarray]:
    """Fit the other free parameters (B, R0) in every (A, C_mid) cell by least squares.

    Returns the best cell's natural parameters and the (len(a_grid), len(c_grid)) loss table."""
    law = space.law
    lo_nat, hi_nat = space.to_natural(space.lower), space.to_natural(space.upper)
    bounds = {p: (float(lo_nat[i]), float(hi_nat[i])) for i, p in enumerate(space.free)}
    rest = [p for p in space.free if p not in ("A", "C_mid")]
    held = {k: v for k, v in space.fixed.items()}
    inner = Space.build(law, {p: bounds[p] for p in rest},
                        {**held, "A": 0.0, "C_mid": 1.0})
    inner.fixed = held  # A and C_mid come per row
    aa, cc = np.meshgrid(a_grid, c_grid, indexing="ij")
    guess = law.guess(x, y)
    start = inner.vector({p: float(np.clip(guess[p], *bounds[p])) for p in rest})
    u0 = np.tile(start, (aa.size, 1))
    # Cells far from the optimum may crawl; they cannot win, so a short iteration cap is enough.
    u, cost, _ = solve(inner, x, y, 1.0, u0, huber=huber, max_iter=60, ftol=1e-10,
                       row_fixed={"A": aa.ravel(), "C_mid": cc.ravel()})
    best = int(np.argmin(cost))
    nat = inner.to_natural(u[best])
    out = {p: float(nat[i]) for i, p in enumerate(rest)}
    out.update(A=float(aa.ravel()[best]), C_mid=float(cc.ravel()[best]), **held)
    return out, cost.reshape(aa.shape)


def grid_fit(space: Space, x: np.ndarray, y: np.ndarray, *, huber: float | None = None
             ) -> tuple[np.ndarray, bool, int]:
    """The grid optimum as an internal vector of ``space`` (for FitResult), converged, n cells."""
    if "A" not in space.free or "C_mid" not in space.free:
        msg = "the ScaleRL grid needs A and C_mid free"
        raise ValueError(msg)
    c_grid = cmid_grid(x)
    best, table = grid_search(space, x, y, A_GRID, c_grid, huber=huber)
    return space.vector(best), bool(np.isfinite(table).any()), int(table.size)
