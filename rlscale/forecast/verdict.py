"""Has my run plateaued? A verdict per fit: still rising / plateaued / declining, the gain left.

:func:`verdict` answers from two independent readings of one :class:`rlscale.fit.FitResult`:

* the **recent trend** of the points themselves (:func:`rlscale.fit.trend.recent_trend`): a
  straight line in log-compute through the last 30% of the points, with an interval widened
  for autocorrelated residuals. It needs no law, so it catches what a saturating law cannot
  show: a curve that falls;
* the **law**: the gain still expected up to the ceiling, ``A`` minus the fitted level at the
  last observed compute, and the compute at which half of that remaining gain is reached, each
  with an interval over the fit's joint parameter draws (the draws behind every forecast).

The rule (``improving`` is the metric's good direction: up, or down for a loss,
:func:`rlscale.fit.metric_kind.direction`):

1. **declining** when the last stretch moves the wrong way beyond its interval by more than a
   small amount ``tol`` (a real curve can fall; the law would not say so);
2. **plateaued** when even the upper end of the remaining gain's interval is below ``tol``, or
   when the last stretch is indistinguishable from flat and the law's best estimate of the
   remaining gain is below ``tol`` (the data show no rise and the law expects none), or its
   interval reaches below ``tol`` and the fit says the points never improved
   (:data:`NO_EVIDENCE`: a sigmoid fitted to flat noise can put a step to any ceiling just past
   the data, so its best estimate is then no evidence);
3. **still rising** otherwise. When the last stretch is flat but the law expects more, the
   reason says that the gain's interval reaches below ``tol``.

Rule 2 once read "the remaining gain's interval reaches below ``tol``" (the law *cannot promise*
a rise). On the 39 real curves of ``benchmarks/verdicts.py`` that called 52 of 117 cut curves
plateaued, and 18 of those rose by more than their wobble afterwards. With the best estimate,
30 are called plateaued and 6 of those rose. The share right went from 0.51 to 0.58, and the
simulated curves are unchanged (docs/fit.md, *Has it plateaued?*).

``tol`` is the larger of 5% of the curve's observed range (its running mean's range) and the sd
of the last stretch around its line: a gain smaller than that is within what the curve already
wobbles by. Words for a metric better when lower: still falling / plateaued / rising.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from rlscale.fit.metric_kind import direction
from rlscale.fit.trend import Trend, recent_trend
from rlscale.forecast.curve import curve
from rlscale.forecast.roots import interval
from rlscale.text import group_label, jsonable, num
from rlscale.text import interval as interval_text

G = ".3g"  # numbers in the verdict line: three significant digits
TOL_SHARE = 0.05  # a remaining gain under 5% of the observed range counts as small
# fit warnings that say the points never improved: a law fitted to them can still put a step to
# any ceiling just past the data, and its best estimate of what is left is then no evidence
NO_EVIDENCE = frozenset({"not_increasing", "not_decreasing"})
WORDS = {1: {"improving": "still rising", "flat": "plateaued", "worsening": "declining"},
         -1: {"improving": "still falling", "flat": "plateaued", "worsening": "rising"}}


@dataclass
class Verdict:
    """One fit's verdict. ``verdict`` is the word a user reads (see the module docstring);
    ``trend`` the same as improving / flat / worsening (unknown without enough points).

    ``remaining_gain`` (+ ``_lower``/``_upper``): the improvement still expected up to the
    ceiling, ``direction * (A - level_now)``, where ``level_now`` is the fitted level at the last
    observed compute ``x_last``; NaN for a law without a ceiling. ``half_gain_x`` (+ interval):
    the compute at which half of that remaining gain is reached (``inf``: never, for the draws
    whose ceiling is not beyond the current level). ``recent_change`` (+ interval): the change
    of the line through the last stretch of points, from ``recent_from`` to ``x_last``.
    """

    group: dict[str, Any]
    metric: str
    x: str
    verdict: str
    trend: str
    reason: str
    direction: int
    level: float
    x_last: float
    level_now: float
    recent_level: float
    ceiling: float
    ceiling_lower: float
    ceiling_upper: float
    remaining_gain: float
    remaining_gain_lower: float
    remaining_gain_upper: float
    half_gain_x: float
    half_gain_x_lower: float
    half_gain_x_upper: float
    recent_from: float
    recent_change: float
    recent_change_lower: float
    recent_change_upper: float
    tol: float

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()}

    def text(self) -> str:
        """One line: the verdict, the remaining gain and the compute for half of it."""
        label = group_label(self.group, sep=", ", empty="(all points)")
        out = f"{label}: {self.verdict}"
        if math.isfinite(self.remaining_gain):
            out += (f"; gain left to the ceiling {_g(self.remaining_gain)} "
                    f"{interval_text(self.remaining_gain_lower, self.remaining_gain_upper, G)}")
            if self.trend == "improving":
                out += (f", half of it by {self.x} {_g(self.half_gain_x)} "
                        f"{interval_text(self.half_gain_x_lower, self.half_gain_x_upper, G)}")
        return f"{out} ({self.reason})"


def verdict(fit: Any, *, level: float | None = None, seed: int = 0) -> Verdict:
    """The :class:`Verdict` of one fit (``level``: of its intervals, default the fit's)."""
    lvl = float(fit.level if level is None else level)
    dirn = direction(fit.metric)
    base = dict(group=dict(fit.group or {}), metric=fit.metric, x=fit.x, direction=dirn,
                level=lvl)
    data = fit.data if fit.ok else None
    if data is None or not len(data):
        return _unknown(base, "not fitted")
    xs, ys = data["x"].to_numpy(float), data["y"].to_numpy(float)
    tr = recent_trend(xs, ys, data["run_id"].to_numpy(), level=lvl)
    x_last = float(np.nanmax(xs))
    if tr is None:
        return _unknown({**base, "x_last": x_last}, "too few points for a recent trend")
    tol = wobble(tr)
    c = curve(fit, seed=seed)
    level_now = float(c.mean(x_last))
    gain = _remaining(c, x_last, dirn, lvl)
    moving = dirn * tr.significant()  # +1 improving, -1 worsening, 0 flat (in the good direction)
    change = dirn * tr.change
    g, g_lo, g_hi = gain["remaining_gain"], gain["remaining_gain_lower"], \
        gain["remaining_gain_upper"]
    has_gain = math.isfinite(g)
    if moving < 0 and -change > tol:
        trend = "worsening"
        why = f"last {tr.n} points {'fall' if dirn > 0 else 'rise'} by {_g(abs(tr.change))}"
    elif has_gain and g_hi < tol:
        trend, why = "flat", (f"at most {_g(max(g_hi, 0.0))} left, within the curve's "
                              f"wobble {_g(tol)}")
    elif moving <= 0 and (not has_gain or g < tol
                          or (g_lo < tol and NO_EVIDENCE & set(fit.warning_codes))):
        trend, why = "flat", f"last {tr.n} points flat within their interval"
    else:
        trend = "improving"
        why = (f"last {tr.n} points still {'rise' if dirn > 0 else 'fall'} by "
               f"{_g(abs(tr.change))}" if moving > 0
               else f"the law expects more than the curve's wobble {_g(tol)}"
               + (f", though the last {tr.n} points are flat within their interval and the "
                  "gain's interval reaches below it" if g_lo < tol else ""))
    return Verdict(**base, verdict=WORDS[dirn][trend], trend=trend, reason=why, x_last=x_last,
                   level_now=level_now, recent_level=tr.end_level, **gain,
                   **_trend_fields(tr), tol=tol)


def wobble(tr: Trend) -> float:
    """What a curve already wobbles by, ``tol``: the larger of :data:`TOL_SHARE` of its observed
    range and the sd of its last stretch around its line."""
    return max(TOL_SHARE * tr.spread, tr.noise)


def verdicts(fits: Sequence[Any] | Any, *, level: float | None = None,
             seed: int = 0) -> list[Verdict]:
    """:func:`verdict` of every fit (a FitResult or a list of them)."""
    items = [fits] if hasattr(fits, "params") else list(fits)
    return [verdict(f, level=level, seed=seed) for f in items]


def _remaining(c: Any, x_last: float, dirn: int, level: float) -> dict[str, float]:
    """Remaining gain to the ceiling and compute for half of it, point value and interval."""
    nan = math.nan
    out = dict(ceiling=nan, ceiling_lower=nan, ceiling_upper=nan, remaining_gain=nan,
               remaining_gain_lower=nan, remaining_gain_upper=nan, half_gain_x=nan,
               half_gain_x_lower=nan, half_gain_x_upper=nan)
    name = c.law.ceiling
    if name is None:
        return out
    A, now = c.point[name], float(c.mean(x_last))
    out["ceiling"], out["remaining_gain"] = A, dirn * (A - now)
    out["half_gain_x"] = float(c.inverse(np.array(now + (A - now) / 2), c.point))
    if c.n_draws:
        a_draws = np.asarray(c.draws[name], dtype=float)
        now_draws = np.asarray(c.mean_draws(x_last), dtype=float)
        lo, hi = interval(a_draws, level)
        out["ceiling_lower"], out["ceiling_upper"] = float(lo), float(hi)
        lo, hi = interval(dirn * (a_draws - now_draws), level)
        out["remaining_gain_lower"], out["remaining_gain_upper"] = float(lo), float(hi)
        half = c.inverse(now_draws + (a_draws - now_draws) / 2, c.draws)
        lo, hi = interval(np.where(np.isfinite(now_draws), half, np.nan), level)
        out["half_gain_x_lower"], out["half_gain_x_upper"] = float(lo), float(hi)
    return out


def _g(v: float) -> str:
    return num(v, G)


def _trend_fields(tr: Trend) -> dict[str, float]:
    return dict(recent_from=tr.x_start, recent_change=tr.change,
                recent_change_lower=tr.change_lower, recent_change_upper=tr.change_upper)


def _unknown(base: dict[str, Any], why: str) -> Verdict:
    nan = math.nan
    fields = {k: nan for k in ("x_last", "level_now", "recent_level", "ceiling", "ceiling_lower",
                               "ceiling_upper", "remaining_gain", "remaining_gain_lower",
                               "remaining_gain_upper", "half_gain_x", "half_gain_x_lower",
                               "half_gain_x_upper", "recent_from", "recent_change",
                               "recent_change_lower", "recent_change_upper", "tol")}
    fields.update({k: v for k, v in base.items() if k in fields})
    rest = {k: v for k, v in base.items() if k not in fields}
    return Verdict(**rest, **fields, verdict="unknown", trend="unknown", reason=why)
