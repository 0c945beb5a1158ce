"""Compute-performance laws as data: a function, its parameters, starting values, bounds, inverse.

The default is the ScaleRL sigmoid (Khatri et al. 2025, arXiv 2510.13786, Eq. 1)::

    R(C) = R0 + (A - R0) / (1 + (C_mid / C)**B)

The others exist for comparison and model selection (``rlscale fit --law all``):

* ``power``: saturating power law ``A - D * C**-B``; ScaleRL shows it overestimates A.
* ``exp``: exponential saturation ``A - (A - R0) * exp(-C / C_s)``.
* ``loglinear``: ``a + b * ln C``, a non-saturating baseline (no ceiling).

Every ``func`` is vectorised: ``x`` and each parameter may be numpy arrays that broadcast
(the batched solver evaluates ``(R, 1)`` parameter columns against ``(N,)`` or ``(R, N)`` x).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rlscale.errors import input_error
from rlscale.fit.metric_kind import level_bounds

Params = dict[str, float]
Bounds = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Law:
    """One functional form ``y = func(x, **params)``.

    ``log_params`` are positive parameters the solvers move in log space (scales such as C_mid);
    ``positive_x`` laws cannot use points at x <= 0 (the fit drops them with a warning);
    ``starts(x, y)`` gives several starting points for the multi-start fit (default: ``guess``
    plus perturbations of the ``log_params``); ``grad(x, **params)``, when given, returns the
    partial derivatives {name: array} (the solvers use finite differences otherwise).
    """

    name: str
    param_names: tuple[str, ...]
    func: Callable[..., np.ndarray]
    inverse: Callable[..., np.ndarray] | None
    guess: Callable[[np.ndarray, np.ndarray], Params]
    bounds: Callable[[np.ndarray, np.ndarray], Bounds]
    description: str
    log_params: tuple[str, ...] = ()
    positive_x: bool = False
    ceiling: str | None = None  # the parameter that is the asymptote, if any
    baseline: str | None = None  # the parameter that is the reward at C -> 0, if any
    extra_starts: Callable[[Params], list[Params]] | None = field(default=None, repr=False)
    grad: Callable[..., dict[str, np.ndarray]] | None = field(default=None, repr=False)

    def __call__(self, x: np.ndarray, **params: float) -> np.ndarray:
        return self.func(x, **params)

    def starts(self, x: np.ndarray, y: np.ndarray) -> list[Params]:
        """Starting points: ``guess(x, y)`` first, then perturbations that help escape bad basins."""
        g = self.guess(x, y)
        out = [g]
        if self.extra_starts is not None:
            out += self.extra_starts(g)
        return out


# ---------------------------------------------------------------------------- helpers --------
def _level_bounds(y: np.ndarray) -> tuple[float, float]:
    """Bounds for a reward level (A, R0) when only the values are known: [0, 1] when every value
    is exactly 0 or 1, else a wide band around y. The fit passes the metric's name too
    (:func:`rlscale.fit.metric_kind.level_bounds`, through :func:`rlscale.fit.batch.space_for`)."""
    return level_bounds(None, y)


def _x_bounds(x: np.ndarray) -> tuple[float, float]:
    pos = x[x > 0]
    if pos.size == 0:
        return (1e-12, 1e12)
    return (float(pos.min()) / 1e3, float(pos.max()) * 1e3)


def _ends(x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Mean y of the first and last ~15% of points (by x), and x, y sorted by x."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    k = max(1, int(round(0.15 * xs.size)))
    return float(ys[:k].mean()), float(ys[-k:].mean()), xs, ys


def _crossing(xs: np.ndarray, ys: np.ndarray, level: float) -> float:
    """First x where a running mean of y passes ``level`` (geometric middle of x if never)."""
    k = max(1, xs.size // 10)
    smooth = np.convolve(ys, np.ones(k) / k, mode="same") if xs.size > k else ys
    rising = smooth[-1] >= smooth[0]
    hit = np.flatnonzero(smooth >= level) if rising else np.flatnonzero(smooth <= level)
    pos = xs[xs > 0]
    if hit.size and xs[hit[0]] > 0:
        return float(xs[hit[0]])
    return float(np.sqrt(pos.min() * pos.max())) if pos.size else 1.0


def _clip(value: float, bound: tuple[float, float]) -> float:
    lo, hi = bound
    eps = 1e-6 * (hi - lo)
    return float(min(max(value, lo + eps), hi - eps))


# ---------------------------------------------------------------------------- sigmoid --------
def sigmoid(x: np.ndarray, A: float, B: float, C_mid: float, R0: float) -> np.ndarray:
    """ScaleRL Eq. 1: R0 + (A - R0) / (1 + (C_mid / x)**B). At x = 0 it returns R0."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = np.exp(B * (np.log(C_mid) - np.log(x)))
        return R0 + (A - R0) / (1.0 + ratio)


