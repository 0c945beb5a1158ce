"""One forecast from fitted laws: a question, asked of every group, answered in one table.

A :class:`ForecastQuery` is one of four questions (:data:`MODES`): the reward at compute
budget(s), the compute to reach a reward, the compute to reach a fraction of the gain, or who
leads at a budget. :meth:`ForecastQuery.create` checks it and reads dollar budgets as compute;
:func:`run_forecast` answers it for the fits (:mod:`.budgets`, :mod:`.ranking`) and adds the cost
columns of its pricing (:func:`~rlscale.forecast.pricing.add_costs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from rlscale.errors import InputError
from rlscale.fit import FitResult
from rlscale.forecast.budgets import compute_for_fraction, compute_for_reward, reward_at
from rlscale.forecast.pricing import Pricing, add_costs
from rlscale.forecast.ranking import Ranking, rank_at

MODES: tuple[str, ...] = ("budget", "target", "ceiling_frac", "rank_at")
# the modes whose values are compute budgets, so may be given in dollars
USD_MODES: tuple[str, ...] = ("budget", "rank_at")


@dataclass(frozen=True)
class ForecastQuery:
    """What to forecast; build it with :meth:`create` to get the checks.

    ``mode`` is one of :data:`MODES`; the field of that name holds its value (``budgets``:
    compute budgets, ``rank_at``: one budget, both on the fits' compute axis). ``pricing``, when
    given, adds GPU-hour and dollar columns to the answer.
    """

    mode: str
    budgets: list[float] | None = None
    target: float | None = None
    ceiling_frac: float | None = None
    rank_at: float | None = None
    pricing: Pricing | None = None

    @classmethod
    def create(cls, *, budgets: Sequence[float] | None = None, target: float | None = None,
               ceiling_frac: float | None = None, rank_at: float | None = None,
               pricing: Pricing | None = None, usd_budget: bool = False) -> ForecastQuery:
        """Check that exactly one question is asked; with ``usd_budget``, ``budgets`` and
        ``rank_at`` are dollars, converted to compute with ``pricing``
        (:meth:`~rlscale.forecast.pricing.Pricing.x_from_usd`)."""
        chosen = [m for m, v in zip(MODES, (budgets, target, ceiling_frac, rank_at))
                  if v is not None]
        if len(chosen) != 1:
            msg = f"give exactly one of {', '.join(MODES)} (got {chosen or 'none'})"
            raise InputError(msg)
        xs = None if budgets is None else [float(v) for v in budgets]
        if usd_budget:
            if chosen[0] not in USD_MODES:
                msg = "--usd-budget applies to --budget and --rank-at only"
                raise InputError(msg)
            if pricing is None:
                msg = "budgets in dollars need a rate: pass --usd-per-gpu-hour"
                raise InputError(msg)
            if xs is not None:
                xs = [float(v) for v in pricing.x_from_usd(xs)]
            if rank_at is not None:
                rank_at = float(pricing.x_from_usd(rank_at))
        return cls(mode=chosen[0], budgets=xs, target=target, ceiling_frac=ceiling_frac,
                   rank_at=rank_at, pricing=pricing)


@dataclass
class Forecast:
    """The answer of :func:`run_forecast`.

    ``table``: one row per group (and budget), the columns of :func:`.budgets.reward_at`
    (``budget``, and ``rank_at`` with ``rank`` and ``p_best``), of :func:`.budgets.compute_for_reward`
    (``target``) or :func:`.budgets.compute_for_fraction` (``ceiling_frac``), plus the cost
    columns of the query's pricing. ``ranking``: the full :class:`~rlscale.forecast.ranking.Ranking`
    in ``rank_at`` mode, else ``None``.
    """

    metric: str
    x_axis: str
    level: float
    query: ForecastQuery
    table: pd.DataFrame
    ranking: Ranking | None = None

    @property
    def mode(self) -> str:
        return self.query.mode

    def to_dict(self) -> dict[str, Any]:
        """``{"metric", "x_axis", "level", "mode", "forecasts"}`` (``forecasts``: the table as a
        DataFrame), plus ``p_leader_leads``, ``crossovers`` (a DataFrame), ``skipped`` and
        ``unidentified`` (groups whose ceiling the data do not pin down) in ``rank_at`` mode. :func:`rlscale.text.records` makes the frames JSON-safe."""
        out: dict[str, Any] = {"metric": self.metric, "x_axis": self.x_axis, "level": self.level,
                               "mode": self.mode, "forecasts": self.table}
        if self.ranking is not None:
            out.update(p_leader_leads=self.ranking.p_leader_leads,
                       crossovers=self.ranking.crossovers, skipped=self.ranking.skipped,
                       unidentified=self.ranking.unidentified)
        return out


def run_forecast(fits: FitResult | Sequence[FitResult], query: ForecastQuery, *,
                 level: float = 0.9, seed: int = 0, forecast: str = "ensemble") -> Forecast:
    """Answer ``query`` for every fit (one metric and compute axis), with ``level`` intervals
    from the fits' joint draws (``seed`` for any resampling). ``forecast`` ("ensemble" or "law")
    chooses the reward-at-budget forecast (:func:`.budgets.reward_at`); compute-to-target and
    rankings come from the law's joint draws."""
    fits = [fits] if isinstance(fits, FitResult) else list(fits)
    if not fits:
        msg = "no fits to forecast from"
        raise InputError(msg)
    ranking = None
    if query.mode == "budget":
        df = reward_at(fits, query.budgets, level=level, seed=seed,  # type: ignore[arg-type]
                       forecast=forecast)
    elif query.mode == "target":
        df = compute_for_reward(fits, query.target, level=level, seed=seed)  # type: ignore[arg-type]
    elif query.mode == "ceiling_frac":
        df = compute_for_fraction(fits, query.ceiling_frac, level=level,  # type: ignore[arg-type]
                                  seed=seed)
    else:
        ranking = rank_at(fits, query.rank_at, level=level, seed=seed)  # type: ignore[arg-type]
        df = ranking.table
    return Forecast(metric=fits[0].metric, x_axis=fits[0].x, level=level, query=query,
                    table=add_costs(df, query.pricing), ranking=ranking)
