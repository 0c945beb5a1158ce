"""What kind of metric a curve is, from its name and values: a pass rate? better when lower?

Two facts the fit and the forecasts need and that the numbers alone do not tell:

* **bounded in [0, 1]**: a pass rate, accuracy or mean reward of a verifiable task. Only then do
  the levels A and R0 get the bounds [0, 1], and a forecast interval outside them is clipped. A
  metric is one when its name says so (:data:`PASS_RATE_WORDS`, ``pass@k``, ``mean@k``...) and its
  values lie in [0, 1], or when every value is exactly 0 or 1. Values that merely happen to lie
  in [0, 1] (a loss of 0.9, a DPO reward margin) are not enough.
* **direction**: -1 for metrics that improve by falling (losses, perplexities, error rates:
  :data:`LOWER_WORDS`), else +1. The laws fit either direction (the sigmoid with A < R0); the
  checks and the verdict read "improving" in this direction.
"""

from __future__ import annotations

import re

import numpy as np

# name words of a pass rate (matched against the words of the name, split at / _ - . and spaces)
PASS_RATE_WORDS = frozenset({"reward", "rewards", "accuracy", "accuracies", "acc", "score",
                             "success", "correct", "solved", "winrate", "pass", "passrate"})
PASS_RATE_PHRASES = ("win_rate", "pass_rate", "success_rate", "solve_rate", "exact_match")
K_METRIC = re.compile(r"^(pass|mean|maj|best|cons)@\d+$")
# words that make a name not a pass rate even beside "reward" (TRL's DPO rewards/margins ...)
NOT_RATE_WORDS = frozenset({"margin", "margins", "chosen", "rejected", "loss", "kl", "std",
                            "logps", "logits"})
# words of a metric that improves by falling
LOWER_WORDS = frozenset({"loss", "losses", "perplexity", "ppl", "nll", "error", "err", "mse",
                         "rmse", "mae", "wer", "cer"})


def _words(metric: str | None) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9@]+", str(metric or "").lower()) if w]


def pass_rate_name(metric: str | None) -> bool:
    """True when the name reads as a pass rate (reward, accuracy, pass@k, mean@k, score, ...)."""
    words = _words(metric)
    if any(w in NOT_RATE_WORDS or w in LOWER_WORDS for w in words):
        return False
    low = str(metric or "").lower()
    return (any(w in PASS_RATE_WORDS or K_METRIC.match(w) for w in words)
            or any(p in low for p in PASS_RATE_PHRASES))


def is_pass_rate(metric: str | None, y: np.ndarray) -> bool:
    """A pass rate: a pass-rate name with values in [0, 1], or values that are all exactly 0/1."""
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    if y.size == 0:
        return False
    if np.all((y == 0.0) | (y == 1.0)):
        return True
    return pass_rate_name(metric) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def value_range(metric: str | None, y: np.ndarray) -> tuple[float, float] | None:
    """The metric's possible range, (0, 1) for a pass rate, else None (unbounded)."""
    return (0.0, 1.0) if is_pass_rate(metric, y) else None


def direction(metric: str | None) -> int:
    """-1 when the metric improves by falling (loss, perplexity, error ...), else +1."""
    return -1 if any(w in LOWER_WORDS for w in _words(metric)) else 1


def level_bounds(metric: str | None, y: np.ndarray) -> tuple[float, float]:
    """Bounds for a level parameter (A, R0): [0, 1] for a pass rate, else a wide band around y
    (three times the observed range beyond each end)."""
    if is_pass_rate(metric, y):
        return (0.0, 1.0)
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    span = max(hi - lo, 1e-9, 1e-3 * max(abs(lo), abs(hi)))
    return (lo - 3 * span, hi + 3 * span)