def sigmoid_grad(x: np.ndarray, A: float, B: float, C_mid: float, R0: float
                 ) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_ratio = np.log(C_mid) - np.log(x)
        s = 1.0 / (1.0 + np.exp(B * log_ratio))
        ds = np.where(s > 0, s * (1.0 - s), 0.0)  # -d s / d(B log_ratio); 0 at x = 0
        gain = A - R0
        return {"A": s, "R0": 1.0 - s,
                "B": np.where(s > 0, -gain * ds * log_ratio, 0.0),
                "C_mid": -gain * ds * B / C_mid}


def sigmoid_inverse(y: np.ndarray, A: float, B: float, C_mid: float, R0: float) -> np.ndarray:
    """Compute at which the sigmoid reaches ``y``; NaN where ``y`` is not strictly between R0 and A."""
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        frac = (y - R0) / (A - y)
        out = C_mid * frac ** (1.0 / B)
    inside = (frac > 0) & np.isfinite(frac)
    return np.where(inside, out, np.nan)


def _sigmoid_guess(x: np.ndarray, y: np.ndarray) -> Params:
    first, last, xs, ys = _ends(x, y)
    lb = _level_bounds(y)
    gain = last - first
    A = _clip(last + 0.1 * gain, lb)
    R0 = _clip(first - 0.05 * gain, lb)
    c_mid = _crossing(xs, ys, (A + R0) / 2)
    return {"A": A, "B": 1.5, "C_mid": _clip(c_mid, _x_bounds(x)), "R0": R0}


def _sigmoid_bounds(x: np.ndarray, y: np.ndarray) -> Bounds:
    lb = _level_bounds(y)
    return {"A": lb, "B": (0.05, 20.0), "C_mid": _x_bounds(x), "R0": lb}


def _sigmoid_extra(g: Params) -> list[Params]:
    out = []
    for cm, b in ((0.3, 1.0), (3.0, 1.0), (1.0, 3.0), (3.0, 2.5)):
        out.append({**g, "C_mid": g["C_mid"] * cm, "B": b})
    return out


# ---------------------------------------------------------------------------- power ----------
def power(x: np.ndarray, A: float, B: float, D: float) -> np.ndarray:
    """Saturating power law A - D * x**-B (diverges to -inf at x = 0)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return A - D * np.exp(-B * np.log(x))


def power_grad(x: np.ndarray, A: float, B: float, D: float) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        lx = np.log(x)
        xb = np.exp(-B * lx)
        return {"A": np.ones_like(xb * A), "B": D * xb * lx, "D": -xb + 0 * D}


def power_inverse(y: np.ndarray, A: float, B: float, D: float) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = (D / (A - y)) ** (1.0 / B)
    return np.where((A - y > 0) & np.isfinite(out), out, np.nan)


def _power_guess(x: np.ndarray, y: np.ndarray) -> Params:
    first, last, xs, ys = _ends(x, y)
    gain = last - first
    A = _clip(last + 0.2 * abs(gain) + 1e-6, _level_bounds(y))
    keep = (xs > 0) & (A - ys > 0)
    B = 0.5
    if keep.sum() >= 3:
        slope, icpt = np.polyfit(np.log(xs[keep]), np.log(A - ys[keep]), 1)
        B = float(np.clip(-slope, 0.05, 5.0))
    pos = xs[xs > 0]
    c_ref = float(np.sqrt(pos.min() * pos.max())) if pos.size else 1.0
    D = max(abs(gain), 1e-6) * c_ref**B / 2
    return {"A": A, "B": B, "D": float(np.clip(D, 1e-30, 1e30))}


def _power_bounds(x: np.ndarray, y: np.ndarray) -> Bounds:
    return {"A": _level_bounds(y), "B": (0.01, 10.0), "D": (1e-30, 1e30)}


def _power_extra(g: Params) -> list[Params]:
    return [{**g, "B": 0.2, "D": g["D"] ** (0.2 / g["B"]) if g["D"] > 0 else g["D"]},
            {**g, "B": 1.0, "D": g["D"] ** (1.0 / g["B"]) if g["D"] > 0 else g["D"]}]


# ---------------------------------------------------------------------------- exp ------------
def exp_sat(x: np.ndarray, A: float, C_s: float, R0: float) -> np.ndarray:
    """Exponential saturation A - (A - R0) * exp(-x / C_s)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        return A - (A - R0) * np.exp(-x / C_s)


