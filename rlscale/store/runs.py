"""The run store: one directory per run, written whole or not at all.

Layout (see docs/store.md)::

    <store>/<run_id>/run.json        RunMeta as JSON
    <store>/<run_id>/points.parquet  long table, one row per (step, metric)

A run directory is built one level down in a hidden scratch directory
(``<store>/.tmp-<uuid>/<run_id>/``) and renamed into place, so readers and concurrent writers
never see half a run, and the glob ``<store>/*/points.parquet`` (DuckDB, polars, pandas) never
matches a run in flight; a process killed mid-write leaves only a hidden directory that readers
skip and :meth:`Store.clean` removes.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rlscale.errors import StoreError, input_error

SCHEMA_VERSION = 1
COMPUTE_AXES: tuple[str, ...] = ("flops", "gpu_hours", "tokens", "wall_s")
POINTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("step", pa.int64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("flops", pa.float64()),
        ("gpu_hours", pa.float64()),
        ("tokens", pa.int64()),
        ("wall_s", pa.float64()),
    ]
)
POINT_COLUMNS: tuple[str, ...] = tuple(POINTS_SCHEMA.names)
RUN_FILE = "run.json"
POINTS_FILE = "points.parquet"
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$")

WriteStatus = Literal["written", "unchanged", "replaced"]


@dataclass
class RunMeta:
    """What is known about one run besides its points.

    ``metadata`` holds flat, user-facing keys (``pretrain_tokens``, ``lr``, ...) that ``--by`` and
    ``--facet`` can group on; ``config`` holds the full job config of an rlscale RL job; ``source``
    records where ingested points came from (``path``, ``format``, ``sha256``).
    """

    run_id: str
    recipe: str | None = None
    seed: int | None = None
    task: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] | None = None
    status: str = "complete"
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_run_id(self.run_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: Path | str | None = None) -> RunMeta:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown or "run_id" not in data:
            what = f"unknown keys {unknown}" if unknown else "missing key 'run_id'"
            raise input_error(what, path=path, expected=f"keys among {sorted(known)}")
        return cls(**data)


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is safe as a directory name, else raise :class:`InputError`."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise input_error(
            f"invalid run_id {run_id!r}",
            expected="1-200 characters of letters, digits and . _ = + -, not starting with . or _",
        )
    return run_id


def normalize_points(points: pd.DataFrame, run_id: str, *, source: str | None = None) -> pa.Table:
    """Coerce a points frame to :data:`POINTS_SCHEMA`, checking what every stage relies on.

    Missing compute axes become null. Values must be finite, steps non-negative integers, and
    (step, metric) unique. Raises :class:`InputError` naming ``source`` and the offending column.
    """
    df = points.copy()
    for col in ("step", "metric", "value"):
        if col not in df.columns:
            raise input_error(f"missing column {col!r}", path=source, field=col)
    df["run_id"] = run_id
    for axis in COMPUTE_AXES:
        if axis not in df.columns:
            df[axis] = None
    df = df[list(POINT_COLUMNS)]
    value = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    bad = ~np.isfinite(value.to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise input_error(
            f"non-finite value {df['value'].iloc[i]!r} for metric {df['metric'].iloc[i]!r} "
            f"at step {df['step'].iloc[i]}",
            path=source, field="value", expected="a finite number",
        )
    df["value"] = value
    step = pd.to_numeric(df["step"], errors="coerce")
    if step.isna().any() or (step < 0).any() or (step != np.floor(step)).any():
        i = int(np.flatnonzero(step.isna() | (step < 0) | (step != np.floor(step)))[0])
        raise input_error(f"bad step {df['step'].iloc[i]!r}", path=source, field="step",
                          expected="a non-negative integer")
    df["step"] = step.astype("int64")
    for axis in COMPUTE_AXES:
        col = pd.to_numeric(df[axis], errors="coerce").astype("float64")
        arr = col.to_numpy()
        bad = (~np.isnan(arr) & ~np.isfinite(arr)) | (arr < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(f"bad compute value {arr[i]!r} at step {df['step'].iloc[i]}",
                              path=source, field=axis, expected="a finite non-negative number")
        df[axis] = col
    df["tokens"] = df["tokens"].round().astype("Int64")
    dup = df.duplicated(["step", "metric"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise input_error(
            f"duplicate (step={first['step']}, metric={first['metric']!r})",
            path=source, field="step", expected="one value per step and metric",
        )
    df = df.sort_values(["metric", "step"], kind="stable").reset_index(drop=True)
    return pa.Table.from_pandas(df, schema=POINTS_SCHEMA, preserve_index=False)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict[str, Any], *, sync: bool = True,
                direct: bool = False) -> None:
    tmp = path if direct else path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")
        fh.flush()
        if sync:
            os.fsync(fh.fileno())
    if not direct:
        os.replace(tmp, path)


def _write_parquet(path: Path, table: pa.Table, *, sync: bool = True,
                   direct: bool = False) -> None:
    """Write ``table`` to ``path`` (via a temporary name and a rename unless ``direct``)."""
    tmp = path if direct else path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # Dictionary-encode the text columns only: trying it on 10k distinct floats costs time and
    # bytes (the encoder falls back to plain anyway).
    with pa.OSFile(str(tmp), "wb") as sink:
        pq.write_table(table, sink, use_dictionary=["run_id", "metric"])
    if sync:
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    if not direct:
        os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    msg = f"cannot store {type(obj).__name__} in run.json"
    raise TypeError(msg)


class Store:
    """A directory of runs. Cheap to construct; touches the disk only when asked."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- reading -------------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Every complete or running run, sorted. Hidden (``.``/``_``) entries are skipped."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith((".", "_")) and (p / RUN_FILE).is_file()
        )

    def has_run(self, run_id: str) -> bool:
        return (self.root / run_id / RUN_FILE).is_file()

    def run_dir(self, run_id: str) -> Path:
        return self.root / check_run_id(run_id)

    def read_meta(self, run_id: str) -> RunMeta:
        path = self.run_dir(run_id) / RUN_FILE
        if not path.is_file():
            msg = f"no run {run_id!r} in store {str(self.root)!r}"
            raise StoreError(msg)
        with open(path, encoding="utf-8") as fh:
            return RunMeta.from_dict(json.load(fh), path=path)

    def read_points_table(self, run_id: str) -> pa.Table:
        path = self.run_dir(run_id) / POINTS_FILE
        if not path.is_file():
            return POINTS_SCHEMA.empty_table()
        return pq.read_table(path, schema=POINTS_SCHEMA)

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
        tables = [self.read_points_table(r) for r in ids]
        table = pa.concat_tables(tables) if tables else POINTS_SCHEMA.empty_table()
        if metric is not None:
            wanted = [metric] if isinstance(metric, str) else list(metric)
            import pyarrow.compute as pc

            table = table.filter(pc.is_in(table["metric"], pa.array(wanted, pa.string())))
        return table.to_pandas()

    def runs(self) -> pd.DataFrame:
        """One row per run: identity, metadata keys as columns, metrics, point count, compute range
        (``min_<axis>``/``max_<axis>``, None where the run has no such axis)."""
        rows = []
        for run_id in self.run_ids():
            meta = self.read_meta(run_id)
            pts = self.read_points_table(run_id)
            row: dict[str, Any] = {
                "run_id": run_id,
                "recipe": meta.recipe,
                "seed": meta.seed,
                "task": meta.task,
                "model": meta.model,
                "status": meta.status,
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
        return pd.DataFrame(rows)

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
        table = normalize_points(points, meta.run_id, source=(meta.source or {}).get("path"))
        return self.write_table(meta, table, replace=replace)

    def plan_write(self, meta: RunMeta, *, replace: bool = False) -> WriteStatus:
        """What :meth:`write_table` would do, without writing: raises the same StoreError."""
        if not self.has_run(meta.run_id):
            return "written"
        old = self.read_meta(meta.run_id)
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
        import pyarrow.compute as pc

        def checked(meta: RunMeta, table: pa.Table | Callable[[], pa.Table]) -> pa.Table:
            table = table if isinstance(table, pa.Table) else table()
            if not table.schema.equals(POINTS_SCHEMA):
                msg = f"points table schema {table.schema} is not the store's {POINTS_SCHEMA}"
                raise StoreError(msg)
            if table.num_rows and not pc.all(pc.equal(table["run_id"], meta.run_id)).as_py():
                msg = f"points table rows belong to runs other than {meta.run_id!r}"
                raise StoreError(msg)
            return table

        plans = [self.plan_write(meta, replace=replace) for meta, _ in items]
        todo = [item for item, plan in zip(items, plans) if plan != "unchanged"]
        if not todo:
            return plans
        batch = len(todo) > 1 and hasattr(os, "sync")
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = self._scratch(".tmp-")
        try:
            def stage(item: tuple[RunMeta, Any]) -> Path:
                return self._stage(item[0], checked(*item), scratch, sync=not batch)

            if batch:
                # Parquet encoding and file creation release the GIL: overlap a few runs.
                from concurrent.futures import ThreadPoolExecutor

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
            shutil.rmtree(scratch, ignore_errors=True)  # empty unless something failed
        _fsync_dir(self.root)
        return plans

    def _commit(self, run_id: str, tmp: Path, plan: WriteStatus) -> None:
        final = self.run_dir(run_id)
        if plan == "written":
            try:
                os.rename(tmp, final)
            except OSError as exc:
                msg = f"run {run_id!r} was created by another writer at the same time"
                raise StoreError(msg) from exc
            return
        trash = self._scratch(".trash-") / run_id
        os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash.parent, ignore_errors=True)

    def _scratch(self, prefix: str) -> Path:
        """A new hidden directory directly under the root (runs go one level below it)."""
        path = self.root / f"{prefix}{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def _stage(self, meta: RunMeta, table: pa.Table, scratch: Path, *, sync: bool = True) -> Path:
        """Write a run's files under ``scratch/<run_id>/`` (hidden, so no temp names needed)."""
        tmp = scratch / meta.run_id
        tmp.mkdir()
        _write_parquet(tmp / POINTS_FILE, table, sync=sync, direct=True)
        _write_json(tmp / RUN_FILE, meta.to_dict(), sync=sync, direct=True)
        if sync:
            _fsync_dir(tmp)
        return tmp

    def delete_run(self, run_id: str) -> None:
        final = self.run_dir(run_id)
        if not final.is_dir():
            msg = f"no run {run_id!r} in store {str(self.root)!r}"
            raise StoreError(msg)
        trash = self._scratch(".trash-") / run_id
        os.rename(final, trash)
        shutil.rmtree(trash.parent, ignore_errors=True)

    def clean(self) -> list[str]:
        """Remove leftovers of killed writers (hidden ``.tmp-*``/``.trash-*`` entries)."""
        removed = []
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith((".tmp-", ".trash-")):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
        return removed


