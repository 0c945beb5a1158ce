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

from rlscale.curves import numeric_inverse
from rlscale.errors import InputError
from rlscale.laws import Law, get_law

MAX_DRAWS = 4000
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

    def predict(self, x: np.ndarray | float, *, level: float, seed: int = 0,
                noise_per_draw: int = 4, chunk: int = 256) -> dict[str, np.ndarray]:
        """Mean curve and intervals at ``x`` (1-d), each an array shaped like ``x``.

        ``mean``: the best-fit curve. ``mean_lower/upper``: equal-tailed quantiles of the curve
        over the joint draws. ``pred_lower/upper``: quantiles of draw curve plus a normal
        residual of sd :attr:`noise_sd` (``noise_per_draw`` seeded residuals per draw), i.e. the
        predictive distribution of one new point, propagated by Monte Carlo rather than by
        adding half-widths, so it is as wide as the draws say and no wider.
        """
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        if self.n_draws == 0:
            nan = np.full(xs.shape, np.nan)
            return {"x": xs, "mean": self.mean(xs), "mean_lower": nan, "mean_upper": nan,
                    "pred_lower": nan, "pred_upper": nan}
        alpha = (1.0 - level) / 2.0
        rng = np.random.default_rng(seed)
        out = {k: np.empty(xs.shape) for k in ("mean_lower", "mean_upper", "pred_lower", "pred_upper")}
        for start in range(0, xs.size, chunk):
            part = slice(start, start + chunk)
            d = self.mean_draws(xs[part])  # (S, n)
            d = np.where(np.isfinite(d), d, np.nan)
            out["mean_lower"][part] = np.nanquantile(d, alpha, axis=0)
            out["mean_upper"][part] = np.nanquantile(d, 1 - alpha, axis=0)
            noisy = np.repeat(d, noise_per_draw, axis=0)
            noisy = noisy + rng.normal(0.0, 1.0, noisy.shape) * self.noise_sd
            out["pred_lower"][part] = np.nanquantile(noisy, alpha, axis=0)
            out["pred_upper"][part] = np.nanquantile(noisy, 1 - alpha, axis=0)
        return {"x": xs, "mean": self.mean(xs), **out}

    def inverse(self, y: np.ndarray | float, params: Mapping[str, np.ndarray | float]) -> np.ndarray:
        """Compute at which the curve with ``params`` reaches ``y``: ``inf`` never, ``0`` already.

        Uses the law's closed-form inverse where it has one, else Brent's method on log10(x)
        (:func:`rlscale.curves.numeric_inverse`). The closed forms give NaN outside their range;
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


def group_label(group: Mapping[str, Any] | None) -> str:
    """``{'recipe': 'a', 'lr': 1e-4}`` -> ``recipe=a,lr=0.0001``; an empty group is ``all``."""
    if not group:
        return "all"
    return ",".join(f"{k}={v}" for k, v in group.items())


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
    n = len(samples)
    idx = np.arange(n)
    if n > max_draws:  # keep forecasts fast on huge bootstraps; a seeded subset, still joint
        idx = np.sort(np.random.default_rng(seed).choice(n, max_draws, replace=False))
    out = {}
    for name in law.param_names:
        if name in samples.columns:
            col = np.asarray(samples[name], dtype=float)[idx]
        else:
            col = np.full(idx.size, point[name])
        out[name] = col
    good = np.all([np.isfinite(v) for v in out.values()], axis=0)
    if not good.any():
        msg = "the fit's parameter samples are all non-finite; refit with --bootstrap"
        raise InputError(msg)
    return {k: v[good] for k, v in out.items()}


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
    """Resample each curve's draws to a common count, independently across curves (seeded).

    Every curve's draws are shuffled with its own random order: fits made with the same seed
    draw from the same standard-normal stream, so draw ``i`` of two groups would otherwise be
    strongly correlated, and a comparison between groups would look far more certain than it is.
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
        idx = rng.permutation(n) if c.n_draws == n else rng.choice(c.n_draws, n, replace=True)
        out.append({k: v[idx] for k, v in c.draws.items()})
    return out
