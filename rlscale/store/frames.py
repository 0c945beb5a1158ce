"""The pandas side of the store: points as DataFrames, and the incremental writer of a live run."""

from __future__ import annotations

import os
from typing import Any, Iterable

import pandas as pd

from rlscale.errors import InputError, StoreError
from rlscale.store import layout
from rlscale.store.atomic import write_json, write_parquet
from rlscale.store.liveness import writer_info
from rlscale.store.runs import Store, as_store
from rlscale.store.schema import COMPUTE_AXES, POINT_COLUMNS, POINTS_SCHEMA, RunMeta
from rlscale.store.validate import normalize_points


class RunWriter:
    """Incremental writer for a run that is still going (the RL jobs use it).

    The run directory appears atomically on :meth:`open` with ``status="running"``; each
    :meth:`append` rewrites ``points.parquet`` atomically (write a temporary file, then rename),
    so a crash loses at most the points since the last append. :meth:`close` marks it complete.
    """

    def __init__(self, store: Store | str | os.PathLike[str], meta: RunMeta) -> None:
        self.store = as_store(store)
        self.meta = meta
        self._table = POINTS_SCHEMA.empty_table()

    @classmethod
    def open(cls, store: Store | str | os.PathLike[str], meta: RunMeta) -> RunWriter:
        """Create a new run (error if it exists)."""
        writer = cls(store, meta)
        meta.status, meta.writer = "running", writer_info()
        writer.store.write_run(meta, pd.DataFrame(columns=list(POINT_COLUMNS)))
        return writer

    @classmethod
    def resume(cls, store: Store | str | os.PathLike[str], run_id: str) -> RunWriter:
        """Reopen an existing run, keeping the points already written."""
        st = as_store(store)
        writer = cls(st, st.read_meta(run_id))
        writer._table = st.read_points_table(run_id)
        return writer

    @property
    def points(self) -> pd.DataFrame:
        return self._table.to_pandas()

    def truncate_after(self, step: int) -> None:
        """Drop points logged after ``step`` (a resumed job rewinds to its checkpoint)."""
        df = self.points
        self._replace(df[df["step"] <= step])

    def append(self, points: pd.DataFrame) -> None:
        df = pd.concat([self.points, points], ignore_index=True) if len(self._table) else points
        self._replace(df)

    def _replace(self, df: pd.DataFrame) -> None:
        table = normalize_points(df, self.meta.run_id, source=f"run {self.meta.run_id}")
        write_parquet(self.store.run_dir(self.meta.run_id) / layout.POINTS_FILE, table)
        self._table = table

    def update_meta(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.meta, key, value)
        write_json(self.store.run_dir(self.meta.run_id) / layout.RUN_FILE, self.meta.to_dict())

    def close(self, status: str = "complete") -> None:
        self.update_meta(status=status)


def load_points(
    store: Store | str | os.PathLike[str],
    metric: str | Iterable[str] | None = None,
    runs: Iterable[str] | None = None,
    *,
    with_meta: bool = False,
    strict: bool | None = None,
) -> pd.DataFrame:
    """Points of a store as a long DataFrame (columns :data:`POINT_COLUMNS`).

    With ``with_meta=True`` each row also carries its run's ``recipe``, ``seed``, ``task``,
    ``model`` and metadata keys, ready for grouping (``--by``). A damaged run is skipped with a
    :class:`~rlscale.store.damage.DamagedRunWarning`, or (``strict=True``) raises
    :class:`~rlscale.store.damage.DamagedRun`; default: :func:`~rlscale.store.damage.strict_mode`.
    """
    st = _store(store, strict)
    points = st.read_points(metric=metric, runs=runs)
    if not with_meta or points.empty:
        return points
    meta = load_runs(st).drop(
        columns=["n_points", "metrics", "max_step", "source_path", "source_format", "status"]
        + [f"{m}_{a}" for a in COMPUTE_AXES for m in ("min", "max")],
        errors="ignore",
    )
    return points.merge(meta, on="run_id", how="left")


def load_metric_points(store: Store | str | os.PathLike[str], metric: str, *,
                       strict: bool | None = None) -> pd.DataFrame:
    """Points of ``metric`` with run metadata (as :func:`load_points` ``with_meta=True``), or why not.

    Raises :class:`StoreError` for a store with no runs, and :class:`InputError` (field
    ``metric``) naming the metrics there when none of its points has this metric. Damaged runs:
    as :func:`load_points`.
    """
    st = _store(store, strict)
    if not st.run_ids():
        msg = f"no runs in store {str(st.root)!r} (pass --store DIR or set RLSCALE_STORE)"
        raise StoreError(msg)
    points = load_points(st, metric=metric, with_meta=True)
    if points.empty:
        known = sorted({m for ms in st.runs()["metrics"] for m in ms})
        msg = f"no points for metric {metric!r} in {str(st.root)!r}; metrics there: {known}"
        raise InputError(msg, field="metric")
    return points


def load_runs(store: Store | str | os.PathLike[str], *, strict: bool | None = None
              ) -> pd.DataFrame:
    """One row per run in the store (see :meth:`Store.runs`); damaged runs as in
    :func:`load_points`."""
    return _store(store, strict).runs()


def _store(store: Store | str | os.PathLike[str], strict: bool | None) -> Store:
    st = as_store(store)
    return st if strict is None or st.strict == strict else Store(st.root, strict=strict)
