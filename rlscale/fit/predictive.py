"""Curve and prediction intervals from joint parameter draws: the one implementation.

Both :meth:`rlscale.fit.FitResult.predict` (plots) and the forecasts (:mod:`rlscale.forecast.budgets`,
through :mod:`rlscale.forecast.curve`) call :func:`predictive`, so a plotted band and a forecast at the
same compute agree exactly. The fit package owns it because forecasting depends on fitting,
never the other way round.

* ``mean_lower``/``mean_upper``: equal-tailed quantiles of the law over the draws (where the
  mean curve lies);
* ``pred_lower``/``pred_upper``: quantiles of each draw's curve plus ``noise_per_draw`` seeded
  normal residuals of sd ``noise_sd`` (one new evaluation), i.e. Monte Carlo over the joint
  predictive distribution, never "largest half-width plus noise" (which over-covers). The same
  residuals serve every x, so the band is smooth and each x's interval is the same whichever
  other x are asked for.

Both intervals are widened, where needed, to hold the best-fit curve itself: when the fit sits at
a bound or cannot identify a parameter, the draws can lie almost all to one side of it (on one
of the 39 real curves of ``benchmarks/extrapolation.py``, at 10x its compute).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rlscale.fit.laws import Law

MAX_DRAWS = 4000
NOISE_PER_DRAW = 4


def draw_columns(samples: Any, point: Mapping[str, float], law: Law, *, seed: int = 0,
                 max_draws: int = MAX_DRAWS) -> dict[str, np.ndarray]:
    """The finite joint draws of ``samples`` (a DataFrame, one row per draw) as ``{param: (S,)}``.

    Parameters missing from ``samples`` are held at ``point``; more than ``max_draws`` rows are
    subsampled (seeded, still joint). Returns empty arrays when no row is finite.
    """
    n = len(samples) if samples is not None else 0
    idx = np.arange(n)
    if n > max_draws:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_draws, replace=False))
    cols = getattr(samples, "columns", ())
    out = {}
    for name in law.param_names:
        if name in cols:
            out[name] = np.asarray(samples[name], dtype=float)[idx]
        else:
            out[name] = np.full(idx.size, float(point[name]))
    good = np.all([np.isfinite(v) for v in out.values()], axis=0) if idx.size else \
        np.zeros(0, dtype=bool)
    return {k: v[good] for k, v in out.items()}


def predictive(law: Law, point: Mapping[str, float], draws: Mapping[str, np.ndarray],
               noise_sd: float, x: Any, *, level: float, seed: int = 0,
               noise_per_draw: int = NOISE_PER_DRAW, chunk: int = 256) -> dict[str, np.ndarray]:
    """Mean curve and intervals at compute ``x`` (1-d), each an array shaped like ``x``.

    ``point``: best-fit parameters (the ``mean`` column); ``draws``: ``{param: (S,)}`` joint
    draws; ``noise_sd``: sd of one new point around the mean curve (0 if unknown). Returns a dict
    with keys x, mean, mean_lower, mean_upper, pred_lower, pred_upper; the intervals are NaN
    without draws (unknown, never zero-width) and where no draw's curve is finite.
    """
    xs = np.atleast_1d(np.asarray(x, dtype=float))
    with np.errstate(all="ignore"):
        mean = np.asarray(law.func(xs, **point), dtype=float)
    out = {k: np.full(xs.shape, np.nan)
           for k in ("mean_lower", "mean_upper", "pred_lower", "pred_upper")}
    n_draws = len(next(iter(draws.values()))) if draws else 0
    if n_draws == 0:
        return {"x": xs, "mean": mean, **out}
    sd = float(noise_sd) if np.isfinite(noise_sd) else 0.0
    alpha = (1.0 - level) / 2.0
    # One residual vector for every x (common random numbers): the band is smooth in x and the
    # interval at a compute value does not depend on which other values are asked for.
    z = sd * np.random.default_rng(seed).standard_normal((n_draws * noise_per_draw, 1))
    cols = {k: np.asarray(v, dtype=float)[:, None] for k, v in draws.items()}
    for start in range(0, xs.size, chunk):
        part = slice(start, start + chunk)
        with np.errstate(all="ignore"):
            d = np.asarray(law.func(xs[None, part], **cols), dtype=float)
        d = np.broadcast_to(d, (n_draws, xs[part].size))
        d = np.where(np.isfinite(d), d, np.nan)
        noisy = np.repeat(d, noise_per_draw, axis=0)
        noisy = noisy + z
        some = np.isfinite(d).any(axis=0)
        if not some.any():
            continue
        where = np.arange(xs.size)[part][some]
        for key, arr in (("mean", d), ("pred", noisy)):
            qs = np.nanquantile(arr[:, some], [alpha, 1 - alpha], axis=0)
            out[f"{key}_lower"][where], out[f"{key}_upper"][where] = qs[0], qs[1]
    # an interval always holds its own estimate: where the best fit sits at a bound, or the
    # draws of an unidentified fit scatter to one side, the quantiles alone can exclude it
    for key in ("mean", "pred"):
        lo, hi = out[f"{key}_lower"], out[f"{key}_upper"]
        known = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(mean)
        out[f"{key}_lower"] = np.where(known, np.minimum(lo, mean), lo)
        out[f"{key}_upper"] = np.where(known, np.maximum(hi, mean), hi)
    return {"x": xs, "mean": mean, **out}
