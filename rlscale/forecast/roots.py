"""Vectorised curve math behind the forecasts: inverses, crossings and intervals over draws.

Everything here works on plain numpy arrays, so it can be tested without a fit. A "draw" is one
joint sample of a law's parameters; parameters are passed as ``{name: array of shape (S,)}`` and
results come back with one entry per draw. Compute ``x`` is always positive; the root finders work
in ``log10(x)`` because reward curves are laid out on a log-compute axis.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
from scipy.optimize import brentq

from rlscale.errors import InputError

Params = Mapping[str, "np.ndarray | float"]
CurveFunc = Callable[..., np.ndarray]

# log10(x) search range for numeric inverses: far wider than any real compute budget, but finite so
# that an asymptote that is never reached reads as "never" instead of looping forever.
LOG_X_RANGE: tuple[float, float] = (-30.0, 60.0)


def sigmoid_inverse(y: np.ndarray | float, *, A: np.ndarray | float, B: np.ndarray | float,
                    C_mid: np.ndarray | float, R0: np.ndarray | float) -> np.ndarray:
    """Compute at which the sigmoid reaches reward ``y``: ``C_mid * ((y-R0)/(A-y))**(1/B)``.

    Broadcasts over all arguments. Returns ``inf`` where ``y`` is at or beyond the ceiling ``A``
    (never reached), ``0`` where ``y`` is at or before the start ``R0`` (reached before any RL
    compute), and works for falling curves (``A < R0``) too.
    """
    y, A, B, C_mid, R0 = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                               for v in (y, A, B, C_mid, R0)))
    gain = A - R0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        frac = (y - R0) / gain  # fraction of the gain that y represents
        out = C_mid * (frac / (1.0 - frac)) ** (1.0 / B)
    out = np.where(frac >= 1.0, np.inf, out)
    out = np.where(frac <= 0.0, 0.0, out)
    return np.where(gain == 0.0, np.where(y == R0, 0.0, np.inf), out)


def sigmoid_fraction_compute(fraction: np.ndarray | float, *, B: np.ndarray | float,
                             C_mid: np.ndarray | float) -> np.ndarray:
    """Compute to reach fraction ``F`` of the gain ``A - R0``: ``C_mid * (F/(1-F))**(1/B)``."""
    f = np.asarray(fraction, dtype=float)
    if np.any((f <= 0) | (f >= 1)):
        msg = f"fraction of the gain must be strictly between 0 and 1, got {fraction!r}"
        raise InputError(msg)
    return np.asarray(C_mid) * (f / (1.0 - f)) ** (1.0 / np.asarray(B))


def numeric_inverse(func: CurveFunc, y: float, params: Mapping[str, float], *,
                    log_x_range: tuple[float, float] = LOG_X_RANGE, xtol: float = 1e-12) -> float:
    """Smallest-effort numeric inverse of a monotone curve ``func(x, **params)`` at reward ``y``.

    Brent's method on ``log10(x)`` within ``log_x_range``. Returns ``0.0`` if the curve already
    starts at or past ``y``, ``inf`` if it never gets there inside the range, ``nan`` if the curve
    is not finite at the ends of the range.
    """
    lo, hi = log_x_range

    def gap(u: float) -> float:
        return float(func(np.array(10.0 ** u), **params)) - y

    g_lo, g_hi = gap(lo), gap(hi)
    if not (np.isfinite(g_lo) and np.isfinite(g_hi)):
        return float("nan")
    rising = g_hi >= g_lo
    if (g_lo >= 0) if rising else (g_lo <= 0):
        return 0.0
    if (g_hi < 0) if rising else (g_hi > 0):
        return float("inf")
    return float(10.0 ** brentq(gap, lo, hi, xtol=xtol, maxiter=200))


def numeric_inverse_draws(func: CurveFunc, y: float, params: Params, **kwargs: object) -> np.ndarray:
    """:func:`numeric_inverse` for every draw in ``params`` (arrays of equal length S) -> (S,)."""
    n = _n_draws(params)
    arrays = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in params.items()}
    return np.array([numeric_inverse(func, y, {k: a[i] for k, a in arrays.items()}, **kwargs)
                     for i in range(n)])


def _n_draws(params: Params) -> int:
    sizes = {np.asarray(v).size for v in params.values()} - {1}
    if len(sizes) > 1:
        msg = f"parameter draws must all have the same length, got lengths {sorted(sizes)}"
        raise InputError(msg)
    return sizes.pop() if sizes else 1


def interval(values: np.ndarray, level: float, *, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` interval of ``values`` along ``axis``; ``inf`` entries are allowed.

    ``inf``/``-inf`` sort to the ends, so a bound lands on ``inf`` exactly when more than
    ``(1 - level) / 2`` of the draws are infinite on that side. NaN draws are dropped.
    """
    check_level(level)
    alpha = (1.0 - level) / 2.0
    v = np.asarray(values, dtype=float)
    # method="inverted_cdf" never interpolates between a finite value and inf (that gives nan).
    lo = np.nanquantile(v, alpha, axis=axis, method="inverted_cdf")
    hi = np.nanquantile(v, 1.0 - alpha, axis=axis, method="inverted_cdf")
    return lo, hi


