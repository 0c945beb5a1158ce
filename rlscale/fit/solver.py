"""A batched Levenberg-Marquardt solver in numpy: many least-squares problems at once.

Used for the multi-start screen, the bootstrap (every resample is a row, warm-started from the
full-data fit) and the ScaleRL grid (every grid cell is a row). Rows share the law but may have
their own x, y and weights (``(R, N)`` arrays; padding is weight 0). Parameters move in an internal
space (log for the law's ``log_params``) and are clipped to bounds after each step (projected LM).
Jacobians are forward differences in that space: P+1 evaluations of an ``(R, N)`` array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlscale.fit.laws import Law


@dataclass
class Space:
    """Maps between a law's natural parameters and the solver's internal vector."""

    law: Law
    free: tuple[str, ...]
    fixed: dict[str, float]
    lower: np.ndarray  # internal-space bounds, shape (P,)
    upper: np.ndarray

    @classmethod
    def build(cls, law: Law, bounds: dict[str, tuple[float, float]],
              fixed: dict[str, float]) -> Space:
        free = tuple(p for p in law.param_names if p not in fixed)
        lo = np.array([bounds[p][0] for p in free], dtype=float)
        hi = np.array([bounds[p][1] for p in free], dtype=float)
        space = cls(law, free, dict(fixed), lo, hi)
        return cls(law, free, dict(fixed), space.to_internal(lo), space.to_internal(hi))

    def __post_init__(self) -> None:
        self._is_log = np.array([p in self.law.log_params for p in self.free], dtype=bool)
        self._log_idx = np.flatnonzero(self._is_log)

    def is_log(self) -> np.ndarray:
        return self._is_log

    def to_internal(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.is_log(), np.log(np.where(self.is_log(), values, 1.0)), values)

    def to_natural(self, u: np.ndarray) -> np.ndarray:
        out = np.array(u, dtype=float)
        if self._log_idx.size:
            with np.errstate(over="ignore"):
                out[..., self._log_idx] = np.exp(out[..., self._log_idx])
        return out

    def vector(self, params: dict[str, float]) -> np.ndarray:
        return self.to_internal(np.array([params[p] for p in self.free], dtype=float))

    def params(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Natural parameters as ``(R, 1)`` columns (fixed ones as scalars) for ``law.func``."""
        nat = self.to_natural(np.atleast_2d(u))
        out: dict[str, np.ndarray] = {p: nat[:, i:i + 1] for i, p in enumerate(self.free)}
        out.update(self.fixed)
        return out

    def predict(self, x: np.ndarray, u: np.ndarray,
                extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Law values, shape (R, N); ``extra`` holds per-row values ((R, 1)) of held parameters."""
        params = self.params(u)
        if extra:
            params.update(extra)
        return np.asarray(self.law.func(x, **params), dtype=float)


    def jacobian(self, x: np.ndarray, u: np.ndarray, f0: np.ndarray,
                 extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """d f / d u in internal space, shape (R, N, P): analytic when the law has ``grad``,
        else forward differences (``f0`` = f at ``u``)."""
        u = np.atleast_2d(u)
        n_par = u.shape[1]
        jac = np.empty(f0.shape + (n_par,))
        if self.law.grad is not None:
            params = self.params(u)
            if extra:
                params.update(extra)
            grads = self.law.grad(x, **params)
            nat = self.to_natural(u)
            for j, name in enumerate(self.free):
                col = grads[name] * nat[:, j:j + 1] if self._is_log[j] else grads[name]
                jac[..., j] = col
            return jac
        h = 1e-6 * np.maximum(1.0, np.abs(u))
        for j in range(n_par):
            up = u.copy()
            up[:, j] += h[:, j]
            jac[..., j] = (self.predict(x, up, extra) - f0) / h[:, j:j + 1]
        return jac


def _huber(r: np.ndarray, k: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-point loss and IRLS weight (plain least squares when ``k`` is None)."""
    if k is None:
        return 0.5 * r * r, np.ones_like(r)
    a = np.abs(r)
    loss = np.where(a <= k, 0.5 * r * r, k * a - 0.5 * k * k)
    with np.errstate(divide="ignore", invalid="ignore"):
        wt = np.where(a <= k, 1.0, k / a)
    return loss, wt


def _cost(space: Space, x, y, w, u, k, extra=None):
    f = space.predict(x, u, extra)
    r = f - y
    loss = 0.5 * r * r if k is None else _huber(r, k)[0]
    cost = np.sum(np.where(w > 0, w * loss, 0.0), axis=-1)
    return np.where(np.isfinite(cost), cost, np.inf), r


def solve(space: Space, x: np.ndarray, y: np.ndarray, w: np.ndarray, u0: np.ndarray, *,
          huber: float | None = None, max_iter: int = 200, ftol: float = 1e-12,
          xtol: float = 1e-10, row_fixed: dict[str, np.ndarray] | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise ``sum w * loss(f(x; u) - y)`` for every row at once.

    Shapes: ``x`` (N,) or (R, N); ``y`` and ``w`` (N,) or (R, N); ``u0`` (R, P) internal;
    ``row_fixed`` maps held parameters to per-row values (R,) (the grid's A and C_mid cells).
    ``space.lower``/``space.upper`` may be (P,) or per row (R, P) (many groups in one solve).
    Returns ``(u, cost, converged)`` with shapes (R, P), (R,), (R,).
    """
    per_row = np.ndim(space.lower) == 2
    u = np.array(np.clip(np.atleast_2d(u0), space.lower, space.upper), dtype=float)
    n_rows, n_par = u.shape
    y = np.broadcast_to(y, np.broadcast_shapes(np.shape(y), (n_rows, np.shape(y)[-1])))
    w = np.broadcast_to(w, y.shape)
    ok_pts = w > 0
    y = np.where(ok_pts, y, 0.0)
    sqrt_w = np.sqrt(np.where(ok_pts, w, 0.0))
    held = {k: np.asarray(v, dtype=float).reshape(-1, 1) for k, v in (row_fixed or {}).items()}
    cost, r = _cost(space, x, y, w, u, huber, held)
    lam = np.full(n_rows, 1e-3)
    active = np.isfinite(cost)
    converged = np.zeros(n_rows, dtype=bool)
    eye = np.eye(n_par)
    # Normal equations are cached per row and rebuilt only where the last step was accepted:
    # a rejected step changes only the damping.
    jtj_c = np.zeros((n_rows, n_par, n_par))
    g_c = np.zeros((n_rows, n_par))
    stale = np.ones(n_rows, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        lo_a, hi_a = (space.lower[idx], space.upper[idx]) if per_row else (space.lower,
                                                                             space.upper)
        rebuild = idx[stale[idx]]
        if rebuild.size:
            xb = x if np.ndim(x) == 1 else x[rebuild]
            ub, yb = u[rebuild], y[rebuild]
            exb = {k: v[rebuild] for k, v in held.items()}
            f0 = space.predict(xb, ub, exb)
            r0 = np.where(ok_pts[rebuild], f0 - yb, 0.0)
            if huber is None:
                sw = sqrt_w[rebuild]
            else:
                sw = np.sqrt(w[rebuild] * _huber(r0, huber)[1])
            jac = space.jacobian(xb, ub, f0, exb) * sw[..., None]
            jac[~np.isfinite(jac)] = 0.0
            rw = r0 * sw
            rw[~np.isfinite(rw)] = 0.0
            jtj_c[rebuild] = np.einsum("rnp,rnq->rpq", jac, jac)
            g_c[rebuild] = np.einsum("rnp,rn->rp", jac, rw)
            stale[rebuild] = False
        ua = u[idx]
        jtj, g = jtj_c[idx], g_c[idx]
        # Active set: a parameter on a bound whose descent direction points outside is held
        # for this step, so the others move freely instead of being dragged by the clip.
        tiny = 1e-12 * (1 + np.abs(ua))
        held_b = ((ua <= lo_a + tiny) & (g > 0)) | ((ua >= hi_a - tiny) & (g < 0))
        if held_b.any():
            keep = (~held_b).astype(float)
            jtj = jtj * keep[:, :, None] * keep[:, None, :] + np.einsum("rp,pq->rpq", 1 - keep, eye)
            g = g * keep
        diag = np.einsum("rpp->rp", jtj)
        damp = lam[idx, None] * np.maximum(diag, 1e-12 * (diag.max(axis=1, keepdims=True) + 1e-300))
        mat = jtj + damp[:, :, None] * eye + 1e-300 * eye
        try:
            step = np.linalg.solve(mat, -g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -np.stack([np.linalg.lstsq(m, gg, rcond=None)[0] for m, gg in zip(mat, g)])
        step = np.nan_to_num(step)
        trial = np.clip(ua + step, lo_a, hi_a)
        xa = x if np.ndim(x) == 1 else x[idx]
        ex = {k: v[idx] for k, v in held.items()}
        new_cost, _ = _cost(space, xa, y[idx], w[idx], trial, huber, ex)
        old = cost[idx]
        better = new_cost < old
        u[idx[better]] = trial[better]
        cost[idx[better]] = new_cost[better]
        stale[idx[better]] = True
        lam[idx] = np.where(better, np.maximum(lam[idx] / 10, 1e-12), lam[idx] * 10)
        d = trial - ua
        # Gauss-Newton model's predicted decrease of 0.5 * RSS for this step (MINPACK's test).
        pred = -np.einsum("rp,rp->r", d, g) - 0.5 * np.einsum("rp,rpq,rq->r", d, jtj, d)
        moved = np.max(np.abs(d) / (np.abs(ua) + 1e-8), axis=1)
        small_df = (better & ((old - new_cost) <= ftol * np.maximum(old, 1e-300))) | \
            ((~better) & (pred <= ftol * np.maximum(old, 1e-300)))
        small_dx = moved <= xtol
        done = small_df | small_dx | (lam[idx] > 1e12) | (old <= 1e-300)
        converged[idx[done]] = True
        active[idx[done]] = False
    return u, cost, converged