def exp_grad(x: np.ndarray, A: float, C_s: float, R0: float) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-x / C_s)
        return {"A": 1.0 - e + 0 * A, "R0": e + 0 * R0, "C_s": -(A - R0) * e * x / C_s**2}


def exp_inverse(y: np.ndarray, A: float, C_s: float, R0: float) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (A - y) / (A - R0)
        out = -C_s * np.log(frac)
    return np.where((frac > 0) & (frac <= 1), out, np.nan)


def _exp_guess(x: np.ndarray, y: np.ndarray) -> Params:
    first, last, xs, ys = _ends(x, y)
    lb = _level_bounds(y)
    gain = last - first
    A = _clip(last + 0.05 * gain, lb)
    R0 = _clip(first - 0.05 * gain, lb)
    c63 = _crossing(xs, ys, R0 + 0.63 * (A - R0))
    return {"A": A, "C_s": _clip(c63, _x_bounds(x)), "R0": R0}


def _exp_bounds(x: np.ndarray, y: np.ndarray) -> Bounds:
    lb = _level_bounds(y)
    return {"A": lb, "C_s": _x_bounds(x), "R0": lb}


def _exp_extra(g: Params) -> list[Params]:
    return [{**g, "C_s": g["C_s"] * 0.3}, {**g, "C_s": g["C_s"] * 3.0}]


# ---------------------------------------------------------------------------- loglinear ------
def loglinear(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """a + b * ln x: no ceiling; a baseline that says 'the curve has not bent yet'."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return a + b * np.log(x)


def loglinear_grad(x: np.ndarray, a: float, b: float) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.log(x)
        return {"a": np.ones_like(lx) + 0 * a + 0 * b, "b": lx + 0 * a + 0 * b}


def loglinear_inverse(y: np.ndarray, a: float, b: float) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.exp((y - a) / b)
    return np.where(np.isfinite(out) & (b != 0), out, np.nan)


def _loglinear_guess(x: np.ndarray, y: np.ndarray) -> Params:
    keep = x > 0
    if keep.sum() >= 2 and np.ptp(np.log(x[keep])) > 0:
        b, a = np.polyfit(np.log(x[keep]), y[keep], 1)
        return {"a": float(a), "b": float(b)}
    return {"a": float(np.mean(y)), "b": 0.0}


def _loglinear_bounds(x: np.ndarray, y: np.ndarray) -> Bounds:
    return {"a": (-np.inf, np.inf), "b": (-np.inf, np.inf)}


# ---------------------------------------------------------------------------- registry -------
LAWS: dict[str, Law] = {
    "sigmoid": Law(
        name="sigmoid", param_names=("A", "B", "C_mid", "R0"), func=sigmoid,
        inverse=sigmoid_inverse, guess=_sigmoid_guess, bounds=_sigmoid_bounds,
        description="ScaleRL sigmoid R0 + (A - R0) / (1 + (C_mid / C)^B)",
        log_params=("C_mid",), ceiling="A", baseline="R0", extra_starts=_sigmoid_extra,
        grad=sigmoid_grad,
    ),
    "power": Law(
        name="power", param_names=("A", "B", "D"), func=power, inverse=power_inverse,
        guess=_power_guess, bounds=_power_bounds,
        description="saturating power law A - D * C^-B", log_params=("D",), positive_x=True,
        ceiling="A", extra_starts=_power_extra, grad=power_grad,
    ),
    "exp": Law(
        name="exp", param_names=("A", "C_s", "R0"), func=exp_sat, inverse=exp_inverse,
        guess=_exp_guess, bounds=_exp_bounds,
        description="exponential saturation A - (A - R0) * exp(-C / C_s)",
        log_params=("C_s",), ceiling="A", baseline="R0", extra_starts=_exp_extra,
        grad=exp_grad,
    ),
    "loglinear": Law(
        name="loglinear", param_names=("a", "b"), func=loglinear, inverse=loglinear_inverse,
        guess=_loglinear_guess, bounds=_loglinear_bounds,
        description="log-linear a + b * ln C (no ceiling)", positive_x=True,
        grad=loglinear_grad,
    ),
}


def get_law(name: str | Law) -> Law:
    """The :class:`Law` called ``name`` (one of :data:`LAWS`); a Law passes through unchanged."""
    if isinstance(name, Law):
        return name
    law = LAWS.get(name)
    if law is None:
        raise input_error(f"unknown law {name!r}", field="law", expected=f"one of {sorted(LAWS)}")
    return law
