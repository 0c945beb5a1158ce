"""A forecaster's view of a :class:`rlscale.fit.FitResult`: the law, the point estimate, joint draws.

This is the one place that knows the shape of a FitResult, so a change in the fit contract is
absorbed here. Draws come from ``FitResult.samples`` (one column per free parameter; fixed
parameters are filled with their fitted value). A fit without samples falls back to independent
normal draws from each parameter's standard error, clipped to the law's sign constraints; that
ignores parameter correlations, so the forecast's ``method`` says ``normal-approx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from rlscale.errors import InputError
from rlscale.fit.laws import Law, get_law
from rlscale.fit.predictive import MAX_DRAWS, draw_columns, predictive
from rlscale.forecast.roots import numeric_inverse
from rlscale.text import group_label

LOG_X_LIMITS = (-30.0, 60.0)  # "x -> 0" and "x -> inf" when probing a law's ends


@dataclass(frozen=True)
class Curve:
    """One fitted curve ready for forecasting.

    ``draws`` maps every law parameter to an array of shape (S,) (joint draws); ``point`` holds
    the fitted values; ``noise_sd`` is the sd of a new run's point around the mean curve.
    """

    fit: Any
    law: Law
    point: dict[str, float]
    draws: dict[str, np.ndarray]
    noise_sd: float
    method: str
    group: dict[str, Any]
    label: str

    @property
    def n_draws(self) -> int:
        return len(next(iter(self.draws.values())))

    def mean(self, x: np.ndarray | float) -> np.ndarray:
        """Point-estimate curve at ``x`` (any shape)."""
        return np.asarray(self.law.func(np.asarray(x, dtype=float), **self.point), dtype=float)

    def mean_draws(self, x: np.ndarray | float) -> np.ndarray:
        """Curve of every draw at ``x``: shape (S,) + shape(x)."""
        x = np.asarray(x, dtype=float)
        cols = {k: v.reshape((-1,) + (1,) * x.ndim) for k, v in self.draws.items()}
        with np.errstate(all="ignore"):
            out = self.law.func(x[None, ...], **cols)
        return np.broadcast_to(np.asarray(out, dtype=float), (self.n_draws,) + x.shape)

    def predict(self, x: np.ndarray | float, *, level: float, seed: int = 0) -> dict[str, np.ndarray]:
        """Mean curve and intervals at ``x`` (1-d), each an array shaped like ``x``: the fit's own
        computation (:func:`rlscale.fit.predictive.predictive`, also behind
        ``FitResult.predict``): quantiles of the draws' curves, and of the draws' curves plus
        normal residuals of sd :attr:`noise_sd` (Monte Carlo, seeded) for one new point.
        """
        return predictive(self.law, self.point, self.draws, self.noise_sd, x, level=level,
                          seed=seed)

    def inverse(self, y: np.ndarray | float, params: Mapping[str, np.ndarray | float]) -> np.ndarray:
        """Compute at which the curve with ``params`` reaches ``y``: ``inf`` never, ``0`` already.

        Uses the law's closed-form inverse where it has one, else Brent's method on log10(x)
        (:func:`rlscale.forecast.roots.numeric_inverse`). The closed forms give NaN outside their range;
        which side ``y`` fell on is decided by the law's ends, probed at ``x = 10**-30`` and
        ``10**60``.
        """
        y = np.asarray(y, dtype=float)
        if self.law.inverse is None:
            return self._numeric_inverse(y, params)
        with np.errstate(all="ignore"):
            out = np.asarray(self.law.inverse(y, **params), dtype=float)
            start = np.asarray(self.law.func(np.array(10.0 ** LOG_X_LIMITS[0]), **params))
            end = np.asarray(self.law.func(np.array(10.0 ** LOG_X_LIMITS[1]), **params))
        rising = end >= start
        beyond = np.where(rising, y >= end, y <= end)
        out, beyond = np.broadcast_arrays(out, beyond)
        return np.where(np.isnan(out), np.where(beyond, np.inf, 0.0), out)

    def _numeric_inverse(self, y: np.ndarray, params: Mapping[str, np.ndarray | float]) -> np.ndarray:
        arrays = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        shape = np.broadcast_shapes(y.shape, *(a.shape for a in arrays.values()))
        ys = np.broadcast_to(y, shape).ravel()
        cols = {k: np.broadcast_to(a, shape).ravel() for k, a in arrays.items()}
        with np.errstate(all="ignore"):
            out = [numeric_inverse(self.law.func, float(ys[i]), {k: float(c[i]) for k, c in cols.items()},
                                   log_x_range=LOG_X_LIMITS) for i in range(ys.size)]
        return np.asarray(out, dtype=float).reshape(shape)


def as_fit_list(fits: Any) -> list[Any]:
    """A FitResult or an iterable of them -> list; refuses anything else with a clear message."""
    items = [fits] if hasattr(fits, "params") else list(fits)
    if not items:
        msg = "no fits to forecast from (no group had enough points?)"
        raise InputError(msg)
    for item in items:
        if not hasattr(item, "params") or not hasattr(item, "law"):
            msg = f"expected FitResult objects, got {type(item).__name__}"
            raise InputError(msg)
    return items


def curve(fit: Any, *, seed: int = 0, max_draws: int = MAX_DRAWS) -> Curve:
    """Build the :class:`Curve` of ``fit`` (see module docstring for where draws come from)."""
    law = getattr(fit, "law_obj", None) or get_law(fit.law)
    point = {name: float(fit.params[name].value) for name in law.param_names}
    samples = getattr(fit, "samples", None)
    if samples is not None and len(samples) > 0:
        draws = _draws_from_samples(samples, point, law, seed=seed, max_draws=max_draws)
        method = str(getattr(fit, "samples_method", None) or "samples")
    else:
        draws = _normal_draws(fit, point, law, seed=seed, n=1000)
        method = "normal-approx" if len(draws[law.param_names[0]]) else "none"
    return Curve(fit=fit, law=law, point=point, draws=draws, noise_sd=noise_sd(fit),
                 method=method, group=dict(fit.group or {}), label=group_label(fit.group))


def noise_sd(fit: Any) -> float:
    """Standard deviation of one new observation around the mean curve (the fit's residual sd)."""
    sd = getattr(fit, "resid_sd", None)
    return float(sd) if sd is not None and np.isfinite(sd) else 0.0


def _draws_from_samples(samples: Any, point: dict[str, float], law: Law, *, seed: int,
                        max_draws: int) -> dict[str, np.ndarray]:
    out = draw_columns(samples, point, law, seed=seed, max_draws=max_draws)
    if not len(out[law.param_names[0]]):
        msg = "the fit's parameter samples are all non-finite; refit with --bootstrap"
        raise InputError(msg)
    return out


def _normal_draws(fit: Any, point: dict[str, float], law: Law, *, seed: int,
                  n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in law.param_names:
        est = fit.params[name]
        sd = getattr(est, "stderr", None)
        vary = getattr(est, "vary", True)
        if vary and (sd is None or not np.isfinite(sd)):
            # no usable uncertainty at all: no draws, so intervals come out NaN, never zero-width
            return {k: np.empty(0) for k in law.param_names}
        if not vary:
            out[name] = np.full(n, point[name])
            continue
        draw = rng.normal(point[name], sd, n)
        if name in law.log_params:  # scales stay positive
            draw = np.abs(draw)
        out[name] = draw
    return out


def align_draws(curves: Iterable[Curve], *, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Each curve's draws at a common count: as they are when the counts agree, else resampled
    with replacement (seeded) up to the largest count.

    Draws of different groups are independent at the source: ``rlscale.fit`` seeds each group's
    draws from (seed, group key, data), so draw ``i`` of two groups is unrelated and no shuffle
    is needed here.
    """
    curves = list(curves)
    n = max(c.n_draws for c in curves)
    if any(c.n_draws == 0 for c in curves):
        raise InputError("a fit has no parameter draws (its covariance could not be estimated), "
                         "so groups cannot be compared; refit with --bootstrap N: "
                         + ", ".join(c.label for c in curves if c.n_draws == 0))
    rng = np.random.default_rng(seed)
    out = []
    for c in curves:
        if c.n_draws == n:
            out.append(dict(c.draws))
        else:
            idx = rng.choice(c.n_draws, n, replace=True)
            out.append({k: v[idx] for k, v in c.draws.items()})
    return out
