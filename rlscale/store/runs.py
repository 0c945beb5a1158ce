"""Reading and writing runs: :class:`Store`, a directory of runs.

A run directory is built one level down in a hidden scratch directory
(``<store>/.tmp-<uuid>/<run_id>/``) and renamed into place, so readers and concurrent writers
never see half a run, and the glob ``<store>/*/points.parquet`` (DuckDB, polars, pandas) never
matches a run in flight; a process killed mid-write leaves only a hidden directory that readers
skip and :meth:`Store.clean` removes. Where each file lives is :mod:`rlscale.store.layout`.

This module reads and writes with pyarrow alone: pandas (about a second to import) is imported
only by the two methods that take or return a DataFrame (:meth:`Store.runs`,
:meth:`Store.write_run`), so ``rlscale runs`` lists a store without it. The pandas side of the
store (:class:`~rlscale.store.frames.RunWriter`, :func:`~rlscale.store.frames.load_points`) is
:mod:`rlscale.store.frames`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rlscale.errors import StoreError
from rlscale.store import layout, recover
from rlscale.store.atomic import fsync_dir, write_json, write_parquet
from rlscale.store.damage import (
    DamagedRun,
    DamagedRunWarning,
    check_meta_dict,
    check_points_table,
    one_line,
    strict_mode,
)
from rlscale.store.liveness import shown_status
from rlscale.store.schema import COMPUTE_AXES, POINTS_SCHEMA, RunMeta, check_run_id

if TYPE_CHECKING:
    import pandas as pd

WriteStatus = Literal["written", "unchanged", "replaced", "appended"]


class Store:
    """A directory of runs. Cheap to construct; touches the disk only when asked.

    A damaged run (see :mod:`rlscale.store.damage`) makes :meth:`read_meta` and
    :meth:`read_points_table` raise :class:`DamagedRun`; the readers of many runs
    (:meth:`read_points`, :meth:`summaries`) skip it with one :class:`DamagedRunWarning` per run
    and store, or raise when ``strict`` (default: :func:`~rlscale.store.damage.strict_mode`).
    """

    #: a replace interrupted longer ago than this (seconds) is recovered by the next reader or
    #: writer (:func:`rlscale.store.recover.recover`); a younger one may be a writer in flight
    RECOVER_AFTER_S = 10.0

    def __init__(self, root: str | os.PathLike[str], *, strict: bool | None = None) -> None:
        self.root = Path(root)
        self.strict = strict
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- reading -------------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Every complete or running run, sorted. Hidden (``.``/``_``) entries are skipped."""
        if not self.root.is_dir():
            return []
        if any(p.name.startswith(layout.TRASH_PREFIX) for p in self.root.iterdir()):
            self.recover()
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and layout.is_run_name(p.name) and (p / layout.RUN_FILE).is_file()
        )

    def recover(self, min_age: float | None = None) -> list[tuple[str, Path]]:
        """Finish replaces a crash interrupted (the run absent, its old copy in ``.trash-*``):
        put the newest complete copy back in place; see :func:`rlscale.store.recover.recover`.
        A store it cannot write (read-only) is left as it is."""
        age = self.RECOVER_AFTER_S if min_age is None else min_age
        try:
            return recover.recover(self.root, min_age=age)
        except OSError:
            return []

    def has_run(self, run_id: str) -> bool:
        return (layout.run_dir(self.root, run_id) / layout.RUN_FILE).is_file()

    def run_dir(self, run_id: str) -> Path:
        return layout.run_dir(self.root, check_run_id(run_id))

    def read_meta(self, run_id: str) -> RunMeta:
        path = self.run_dir(run_id) / layout.RUN_FILE
        if not path.is_file():
            msg = f"no run {run_id!r} in store {str(self.root)!r}"
            raise StoreError(msg)
        return read_meta_file(path, run_id)

    def read_points_table(self, run_id: str) -> pa.Table:
        """The run's points, checked (:func:`~rlscale.store.damage.check_points_table`);
        :class:`DamagedRun` if the file is missing, unreadable or not this run's points. A run
        not in the store (no run.json: not written yet) has no points: an empty table."""
        if not self.has_run(run_id):
            return POINTS_SCHEMA.empty_table()
        return read_points_file(self.run_dir(run_id) / layout.POINTS_FILE, run_id)

    def skip_damaged(self, exc: DamagedRun) -> None:
        """Warn (once per problem and store) that a reader skips ``exc``'s run; re-raise if strict."""
        if strict_mode(self.strict):
            raise exc
        if str(exc) not in self._warned:
            self._warned.add(str(exc))
            warnings.warn(f"{exc} (skipped)", DamagedRunWarning, stacklevel=3)

    def read_points(
        self,
        *,
        metric: str | Iterable[str] | None = None,
        runs: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Points of the chosen runs (default all) and metrics (default all) as one frame."""
        ids = self.run_ids() if runs is None else list(runs)
        missing = [r for r in ids if not self.has_run(r)]
        if missing:
            msg = f"no run(s) {missing} in store {str(self.root)!r}"
            raise StoreError(msg)
        tables = []
        for r in ids:
            try:
                self.read_meta(r)  # a run whose metadata is damaged is skipped whole
                tables.append(self.read_points_table(r))
            except DamagedRun as exc:
                self.skip_damaged(exc)
        table = pa.concat_tables(tables) if tables else POINTS_SCHEMA.empty_table()
        if metric is not None:
            wanted = [metric] if isinstance(metric, str) else list(metric)
            table = table.filter(pc.is_in(table["metric"], pa.array(wanted, pa.string())))
        return table.to_pandas()

    def summaries(self) -> list[dict[str, Any]]:
        """One dict per run: identity, metadata keys, metrics, point count, compute range
        (``min_<axis>``/``max_<axis>``, None where the run has no such axis). Needs no pandas,
        so listing a store (``rlscale runs``) starts fast."""
        rows = []
        for run_id in self.run_ids():
            try:
                meta = self.read_meta(run_id)
                pts = self.read_points_table(run_id)
            except DamagedRun as exc:
                self.skip_damaged(exc)
                continue
            row: dict[str, Any] = {
                "run_id": run_id,
                "recipe": meta.recipe,
                "seed": meta.seed,
                "task": meta.task,
                "model": meta.model,
                "status": shown_status(meta.status, meta.writer),
                "source_path": (meta.source or {}).get("path"),
                "source_format": (meta.source or {}).get("format"),
                "n_points": pts.num_rows,
                "metrics": sorted(set(pts["metric"].to_pylist())),
                "max_step": _max_or_none(pts["step"]),
            }
            for axis in COMPUTE_AXES:
                row[f"min_{axis}"] = _max_or_none(pts[axis], "min")
                row[f"max_{axis}"] = _max_or_none(pts[axis])
            for key, value in meta.metadata.items():
                row.setdefault(key, value)
            rows.append(row)
        return rows

    def runs(self) -> pd.DataFrame:
        """:meth:`summaries` as a frame, one row per run, metadata keys as columns."""
        import pandas as pd  # deferred: see the module docstring

        return pd.DataFrame(self.summaries())

    # -- writing -------------------------------------------------------------------------------
    def write_run(
        self, meta: RunMeta, points: pd.DataFrame, *, replace: bool = False
    ) -> WriteStatus:
        """Write a whole run atomically.

        Returns ``"unchanged"`` when the run exists with the same source (see
        :func:`same_source`; a no-op), ``"written"`` for a new run, ``"replaced"`` when
        ``replace`` let it overwrite one. Raises :class:`StoreError` if the run exists and
        ``replace`` is false.
        """
        from rlscale.store.validate import normalize_points  # deferred: pandas, see above

        table = normalize_points(points, meta.run_id, source=(meta.source or {}).get("path"))
        return self.write_table(meta, table, replace=replace)

    def plan_write(self, meta: RunMeta, *, replace: bool = False) -> WriteStatus:
        """What :meth:`write_table` would do, without writing: raises the same StoreError."""
        if not self.has_run(meta.run_id):
            return "written"
        try:
            old = self.read_meta(meta.run_id)
        except DamagedRun as exc:
            if replace:
                return "replaced"
            msg = f"{exc}; pass --replace (replace=True) to overwrite it"
            raise StoreError(msg) from None
        if same_source(old.source, meta.source) and not replace:
            return "unchanged"
        if not replace:
            was = (old.source or {}).get("path") or "an rlscale job"
            sha = (meta.source or {}).get("sha256")
            if sha is not None and (old.source or {}).get("sha256") == sha:
                was += ", the same file but other ingest options or metadata"
            msg = (
                f"run {meta.run_id!r} already exists in {str(self.root)!r} (from {was}); "
                "pass --replace (replace=True) to overwrite it, or choose another --run-id"
            )
            raise StoreError(msg)
        return "replaced"

    def write_table(self, meta: RunMeta, table: pa.Table, *, replace: bool = False) -> WriteStatus:
        """Like :meth:`write_run` for a table already checked by :func:`normalize_points` (or the
        ingest validator): schema exactly :data:`POINTS_SCHEMA`, ``run_id`` column = meta.run_id."""
        return self.write_tables([(meta, table)], replace=replace)[0]

    def write_tables(self, items: list[tuple[RunMeta, pa.Table | Callable[[], pa.Table]]], *,
                     replace: bool = False) -> list[WriteStatus]:
        """Write several checked runs: plan all (conflicts raise before any write), stage all
        under hidden names, flush them to disk with one sync, then rename each into place.
        A table may be given as a function that builds it, so only one is in memory at a time.

        A failure while staging leaves the store as it was. The renames are the only step that
        changes what readers see; each is atomic, so a crash between two of them leaves some
        runs written and the rest absent, never a partial run.
        """
        def checked(meta: RunMeta, table: pa.Table | Callable[[], pa.Table]) -> pa.Table:
            table = table if isinstance(table, pa.Table) else table()
            if not table.schema.equals(POINTS_SCHEMA):
                msg = f"points table schema {table.schema} is not the store's {POINTS_SCHEMA}"
                raise StoreError(msg)
            if table.num_rows and not pc.all(pc.equal(table["run_id"], meta.run_id)).as_py():
                msg = f"points table rows belong to runs other than {meta.run_id!r}"
                raise StoreError(msg)
            return table

        if self.root.is_dir():
            self.recover()
        plans = [self.plan_write(meta, replace=replace) for meta, _ in items]
        todo = [item for item, plan in zip(items, plans) if plan != "unchanged"]
        if not todo:
            return plans
        batch = len(todo) > 1 and hasattr(os, "sync")
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = self._scratch(layout.STAGING_PREFIX)
        try:
            def stage(item: tuple[RunMeta, Any]) -> Path:
                return self._stage(item[0], checked(*item), scratch, sync=not batch)

            if batch:
                # Parquet encoding and file creation release the GIL: overlap a few runs.
                with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                    paths = list(pool.map(stage, todo))
                os.sync()  # one flush for the whole batch instead of fsync per file
            else:
                paths = [stage(item) for item in todo]
            tmps = iter(paths)
            for (meta, _), plan in zip(items, plans):
                if plan != "unchanged":
                    self._commit(meta.run_id, next(tmps), plan)
        finally:
            # Empty unless something failed. A replace stopped between its two renames (the run
            # absent) keeps its staged copy: recovery puts the newest complete copy in place.
            if not any(not self.run_dir(p.name).exists() and recover.has_old_copy(self.root, p.name)
                       for p in (scratch.iterdir() if scratch.is_dir() else ())):
                shutil.rmtree(scratch, ignore_errors=True)
        fsync_dir(self.root)
        return plans

    def update_run(self, meta: RunMeta, table: pa.Table) -> None:
        """Rewrite an existing run in place: its points, then its ``run.json``, each file written
        under a temporary name, flushed and renamed onto the old one (a log that grew).

        The run never disappears: a crash leaves the old files, or the new points under the old
        metadata, whose sha256 no longer matches the log, so the next ingest redoes the update.
        """
        if not self.has_run(meta.run_id):
            msg = f"no run {meta.run_id!r} in store {str(self.root)!r}"
            raise StoreError(msg)
        if not table.schema.equals(POINTS_SCHEMA):
            msg = f"points table schema {table.schema} is not the store's {POINTS_SCHEMA}"
            raise StoreError(msg)
        final = self.run_dir(meta.run_id)
        write_parquet(final / layout.POINTS_FILE, table)
        write_json(final / layout.RUN_FILE, meta.to_dict())
        fsync_dir(final)

    def _commit(self, run_id: str, tmp: Path, plan: WriteStatus) -> None:
        final = self.run_dir(run_id)
        if plan == "written":
            try:
                os.rename(tmp, final)
            except OSError as exc:
                msg = f"run {run_id!r} was created by another writer at the same time"
                raise StoreError(msg) from exc
            return
        trash = self._scratch(layout.TRASH_PREFIX) / run_id
        os.rename(final, trash)
        try:
            os.rename(tmp, final)
        except BaseException:
            try:  # put the old copy back; failing that, both copies stay for recovery
                os.rename(trash, final)
                shutil.rmtree(trash.parent, ignore_errors=True)
            except OSError:
                pass
            raise
        shutil.rmtree(trash.parent, ignore_errors=True)

    def _scratch(self, prefix: str) -> Path:
        """A new hidden directory directly under the root (runs go one level below it)."""
        path = self.root / layout.scratch_name(prefix)
        path.mkdir()
        return path

    def _stage(self, meta: RunMeta, table: pa.Table, scratch: Path, *, sync: bool = True) -> Path:
        """Write a run's files under ``scratch/<run_id>/`` (hidden, so no temp names needed)."""
        tmp = scratch / meta.run_id
        tmp.mkdir()
        write_parquet(tmp / layout.POINTS_FILE, table, sync=sync, direct=True)
        write_json(tmp / layout.RUN_FILE, meta.to_dict(), sync=sync, direct=True)
        if sync:
            fsync_dir(tmp)
        return tmp

    def delete_run(self, run_id: str) -> None:
        final = self.run_dir(run_id)
        if not final.is_dir():
            msg = f"no run {run_id!r} in store {str(self.root)!r}"
            raise StoreError(msg)
        gone = self._scratch(layout.DELETED_PREFIX) / run_id  # never recovered: see recover
        os.rename(final, gone)
        shutil.rmtree(gone.parent, ignore_errors=True)

    def clean(self, *, dry_run: bool = False) -> list[recover.Cleaned]:
        """Recover interrupted writes, then remove what killed writers left (``.tmp-*``,
        ``.trash-*``, ``.deleted-*`` directories, ``.*.tmp`` files); only while nothing else
        writes. See :func:`rlscale.store.recover.clean`."""
        return recover.clean(self.root, dry_run=dry_run)


def read_meta_file(path: Path, run_id: str) -> RunMeta:
    """``run.json`` at ``path`` as the metadata of ``run_id``, or :class:`DamagedRun`."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        what = "not valid JSON" if isinstance(exc, ValueError) else "unreadable"
        raise DamagedRun(run_id, path, f"{what}: {one_line(exc)}") from None
    problem = check_meta_dict(data, run_id)
    if problem:
        raise DamagedRun(run_id, path, problem)
    return RunMeta.from_dict(data, path=path)


def read_points_file(path: Path, run_id: str) -> pa.Table:
    """``points.parquet`` at ``path`` as the points of ``run_id``, or :class:`DamagedRun`."""
    if not path.is_file():
        raise DamagedRun(run_id, path, "missing (every run has one, empty or not)")
    try:
        table = pq.ParquetFile(path).read()  # not pq.read_table: it imports pandas
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise DamagedRun(run_id, path, f"unreadable Parquet: {one_line(exc)}") from None
    checked, problem = check_points_table(table, run_id)
    if checked is None:
        raise DamagedRun(run_id, path, problem or "bad points")
    return checked


def same_source(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    """Two sources are the same when their sha256 match and so do their ``options`` (if any):
    re-ingesting the same file with the same options and metadata is a no-op."""
    if old is None or new is None or new.get("sha256") is None:
        return False
    return old.get("sha256") == new.get("sha256") and old.get("options") == new.get("options")


def _max_or_none(column: pa.ChunkedArray, how: str = "max") -> float | int | None:
    value = getattr(pc, how)(column).as_py()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def as_store(store: Store | str | os.PathLike[str]) -> Store:
    """``store`` itself if it is a :class:`Store`, else a Store at that path."""
    return store if isinstance(store, Store) else Store(store)
