"""Which recipe wins at a budget, how sure that is, and where one recipe overtakes another.

Uncertainty comes from each fit's joint parameter draws; draws of different groups are taken as
independent (they were fitted to different runs), and resampled to a common count with a seed.
"Leads" compares mean curves (the expected reward of each recipe), not single noisy runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from rlscale.errors import InputError
from rlscale.forecast.budgets import UNIDENTIFIED, reward_at
from rlscale.forecast.curve import Curve, align_draws, as_fit_list, curve
from rlscale.forecast.roots import check_level, crossing_points, grid_roots, interval
from rlscale.text import group_label, records

CROSSOVER_COLUMNS = ("group_a", "group_b", "x", "x_lower", "x_upper", "leader_before",
                     "leader_after", "p_cross")


@dataclass
class Ranking:
    """Result of :func:`rank_at`.

    ``table``: one row per group, best first: ``rank``, ``group``, the :func:`reward_at` columns at
    ``x``, and ``p_best`` (share of joint draws in which this group's mean curve is highest at
    ``x``). ``p_leader_leads`` is ``p_best`` of the top row. ``crossovers``: see :func:`crossovers`.
    """

    x: float
    level: float
    table: pd.DataFrame
    p_leader_leads: float
    crossovers: pd.DataFrame
    skipped: list[str]  # labels of groups whose fit failed (ok=False), left out of the ranking
    # labels of ranked groups whose fit cannot identify its ceiling (see UNIDENTIFIED): the
    # ranking and p_leader_leads then rest on an extrapolated A
    unidentified: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x, "level": self.level, "p_leader_leads": self.p_leader_leads,
                "ranking": records(self.table), "crossovers": records(self.crossovers),
                "skipped": list(self.skipped), "unidentified": list(self.unidentified)}


def rank_at(fits: Any, x: float, *, level: float | None = None, higher_is_better: bool = True,
            x_range: tuple[float, float] | None = None, seed: int = 0) -> Ranking:
    """Rank groups by predicted mean reward at compute ``x`` (> 0, on the fits' x axis).

    Returns a :class:`Ranking` with the probability that the leader really leads (independent
    joint draws across groups) and the crossovers between every pair within ``x_range``
    (default: see :func:`crossovers`). Needs at least two fitted groups.
    """
    all_fits = as_fit_list(fits)
    items = [f for f in all_fits if f.ok]
    skipped = [group_label(f.group) for f in all_fits if not f.ok]
    if len(items) < 2:
        msg = (f"ranking needs at least two fitted groups, got {len(items)}"
               + (f" (not fitted: {', '.join(skipped)})" if skipped else "") + "; group with --by")
        raise InputError(msg)
    _same_axis(items)
    lvl = check_level(items[0].level if level is None else level)
    table = reward_at(items, [x], level=lvl)
    curves = [curve(f, seed=seed) for f in items]
    draws = align_draws(curves, seed=seed)
    at_x = np.stack([np.asarray(c.law.func(np.array(float(x)), **d), dtype=float)
                     for c, d in zip(curves, draws)])  # (G, S)
    at_x = np.where(np.isfinite(at_x), at_x, -np.inf if higher_is_better else np.inf)
    best = np.argmax(at_x, axis=0) if higher_is_better else np.argmin(at_x, axis=0)
    table["p_best"] = np.bincount(best, minlength=len(curves)) / best.size
    table = table.sort_values("mean", ascending=not higher_is_better, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)
    cross = crossovers(items, level=lvl, x_range=x_range, higher_is_better=higher_is_better,
                       seed=seed)
    unidentified = [group_label(f.group) for f in items if UNIDENTIFIED & set(f.warning_codes)]
    return Ranking(x=float(x), level=lvl, table=table, p_leader_leads=float(table["p_best"].iloc[0]),
                   crossovers=cross, skipped=skipped, unidentified=unidentified)


def crossovers(fits: Any, *, level: float | None = None, x_range: tuple[float, float] | None = None,
               higher_is_better: bool = True, grid: int = 400, seed: int = 0) -> pd.DataFrame:
    """Budgets where one group's mean curve overtakes another's, for every pair of groups.

    ``x_range``: where to look (default: from the smallest fitted x / 10 to the largest x * 1000,
    i.e. the data plus three decades of extrapolation). Columns :data:`CROSSOVER_COLUMNS`:
    ``x`` where the best-fit curves cross, ``leader_before``/``leader_after`` the group label on
    top below/above ``x``, ``x_lower``/``x_upper`` an interval over joint draws (each draw pair's
    crossing nearest to ``x``; a draw pair that does not cross in range counts as crossing below
    or above it, and a bound that falls there is ``0``/``inf``, i.e. "outside the range"), and
    ``p_cross`` the share of draw pairs that cross inside ``x_range`` at all.
    """
    items = [f for f in as_fit_list(fits) if f.ok]
    _same_axis(items)
    if not items:
        return pd.DataFrame(columns=list(CROSSOVER_COLUMNS))
    lvl = check_level(items[0].level if level is None else level)
    lo, hi = x_range if x_range is not None else crossover_range(items)
    if not 0 < lo < hi:
        msg = f"crossover range must satisfy 0 < low < high, got {(lo, hi)}"
        raise InputError(msg)
    curves = [curve(f, seed=seed) for f in items]
    draws = align_draws(curves, seed=seed)
    rows = []
    for i, j in combinations(range(len(curves)), 2):
        rows += pair_crossovers(curves[i], curves[j], draws[i], draws[j], x_range=(lo, hi),
                                level=lvl, higher_is_better=higher_is_better, grid=grid)
    return pd.DataFrame(rows, columns=list(CROSSOVER_COLUMNS))


def pair_crossovers(a: Curve, b: Curve, draws_a: dict[str, np.ndarray],
                    draws_b: dict[str, np.ndarray], *, x_range: tuple[float, float],
                    level: float, higher_is_better: bool = True,
                    grid: int = 400) -> list[dict[str, Any]]:
    """Where curve ``a`` and curve ``b`` cross in ``x_range``: one row of
    :data:`CROSSOVER_COLUMNS` per crossing of the best-fit curves, its interval over the draw
    pairs (``draws_a[k][s]`` with ``draws_b[k][s]``, equal counts; see :func:`crossovers`)."""
    lo, hi = x_range
    u = np.linspace(np.log10(lo), np.log10(hi), grid)
    points = crossing_points(lambda v: float(a.mean(v)), lambda v: float(b.mean(v)),
                             x_range=(lo, hi), grid=grid)
    d_draws = (_on_grid(a, draws_a, u) - _on_grid(b, draws_b, u))  # (S, G)
    mask, roots = grid_roots(u, d_draws)
    p_cross = float(np.mean(mask.any(axis=1)))
    rows = []
    for x0 in points:
        after = float(a.mean(x0 * 1.01)) - float(b.mean(x0 * 1.01))
        x_lo, x_hi = _crossing_interval(d_draws, mask, roots, np.log10(x0), after, level)
        a_after = (after > 0) == higher_is_better
        rows.append({"group_a": a.label, "group_b": b.label, "x": x0, "x_lower": x_lo,
                     "x_upper": x_hi, "leader_before": b.label if a_after else a.label,
                     "leader_after": a.label if a_after else b.label, "p_cross": p_cross})
    return rows


def _crossing_interval(d_draws: np.ndarray, mask: np.ndarray, roots: np.ndarray, u0: float,
                       after_sign: float, level: float) -> tuple[float, float]:
    """Interval of the crossing nearest ``u0`` (log10 x) over draw pairs; see :func:`crossovers`."""
    dist = np.where(mask, np.abs(roots - u0), np.inf)
    nearest = np.take_along_axis(roots, np.argmin(dist, axis=1)[:, None], axis=1)[:, 0]
    crossed = mask.any(axis=1)
    # no crossing in range: the crossing lies below it if the draw's order is already "after"
    with np.errstate(all="ignore"):
        order = np.sign(np.nanmedian(np.where(np.isfinite(d_draws), d_draws, np.nan), axis=1))
    outside = np.where(order == np.sign(after_sign), -np.inf, np.inf)
    located = np.where(crossed, nearest, outside)
    lo, hi = interval(located, level)
    return float(10.0 ** lo), float(10.0 ** hi)


def _on_grid(c: Curve, draws: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
    cols = {k: v[:, None] for k, v in draws.items()}
    with np.errstate(all="ignore"):
        return np.asarray(c.law.func(10.0 ** u[None, :], **cols), dtype=float)


def crossover_range(items: list[Any]) -> tuple[float, float]:
    """Where :func:`crossovers` looks by default: the fits' smallest x / 10 to largest x * 1000."""
    xs = np.concatenate([np.asarray(f.data["x"], dtype=float) for f in items])
    xs = xs[np.isfinite(xs) & (xs > 0)]
    if xs.size == 0:
        msg = "fits carry no positive compute values; pass x_range=(low, high)"
        raise InputError(msg)
    return float(xs.min()) / 10.0, float(xs.max()) * 1000.0


def _same_axis(items: list[Any]) -> None:
    axes = {(f.x, f.metric) for f in items}
    if len(axes) > 1:
        msg = f"cannot compare fits on different metrics/compute axes: {sorted(axes)}"
        raise InputError(msg)
