"""Laws of one fitted parameter across a scale N (pretraining budget, model size, ...).

``rlscale headroom`` fits the ceiling A against the pretraining budget with it, and
``rlscale forecast --scale-by`` fits A, C_mid, B and R0 against any numeric scale key. Every
function takes one row per fit, so thousands of joint draws are fitted at once.

``saturating`` (default for A)::

    A(N) = A_max - D * (N / N_ref)**(-alpha)          alpha > 0

A ceiling that rises with scale with diminishing returns, to a finite limit A_max. This is
the Chinchilla-style form of loss in data (L = E + B / D**beta) turned upside down, and the same
form as ``laws.power`` for reward in RL compute; it needs no point below an "emergence" threshold,
unlike a logistic in log N (4 parameters: floor, ceiling, midpoint, slope), which a sweep of 3-5
scales cannot identify. N_ref (``p_ref``) is the geometric mean of the observed scales, so D is
the gap to A_max in the middle of the sweep (well conditioned). With ``cap`` set (e.g. 1.0 for a
pass rate), A_max is fixed and only D, alpha are fitted: 2 parameters, so 3 scales leave one
degree of freedom.

``loglinear``: ``A(N) = a + b * log10(N / N_ref)``: no ceiling, the fallback for 2 scales; with
log10 C_mid in place of A it is a power law of C_mid in N (:func:`fit_line`).

Fitting profiles alpha: for fixed alpha the law is linear in (A_max, D), solved in closed form
(weighted), so alpha is found by a 1-D search: a log grid over [0.01, 10] (1.8 % steps), then
two zooms into the best point's neighbours (20x finer each: 0.004 % steps), vectorised over
thousands of joint draws at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEADROOM_LAWS: tuple[str, ...] = ("auto", "saturating", "loglinear")
ALPHA_GRID = np.geomspace(1e-2, 10.0, 400)


@dataclass(frozen=True)
class HeadroomFit:
    """Parameters of one headroom-law fit (arrays of shape ``(n_fits,)``).

    ``law``: ``saturating`` or ``loglinear``; ``p_ref``: the reference budget; ``params``:
    name -> values (``A_max, D, alpha`` or ``a, b``); ``rss``: weighted residual sum of squares;
    ``at_bound``: alpha hit the edge of its grid (the ceiling is then not identified).
    """

    law: str
    p_ref: float
    params: dict[str, np.ndarray]
    rss: np.ndarray
    at_bound: np.ndarray

    def predict(self, p: np.ndarray) -> np.ndarray:
        """A at budgets ``p`` (shape ``(m,)``) for every fit: shape ``(n_fits, m)``."""
        z = np.log10(np.asarray(p, dtype=float)[None, :] / self.p_ref)
        if self.law == "loglinear":
            return self.params["a"][:, None] + self.params["b"][:, None] * z
        alpha = self.params["alpha"][:, None]
        return self.params["A_max"][:, None] - self.params["D"][:, None] * 10.0 ** (-alpha * z)


def n_params(law: str, *, cap: float | None) -> int:
    """Free parameters of ``law`` (``cap`` fixes A_max of the saturating law)."""
    if law == "loglinear":
        return 2
    return 2 if cap is not None else 3


def resolve_law(law: str, n_levels: int, *, cap: float | None) -> str:
    """``auto`` -> ``saturating`` when there are at least as many levels as its parameters,
    else ``loglinear``. Raises ValueError when ``law`` cannot be fitted to ``n_levels`` points."""
    if law not in HEADROOM_LAWS:
        msg = f"headroom law {law!r} is not known; expected one of {list(HEADROOM_LAWS)}"
        raise ValueError(msg)
    if law == "auto":
        law = "saturating" if n_levels >= n_params("saturating", cap=cap) else "loglinear"
    need = n_params(law, cap=cap)
    if n_levels < need:
        msg = (f"the {law} headroom law has {need} free parameters but there are only {n_levels} "
               f"pretraining level(s); add levels" + (", or fix the ceiling with --cap"
                                                      if law == "saturating" and cap is None else ""))
        raise ValueError(msg)
    return law


def fit_headroom_law(p: np.ndarray, a: np.ndarray, *, law: str, weights: np.ndarray | None = None,
                     cap: float | None = None) -> HeadroomFit:
    """Least-squares fit of the headroom law to ceilings ``a`` at budgets ``p``.

    ``p``: shape ``(L,)``, positive. ``a``: shape ``(L,)`` or ``(n_fits, L)`` (e.g. joint draws
    of the per-level ceilings, all fitted at once). ``weights``: shape ``(L,)``, e.g. 1/se**2 of
    each level's A (default equal). Returns a :class:`HeadroomFit` with one fit per row of ``a``.
    """
    p = np.asarray(p, dtype=float)
    a2 = np.atleast_2d(np.asarray(a, dtype=float))
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    p_ref = float(np.exp(np.mean(np.log(p))))
    if law == "loglinear":
        slope, icpt, rss = fit_line(np.log10(p / p_ref), a2, weights=w)
        return HeadroomFit("loglinear", p_ref, {"a": icpt, "b": slope}, rss,
                           np.zeros(a2.shape[0], bool))
    parts = [_saturating(p / p_ref, a2[i:i + _CHUNK], w, cap) for i in range(0, len(a2), _CHUNK)]
    params = {k: np.concatenate([pt[0][k] for pt in parts]) for k in ("A_max", "D", "alpha")}
    return HeadroomFit("saturating", p_ref, params, np.concatenate([pt[1] for pt in parts]),
                       np.concatenate([pt[2] for pt in parts]))


def fit_line(z: np.ndarray, y: np.ndarray, *,
             weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares ``y ~ icpt + slope * z`` for every row of ``y``.

    ``z``: ``(L,)`` (e.g. log10 of the scales over N_ref); ``y``: ``(L,)`` or ``(n_fits, L)``;
    ``weights``: ``(L,)`` (default equal). Returns slope, intercept and the weighted rss (weights
    normalised to sum 1), each ``(n_fits,)``.
    """
    y2 = np.atleast_2d(np.asarray(y, dtype=float))
    z = np.asarray(z, dtype=float)
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=float)
    zz = np.broadcast_to(z, y2.shape)[:, None, :]
    slope, icpt, rss = _linear(zz, y2, w / w.sum())
    return slope[:, 0], icpt[:, 0], rss[:, 0]


