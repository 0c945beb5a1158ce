"""Correct-count tables of several models, and the pass@k comparison of each RL model with the base.

A :class:`PasskCounts` holds one count table (``problem_id, difficulty, n, c``, see
:mod:`rlscale.analysis.passk`) per model, base first: sampled from checkpoints
(:func:`rlscale.analysis.passk_eval.sample_counts`) or read from the CSV ``rlscale passk
--counts`` writes (:func:`read_counts`; columns ``model, problem_id, difficulty, n, c``).
:func:`compare_to_base` compares every other model with the base.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from rlscale.analysis.passk import COUNT_COLUMNS, PasskComparison, compare_passk
from rlscale.errors import input_error

CSV_COLUMNS: tuple[str, ...] = ("model", *COUNT_COLUMNS)


@dataclass
class PasskCounts:
    """Count tables per model label, base first.

    ``sources``: where each table came from (named in errors about it). ``info``: how the counts
    were made (the sampling options, or ``{"counts": path}`` for a CSV).
    """

    tables: dict[str, pd.DataFrame]
    sources: dict[str, str]
    info: dict[str, Any]

    @property
    def base(self) -> str:
        """The label of the base model (the first table)."""
        return next(iter(self.tables))

    def only(self, difficulties: Sequence[int]) -> PasskCounts:
        """The same counts, keeping only the rows of ``difficulties``."""
        tables = {m: t[t["difficulty"].isin(difficulties)] for m, t in self.tables.items()}
        return PasskCounts(tables=tables, sources=self.sources, info=self.info)

    def to_frame(self) -> pd.DataFrame:
        """All tables in one long frame with a ``model`` column (the CSV's columns)."""
        return pd.concat([t.assign(model=m) for m, t in self.tables.items()],
                         ignore_index=True)[list(CSV_COLUMNS)]


def read_counts(path: str | Path, *, base: str, rl: Sequence[str]) -> PasskCounts:
    """The tables of models ``base`` and ``rl`` (base first) from a CSV written by
    :func:`write_counts`. Raises :class:`~rlscale.errors.InputError` naming the file and the
    column when it cannot be read, has no ``model`` column or lacks one of the models."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise input_error(f"cannot read counts ({exc})", path=path,
                          expected="a CSV written by rlscale passk --counts") from exc
    if "model" not in table.columns:
        raise input_error("missing column 'model'", path=path, field="model",
                          expected="columns model, problem_id, difficulty, n, c")
    models = list(dict.fromkeys(table["model"].astype(str)))
    tables = {}
    for name in (base, *rl):
        if name not in models:
            raise input_error(f"no model {name!r}", path=path, field="model",
                              expected=f"one of {models}")
        tables[name] = table[table["model"].astype(str) == name].drop(columns="model")
    return PasskCounts(tables=tables, sources={m: f"{path} (model {m!r})" for m in tables},
                       info={"counts": path})


def write_counts(counts: PasskCounts, path: str | Path) -> None:
    """Write ``counts`` as one CSV (columns :data:`CSV_COLUMNS`), readable by :func:`read_counts`."""
    counts.to_frame().to_csv(path, index=False)


@dataclass
class PasskReport:
    """The outcome of :func:`compare_to_base`: ``comparisons`` holds ``(rl label, comparison)``
    pairs in the order of the counts; ``info`` is the counts' :attr:`PasskCounts.info`."""

    base: str
    info: dict[str, Any]
    comparisons: list[tuple[str, PasskComparison]]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (for ``--json``): ``{"base", **info, "comparisons": [{"rl", ...}]}``."""
        return {"base": self.base, **self.info, "comparisons": [
            {"rl": label, **cmp.to_dict()} for label, cmp in self.comparisons]}


def compare_to_base(counts: PasskCounts, *, n_boot: int = 1000, level: float = 0.95,
                    seed: int = 0) -> PasskReport:
    """:func:`~rlscale.analysis.passk.compare_passk` of every model but the base with the base
    (of the base with itself when it is the only model)."""
    base = counts.base
    comparisons = []
    for label in [m for m in counts.tables if m != base] or [base]:
        comparisons.append((label, compare_passk(counts.tables[base], counts.tables[label],
                                                 n_boot=n_boot, level=level, seed=seed,
                                                 base_source=counts.sources[base],
                                                 rl_source=counts.sources[label])))
    return PasskReport(base=base, info=counts.info, comparisons=comparisons)