def same_source(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    """Two sources are the same when their sha256 match and so do their ``options`` (if any):
    re-ingesting the same file with the same options and metadata is a no-op."""
    if old is None or new is None or new.get("sha256") is None:
        return False
    return old.get("sha256") == new.get("sha256") and old.get("options") == new.get("options")


def _max_or_none(column: pa.ChunkedArray, how: str = "max") -> float | int | None:
    import pyarrow.compute as pc

    value = getattr(pc, how)(column).as_py()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


class RunWriter:
    """Incremental writer for a run that is still going (the RL jobs use it).

    The run directory appears atomically on :meth:`open` with ``status="running"``; each
    :meth:`append` rewrites ``points.parquet`` atomically (write a temporary file, then rename),
    so a crash loses at most the points since the last append. :meth:`close` marks it complete.
    """

    def __init__(self, store: Store | str | os.PathLike[str], meta: RunMeta) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.meta = meta
        self._table = POINTS_SCHEMA.empty_table()

    @classmethod
    def open(cls, store: Store | str | os.PathLike[str], meta: RunMeta) -> RunWriter:
        """Create a new run (error if it exists)."""
        writer = cls(store, meta)
        meta.status = "running"
        writer.store.write_run(meta, pd.DataFrame(columns=list(POINT_COLUMNS)))
        return writer

    @classmethod
    def resume(cls, store: Store | str | os.PathLike[str], run_id: str) -> RunWriter:
        """Reopen an existing run, keeping the points already written."""
        st = store if isinstance(store, Store) else Store(store)
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
        _write_parquet(self.store.run_dir(self.meta.run_id) / POINTS_FILE, table)
        self._table = table

    def update_meta(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.meta, key, value)
        _write_json(self.store.run_dir(self.meta.run_id) / RUN_FILE, self.meta.to_dict())

    def close(self, status: str = "complete") -> None:
        self.update_meta(status=status)


def load_points(
    store: Store | str | os.PathLike[str],
    metric: str | Iterable[str] | None = None,
    runs: Iterable[str] | None = None,
    *,
    with_meta: bool = False,
) -> pd.DataFrame:
    """Points of a store as a long DataFrame (columns :data:`POINT_COLUMNS`).

    With ``with_meta=True`` each row also carries its run's ``recipe``, ``seed``, ``task``,
    ``model`` and metadata keys, ready for grouping (``--by``).
    """
    st = store if isinstance(store, Store) else Store(store)
    points = st.read_points(metric=metric, runs=runs)
    if not with_meta or points.empty:
        return points
    meta = load_runs(st).drop(
        columns=["n_points", "metrics", "max_step", "source_path", "source_format", "status"]
        + [f"{m}_{a}" for a in COMPUTE_AXES for m in ("min", "max")],
        errors="ignore",
    )
    return points.merge(meta, on="run_id", how="left")


def load_runs(store: Store | str | os.PathLike[str]) -> pd.DataFrame:
    """One row per run in the store (see :meth:`Store.runs`)."""
    st = store if isinstance(store, Store) else Store(store)
    return st.runs()