_CHUNK = 256  # draws fitted together; bounds memory at _CHUNK * grid * levels floats


def _saturating(x: np.ndarray, a: np.ndarray, w: np.ndarray,
                cap: float | None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Profile alpha on a coarse log grid, then zoom twice into the best point's neighbours."""
    n = a.shape[0]
    grid = np.broadcast_to(ALPHA_GRID, (n, ALPHA_GRID.size))
    a_max, d, rss = _at_alpha(x, a, w, cap, grid)
    best = np.argmin(rss, axis=1)
    at_bound = (best == 0) | (best == ALPHA_GRID.size - 1)
    rows = np.arange(n)
    for _ in range(_ZOOMS):
        last = grid.shape[1] - 1
        lo = np.log(grid[rows, np.maximum(best - 1, 0)])
        hi = np.log(grid[rows, np.minimum(best + 1, last)])
        grid = np.exp(lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 41)[None, :])
        a_max, d, rss = _at_alpha(x, a, w, cap, grid)
        best = np.argmin(rss, axis=1)
    params = {"A_max": a_max[rows, best], "D": d[rows, best], "alpha": grid[rows, best]}
    return params, rss[rows, best], at_bound


_ZOOMS = 2


def _at_alpha(x: np.ndarray, a: np.ndarray, w: np.ndarray, cap: float | None,
              alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (A_max, D) and rss for each row of ``a`` (N, L) at each of its ``alphas`` (N, G)."""
    z = x[None, None, :] ** (-alphas[..., None])          # (N, G, L)
    if cap is None:
        slope, icpt, rss = _linear(z, a, w)
        return icpt, -slope, rss
    d = ((cap - a)[:, None, :] * z * w).sum(-1) / (z * z * w).sum(-1)
    rss = (w * (a[:, None, :] - (cap - d[..., None] * z)) ** 2).sum(-1)
    return np.full_like(d, cap), d, rss


def _linear(z: np.ndarray, a: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted least squares ``a ~ icpt + slope * z`` for every row of ``a`` and column of ``z``.

    ``z``: ``(N, G, L)``, ``a``: ``(N, L)``, ``w``: ``(L,)`` summing to 1. Returns slope,
    intercept and rss, each ``(N, G)`` (rss is inf where z is constant and slope undefined).
    """
    zm = (z * w).sum(-1)
    zc = z - zm[..., None]
    var = (zc * zc * w).sum(-1)
    slope = (zc * a[:, None, :] * w).sum(-1) / np.where(var > 0, var, np.nan)
    icpt = (a @ w)[:, None] - slope * zm
    rss = (w * (a[:, None, :] - icpt[..., None] - slope[..., None] * z) ** 2).sum(-1)
    return slope, icpt, np.where(np.isfinite(rss), rss, np.inf)
