"""Intervals and parameter draws: Wald (AR(1)-widened), normal draws, and bootstraps.

Residuals of training curves are autocorrelated (evaluations of one run share its random walk),
so i.i.d. formulas are too narrow. We estimate the lag-1 autocorrelation rho of the residuals
within each run (in compute order) and widen variances by the AR(1) factor (1 + rho) / (1 - rho),
i.e. n_eff = n (1 - rho) / (1 + rho) (rho clipped to [0, 0.9]). The point bootstrap becomes a
moving-block bootstrap with block length 3 (1 + rho) / (1 - rho) when rho > 0.2; the run bootstrap
resamples whole runs (seeds), which keeps each run's correlation intact.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import special

from rlscale.fit.solver import Space, solve


def ar1(resid: np.ndarray, run_id: np.ndarray, x: np.ndarray) -> float:
    """Pooled lag-1 autocorrelation of residuals within runs, in x order (NaN if < 3 pairs)."""
    num = den = 0.0
    pairs = 0
    centred = resid - resid.mean()
    for run in pd.unique(run_id):
        sel = np.flatnonzero(run_id == run)
        r = centred[sel[np.argsort(x[sel], kind="stable")]]
        num += float(np.sum(r[1:] * r[:-1]))
        den += float(np.sum(r * r))
        pairs += max(r.size - 1, 0)
    if pairs < 3 or den <= 0:
        return float("nan")
    return num / den


def inflation(rho: float) -> float:
    """AR(1) variance inflation factor (1 + rho) / (1 - rho), rho clipped to [0, 0.9]."""
    if not math.isfinite(rho):
        return 1.0
    r = min(max(rho, 0.0), 0.9)
    return (1 + r) / (1 - r)


def covariance(space: Space, x: np.ndarray, y: np.ndarray, u: np.ndarray,
               sd: float) -> np.ndarray:
    """Asymptotic covariance of the internal parameters, sd^2 (J^T J)^+ (pseudo-inverse)."""
    n_par = u.size
    if n_par == 0:
        return np.zeros((0, 0))
    f0 = space.predict(x, u[None, :])
    jac = space.jacobian(x, u[None, :], f0)[0]
    if not np.all(np.isfinite(jac)):
        return np.full((n_par, n_par), np.nan)
    jtj = jac.T @ jac
    try:
        if np.linalg.cond(jtj) > 1e14:
            return np.full((n_par, n_par), np.nan)
        return sd**2 * np.linalg.inv(jtj)
    except np.linalg.LinAlgError:
        return np.full((n_par, n_par), np.nan)


def group_seed(seed: int, group: Mapping[str, Any], x: np.ndarray, y: np.ndarray) -> int:
    """The RNG seed of one group's draws and resamples, from the user's ``seed``, the group key
    and the group's points (a stable hash: same inputs, same draws, on any machine).

    Groups fitted with one ``seed`` must not share a random stream: draw ``i`` of two groups
    would be correlated and any cross-group probability (P(leader leads)) far too sure. The data
    enter too, so two separate ``fit()`` calls without ``by`` (both group ``{}``) are independent.
    """
    key = json.dumps(sorted((str(k), str(v)) for k, v in group.items()))
    h = hashlib.blake2b(key.encode(), digest_size=16)
    h.update(np.ascontiguousarray(x, dtype=float).tobytes())
    h.update(np.ascontiguousarray(y, dtype=float).tobytes())
    words = np.frombuffer(h.digest(), dtype=np.uint32)
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *map(int, words)])
    return int(ss.generate_state(2, dtype=np.uint64)[0])


def normal_draws(space: Space, u: np.ndarray, cov_u: np.ndarray, *, n: int,
                 seed: int) -> np.ndarray:
    """``n`` draws (n, P) of internal parameters from N(u, cov_u), clipped to bounds."""
    if u.size == 0 or not np.all(np.isfinite(cov_u)):
        return np.empty((0, u.size))
    rng = np.random.default_rng(seed)
    vals, vecs = np.linalg.eigh((cov_u + cov_u.T) / 2)
    root = vecs * np.sqrt(np.clip(vals, 0, None))
    draws = u + rng.standard_normal((n, u.size)) @ root.T
    return np.clip(draws, space.lower, space.upper)


def resample_weights(run_id: np.ndarray, x: np.ndarray, *, n: int, how: str, block: int,
                     seed: int) -> np.ndarray:
    """(n, N) integer weights: multinomial counts over points (blocks of ``block`` consecutive
    points of a run in x order) or over runs."""
    rng = np.random.default_rng(seed)
    npts = x.size
    if how == "runs":
        runs, inv = np.unique(run_id, return_inverse=True)
        counts = rng.multinomial(runs.size, np.full(runs.size, 1 / runs.size), size=n)
        return counts[:, inv].astype(float)
    order = np.lexsort((x, run_id))
    if block <= 1:
        counts = rng.multinomial(npts, np.full(npts, 1 / npts), size=n).astype(float)
    else:
        n_blocks = math.ceil(npts / block)
        starts = rng.integers(0, npts - block + 1, size=(n, n_blocks))
        idx = (starts[..., None] + np.arange(block)).reshape(n, -1)
        flat = (idx + np.arange(n)[:, None] * npts).ravel()
        counts = np.bincount(flat, minlength=n * npts).reshape(n, npts).astype(float)
        counts *= npts / counts.sum(axis=1, keepdims=True)
    out = np.empty_like(counts)
    out[:, order] = counts
    return out


def bootstrap(space: Space, x: np.ndarray, y: np.ndarray, u: np.ndarray, weights: np.ndarray,
              *, huber: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Refit every resample (rows of ``weights``) at once, warm-started at ``u``.

    Returns (draws (n_ok, P) internal, converged fraction as a 0-d array)."""
    u0 = np.repeat(u[None, :], weights.shape[0], axis=0)
    uu, cost, conv = solve(space, x, y, weights, u0, huber=huber)
    good = np.isfinite(cost) & np.all(np.isfinite(uu), axis=1)
    return uu[good], np.asarray(conv[good].mean() if good.any() else 0.0)


def wald_interval(value: float, se: float, *, log: bool, q: float) -> tuple[float, float]:
    """value -+ q se, computed in log space for positive scale parameters."""
    if not math.isfinite(se):
        return (float("nan"), float("nan"))
    if log and value > 0:
        s = min(q * se / value, 700.0)  # beyond e^700 the interval is 'unbounded' anyway
        return (value * math.exp(-s), value * math.exp(s))
    return (value - q * se, value + q * se)


def t_quantile(level: float, dof: int) -> float:
    return float(special.stdtrit(max(dof, 1), 1 - (1 - level) / 2))  # = stats.t.ppf