def check_level(level: float) -> float:
    """Return ``level`` if it is a probability strictly between 0 and 1, else raise ValueError."""
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        msg = f"interval level must be strictly between 0 and 1 (e.g. 0.9), got {level!r}"
        raise InputError(msg)
    return float(level)


def sign_change_roots(log_x: np.ndarray, diff: np.ndarray) -> list[tuple[int, float]]:
    """Where ``diff`` (sampled on the grid ``log_x``) changes sign, as ``(index, log10 x)`` pairs.

    The root is placed by linear interpolation between grid points ``index`` and ``index + 1``;
    an exact zero on the grid counts once. ``diff`` has shape (G,).
    """
    d = np.asarray(diff, dtype=float)
    roots: list[tuple[int, float]] = []
    sign = np.sign(d)
    for i in range(len(d) - 1):
        if not (np.isfinite(d[i]) and np.isfinite(d[i + 1])):
            continue
        if sign[i] == 0:
            if i == 0 or sign[i - 1] != 0:
                roots.append((i, float(log_x[i])))
            continue
        if sign[i] * sign[i + 1] < 0:
            t = d[i] / (d[i] - d[i + 1])
            roots.append((i, float(log_x[i] + t * (log_x[i + 1] - log_x[i]))))
    return roots


def grid_roots(log_x: np.ndarray, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`sign_change_roots` for many curves at once.

    ``diff`` has shape (S, G) on the grid ``log_x`` (G,). Returns ``(mask, roots)``, both (S, G-1):
    ``mask[s, k]`` is True where row ``s`` changes sign between grid points ``k`` and ``k+1`` (a
    zero on the grid counts as the start of a change), ``roots`` the interpolated ``log10 x``
    there (NaN elsewhere).
    """
    d = np.asarray(diff, dtype=float)
    left, right = d[:, :-1], d[:, 1:]
    finite = np.isfinite(left) & np.isfinite(right)
    mask = finite & (((left < 0) & (right >= 0)) | ((left > 0) & (right <= 0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(mask, left / (left - right), np.nan)
    step = np.diff(np.asarray(log_x, dtype=float))
    return mask, np.asarray(log_x[:-1] + t * step, dtype=float)


def crossing_points(func_a: Callable[[float], float], func_b: Callable[[float], float], *,
                    x_range: tuple[float, float], grid: int = 400) -> list[float]:
    """Every ``x`` in ``x_range`` where curves ``a`` and ``b`` cross, refined with Brent's method.

    Curves that cross twice between two neighbouring grid points (``grid`` points per range,
    log-spaced) are missed; 400 points over eight decades is a 5% step.
    """
    lo, hi = np.log10(x_range[0]), np.log10(x_range[1])
    u = np.linspace(lo, hi, grid)
    diff = np.array([func_a(10.0 ** v) - func_b(10.0 ** v) for v in u])
    out = []
    for i, guess in sign_change_roots(u, diff):
        if diff[i] == 0:
            out.append(10.0 ** guess)
            continue
        root = brentq(lambda v: func_a(10.0 ** v) - func_b(10.0 ** v), u[i], u[i + 1], xtol=1e-12)
        out.append(float(10.0 ** root))
    return out
