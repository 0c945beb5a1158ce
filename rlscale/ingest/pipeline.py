"""Find logs, tell their format, read and validate them all, then write them to the store."""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa

from rlscale.errors import InputError, RLScaleError, input_error
from rlscale.ingest import mlflow, readers, sb3, table, tensorboard, trl, verl
from rlscale.ingest.compressed import expand_limit, inner_suffix, is_compressed
from rlscale.ingest.growing import TEXT_FORMATS, check_growth, open_line_source, snapshot
from rlscale.ingest.model_size import model_params_from
from rlscale.ingest.options import IngestOptions, parse_set, sanitize_run_id
from rlscale.ingest.points import RunSet, to_run_set
from rlscale.ingest.source import sha256_of
from rlscale.store import RunMeta, Store, WriteStatus, as_store, same_source

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".tab": "csv", ".jsonl": "jsonl",
                  ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


@dataclass
class IngestResult:
    """One run an ingest produced: where it came from and what happened to it in the store."""

    run_id: str
    path: str
    format: str
    n_points: int
    metrics: list[str]
    status: WriteStatus | None = None  # None until written (or in a dry run)
    n_dropped: int = 0  # non-finite points dropped by drop_nonfinite
    note: str | None = None  # what the reader found worth saying (e.g. one file held 2 runs)
    added: int | None = None  # points a grown log added to its run ("appended")
    held_line: int | None = None  # an unterminated last line left for the next read

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_tb_dir(path: Path) -> bool:
    return path.is_dir() and any(p.is_file() for p in path.glob("events.out.tfevents.*"))


def detect_format(path: Path) -> str:
    """The format of one log: by name, then (for .json) by content. Raises InputError if unknown."""
    name = path.name.lower()
    if _is_tb_dir(path) or name.startswith("events.out.tfevents."):
        return "tensorboard"
    if name == "trainer_state.json":
        return "trl"
    suffix = inner_suffix(path)
    if suffix in TABLE_SUFFIXES:
        return framework_format(path, TABLE_SUFFIXES[suffix])
    if suffix in verl.SUFFIXES and verl.is_console_log(path):
        return "verl"
    if suffix == ".json":
        try:
            with open(path, encoding="utf-8-sig") as fh:
                head = fh.read(1 << 16)
        except (OSError, UnicodeDecodeError):
            head = ""
        return "trl" if '"log_history"' in head else "json"
    raise input_error("cannot tell the format", path=path,
                      expected="a .csv/.tsv/.jsonl/.json/.parquet file, trainer_state.json, a "
                               "TensorBoard run directory, an MLflow mlruns directory, a verl "
                               "console log (lines 'step:N - key:value - ...'), or --format")


def framework_format(path: Path, kind: str) -> str:
    """A table file that a framework wrote in its own dialect: SB3's monitor.csv/progress.csv,
    verl's file-logger JSONL. Such a file is read by its framework's reader even under
    ``--format csv``/``jsonl``, whose plain readers would misread it."""
    if kind == "csv" and sb3.is_sb3(path):
        return "sb3"
    if kind == "jsonl" and verl.is_file_logger(path):
        return "verl"
    return kind


def _default_name(path: Path, kind: str) -> str:
    if kind == "sb3":
        return sb3.default_run_id(path)
    if kind == "verl":
        return path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.name.split(".")[0] or path.stem


def _run_name(rel_parts: tuple[str, ...], fallback: str) -> str:
    parts = [p for p in rel_parts if p and p != "."]
    if parts and _CHECKPOINT.match(parts[-1]):
        parts = parts[:-1]
    return sanitize_run_id("-".join(parts) if parts else fallback)


def discover(paths: list[Path], fmt: str = "auto") -> list[tuple[Path, str, str]]:
    """``[(log, format, default_run_id)]`` for files and directories given on the command line.

    A directory is searched recursively: every table file (.csv/.tsv/.jsonl/.ndjson/.parquet),
    every ``trainer_state.json`` and every TensorBoard run directory becomes one run; hidden
    entries are skipped. A plain ``.json`` history must be named explicitly.
    """
    found: list[tuple[Path, str, str]] = []
    for path in paths:
        if not path.exists():
            raise input_error("no such file or directory", path=path)
        if path.is_file() or _is_tb_dir(path):
            kind = detect_format(path) if fmt in ("auto", "wandb") else framework_format(path, fmt)
            if kind == "tensorboard" and path.is_file():
                if not path.name.startswith("events.out.tfevents."):
                    raise input_error("not a TensorBoard event file", path=path,
                                      expected="events.out.tfevents.* or a run directory")
                path = path.parent
            if kind == "tensorboard":
                name = path.resolve().name
            elif kind == "trl" and path.name == "trainer_state.json":
                parent = path.resolve().parent
                name = parent.parent.name if _CHECKPOINT.match(parent.name) else parent.name
            else:
                name = _default_name(path, kind)
            found.append((path, kind, sanitize_run_id(name)))
            continue
        found.extend(_walk(path, fmt))
    _distinct_mlflow_names(found)
    if not found:
        raise input_error("no logs found", path=", ".join(map(str, paths)),
                          expected="table files, trainer_state.json or TensorBoard event files")
    return found


def _walk(root: Path, fmt: str) -> list[tuple[Path, str, str]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        rel = here.relative_to(root).parts
        if mlflow.is_run_dir(here):
            dirnames[:] = []  # metrics/, params/, artifacts/ belong to the run
            if fmt in ("auto", "mlflow") and not mlflow.is_deleted(here):
                out.append((here, "mlflow", mlflow.default_run_id(here)))
            continue
        if any(f.startswith("events.out.tfevents.") for f in filenames):
            if fmt in ("auto", "tensorboard"):
                out.append((here, "tensorboard", _run_name(rel, root.resolve().name)))
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            p = here / f
            if f == "trainer_state.json":
                kind = "trl"
                name = _run_name(rel, root.resolve().name)
            elif inner_suffix(p) in TABLE_SUFFIXES:
                kind = framework_format(p, TABLE_SUFFIXES[inner_suffix(p)])
                if kind == "sb3":
                    name = (_run_name((*rel, sb3.file_part(p)), p.stem) if rel
                            else sanitize_run_id(sb3.default_run_id(p)))
                else:
                    name = _run_name((*rel, _default_name(p, kind)), p.stem)
            elif p.suffix.lower() in verl.SUFFIXES and verl.is_console_log(p):
                kind = "verl"
                name = _run_name((*rel, _default_name(p, kind)), p.stem)
            else:
                continue
            if fmt in ("auto", "wandb", kind) or fmt == TABLE_SUFFIXES.get(inner_suffix(p)):
                out.append((p, kind, name))
    return out


def _distinct_mlflow_names(found: list[tuple[Path, str, str]]) -> None:
    """Two MLflow runs with one runName (a rerun) keep apart by their MLflow run id."""
    names = [name for _, _, name in found]
    for i, (path, kind, name) in enumerate(found):
        if kind == "mlflow" and names.count(name) > 1:
            found[i] = (path, kind, sanitize_run_id(f"{name}-{path.resolve().name[:8]}"))


def _read(path: Path, kind: str, opts: IngestOptions, run_id: str, data: Any = None
          ) -> tuple[RunSet, dict[str, dict[str, Any]], str | None]:
    """Validated points, metadata the log itself holds (per run id), and a note for the user."""
    log_meta: dict[str, dict[str, Any]] = {}
    note = None
    if kind == "tensorboard":
        raw, src = tensorboard.read_tensorboard(path, opts)
    elif kind == "sb3":
        raw, src, log_meta, note = sb3.read_sb3(path, opts, run_id)
    elif kind == "mlflow":
        raw, src, log_meta = mlflow.read_mlflow(path, opts, run_id)
    else:
        if kind == "trl":
            tab, src = trl.read_trainer_state(path)
        elif kind == "verl":
            tab, src = verl.read_verl(path)
        elif kind == "jsonl":
            tab, src = readers.read_jsonl(path, data=data)
        elif kind == "json":
            tab, src = readers.read_json(path)
        elif kind == "parquet":
            tab, src = readers.read_parquet(path)
        else:
            tab, src = readers.read_csv(path, string_cols=opts.run_cols, data=data)
        # pyarrow's allocator keeps what a parse freed (its blocks, its builders) for reuse,
        # and numpy does not allocate from it: hand it back before the points take memory
        # (peak memory), and the table's own once the points are made.
        pa.default_memory_pool().release_unused()
        raw = table.table_points(tab, src, opts)
        del tab
        pa.default_memory_pool().release_unused()
    holder = [raw]
    del raw  # to_run_set reorders the arrays in place; keep no second reference alive
    runs = to_run_set(holder.pop(), src, default_run_id=run_id, drop_nonfinite=opts.drop_nonfinite,
                      gpus=opts.gpus)
    return runs, log_meta, note


def _read_text(path: Path, kind: str, opts: IngestOptions, run_id: str, hold: bool
               ) -> tuple[RunSet, dict[str, dict[str, Any]], str | None, str, int]:
    """A CSV/JSONL log read from one snapshot (:mod:`.growing`):
    ``(runs, log metadata, note, sha256, size)``.

    An unterminated last line (a writer mid-line) is left out with ``hold``, and otherwise when
    the file does not read with it; ``runs.held_line`` says which line was left out.
    """
    snap = snapshot(path, hold=hold)
    try:
        runs, log_meta, note = _read(path, kind, opts, run_id, data=snap)
    except InputError as first:
        cut = snap.without_tail()
        if cut is snap:
            raise
        try:
            runs, log_meta, note = _read(path, kind, opts, run_id, data=cut)
        except InputError:
            raise first from None
        snap = cut
    sha = snap.sha256()  # hashed as the reader read it (growing.PrefixReader): no second pass
    runs.held_line = snap.held_line
    if snap.held_line is None:
        runs.open_line = snap.without_tail().held_line
    return runs, log_meta, note, sha, snap.size


def _meta(run_id: str, path: Path, kind: str, sha: str, opts: IngestOptions,
          runs: RunSet | None = None, k: int = 0,
          log_meta: dict[str, Any] | None = None, size: int | None = None) -> RunMeta:
    found = {**(log_meta or {}), **(runs.meta(k) if runs is not None else {})}
    if opts.recipe is not None:
        found.pop("recipe", None)
    extra = {**found, **opts.set_values}  # --set overrides what the log says
    fields = {k: extra.pop(k) for k in ("seed", "task", "model", "recipe") if k in extra}
    for k in ("task", "model", "recipe"):
        if fields.get(k) is not None:
            fields[k] = str(fields[k])
    recipe = opts.recipe if opts.recipe is not None else fields.pop("recipe", None)
    fields.pop("recipe", None)
    options = {k: v for k, v in asdict(opts).items() if k not in ("replace", "set_values")}
    options["metrics"] = list(options["metrics"])
    options["meta"] = json.loads(json.dumps({"recipe": recipe, **fields, **extra}, sort_keys=True))
    source = {"path": str(path), "format": kind, "sha256": sha, "options": options}
    if runs is not None and runs.raw.derived:
        source["derived"] = dict(runs.raw.derived)
    parsed = None if "model_params" in extra else model_params_from(
        [("model", fields.get("model")), ("run id", run_id), ("file name", path.name),
         ("directory name", path.parent.name)])
    if parsed is not None:  # after options["meta"]: the options say what the user, log gave
        extra["model_params"] = parsed[0]
        source.setdefault("derived", {})["model_params"] = parsed[1]
    if size is not None:
        source["size"] = size
    return RunMeta(run_id=run_id, recipe=recipe, metadata=extra, **fields, source=source)


def read_source(path: str | os.PathLike[str], *, max_expand: int | str | None = None,
                **options: Any) -> list[tuple[RunMeta, pd.DataFrame]]:
    """Read and validate every log under ``path`` into ``[(RunMeta, points), ...]`` (no writing).

    ``options`` are :class:`IngestOptions` fields (``format``, ``run_id``, ``recipe``, ``set_values``
    or ``set=["k=v"]``, ``step_col``, ``x_col``, ``x_unit``, ``metrics``, ``run_col``,
    ``drop_nonfinite``); ``max_expand`` as for :func:`ingest_paths`. Points frames are what
    :func:`rlscale.load_points` would return for those runs once written (columns
    :data:`rlscale.store.POINT_COLUMNS`).
    """
    with expand_limit(max_expand):
        items = _read_all([Path(path)], _options(options))
    return [(meta, runs.table(k).to_pandas()) for meta, runs, k, _ in items]


def _options(options: dict[str, Any]) -> IngestOptions:
    options = dict(options)
    sets = options.pop("set", None)
    if sets:
        options["set_values"] = {**options.get("set_values", {}), **parse_set(list(sets))}
    return IngestOptions(**options)


def _read_all(paths: list[Path], opts: IngestOptions, hold: bool = False
              ) -> list[tuple[RunMeta, RunSet, int, str | None]]:
    with unreadable_as_input_error(Path(", ".join(map(str, paths)))):
        logs = discover(paths, opts.format)
    out: list[tuple[RunMeta, RunSet, int, str | None]] = []
    seen: dict[str, Path] = {}
    for path, kind, default_id in logs:
        if opts.format == "wandb":
            opts_here = opts
        else:
            opts_here = IngestOptions(**{**asdict(opts), "format": kind})
        size = None
        with unreadable_as_input_error(path):
            if kind in TEXT_FORMATS and path.is_file() and not is_compressed(path):
                runs, log_meta, note, sha, size = _read_text(path, kind, opts_here,
                                                             opts.run_id or default_id, hold)
            else:
                with ThreadPoolExecutor(1) as pool:  # hash while parsing (hashlib drops the GIL)
                    sha_future = pool.submit(sha256_of, path)
                    runs, log_meta, note = _read(path, kind, opts_here, opts.run_id or default_id)
                    sha = sha_future.result()
        n_runs = max(len(logs), len(runs.run_ids))
        if opts.run_id is not None and n_runs > 1:
            raise input_error(f"--run-id names one run but the input holds {n_runs}", path=path,
                              expected="one log per command with --run-id, or no --run-id")
        for k, log_id in enumerate(runs.run_ids):
            run_id = runs.run_ids[k] = opts.prefixed(opts.run_id or log_id, default_id)
            if run_id in seen:
                raise input_error(f"run_id {run_id!r} comes from two logs ({seen[run_id]} and "
                                  f"{path})", path=path,
                                  expected="distinct file names, one log per --run-id, or "
                                           "--run-prefix '{file}-' (each run id after its log's "
                                           "name)")
            seen[run_id] = path
            meta = _meta(run_id, path, kind, sha, opts, runs, k, log_meta.get(log_id), size)
            if runs.open_line is not None:
                meta.source.update(open_line_source(runs, k))
            out.append((meta, runs, k, note))
    return out


@contextmanager
def unreadable_as_input_error(path: Path) -> Iterator[None]:
    """What a reader could not name better (an unreadable file, a symlink loop, a file too big
    for memory, text that is not UTF-8, pyarrow refusing a value) becomes one InputError naming
    the log; errors a reader raised on purpose pass through."""
    try:
        yield
    except RLScaleError:
        raise
    except OSError as exc:
        where = exc.filename if exc.filename is not None else path
        raise input_error(f"cannot read: {exc.strerror or exc}", path=where) from None
    except MemoryError:
        raise input_error("too large to read into memory", path=path) from None
    except RecursionError:
        raise input_error("nested too deeply to read", path=path) from None
    except UnicodeDecodeError as exc:
        raise input_error(f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start})", path=path, expected="UTF-8 text") from None
    except (ValueError, TypeError, OverflowError, KeyError, IndexError, pa.ArrowException) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise input_error(f"cannot read: {first}", path=path) from None


def ingest_paths(paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
                 store: Store | str | os.PathLike[str], *, dry_run: bool = False,
                 hold_last_line: bool = False, max_expand: int | str | None = None,
                 **options: Any) -> list[IngestResult]:
    """Ingest logs into ``store``; returns one :class:`IngestResult` per run.

    All logs are read and validated, and every run is checked against the store, before anything
    is written: a bad file anywhere in ``paths`` raises :class:`InputError` (or a conflicting run
    :class:`StoreError`) and leaves the store byte-for-byte as it was. ``replace=True`` overwrites
    runs that exist with a different source; the same source again is ``"unchanged"``.

    A log that grew since its run was ingested (same path, format and options, new sha256) is
    ``"appended"``: its stored points must all still be in it, unchanged (else
    :class:`InputError` naming the line), and the run's points become the log's.
    ``hold_last_line`` leaves out an unterminated last line of a CSV/JSONL log (a writer
    mid-line; ``rlscale watch``); without it such a line is left out only when it does not read.
    ``max_expand`` (bytes, or ``"8G"``) bounds what each compressed log may expand to
    (:mod:`.compressed`; default ``$RLSCALE_MAX_EXPAND`` or max(100x, 256 MiB)); it is not a
    reading option, so it is not recorded with the runs.
    """
    st = as_store(store)
    plist = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    opts = _options(options)
    with expand_limit(max_expand):
        items = _read_all(plist, opts, hold=hold_last_line)
    plans: list[WriteStatus] = []
    added: list[int | None] = []
    for meta, runs, k, _ in items:
        plan, n_new = _plan(st, meta, runs, k, replace=opts.replace)
        plans.append(plan)
        added.append(n_new)
    results = [IngestResult(meta.run_id, meta.source["path"], meta.source["format"],
                            runs.n_points(k), runs.metrics(k), n_dropped=runs.n_dropped(k),
                            note=note, added=n_new, held_line=runs.held_line)
               for (meta, runs, k, note), n_new in zip(items, added)]
    if dry_run:
        return results
    todo = [((meta, partial(runs.table, k)), res)
            for (meta, runs, k, _), res, plan in zip(items, results, plans)
            if plan in ("written", "replaced")]
    statuses = st.write_tables([item for item, _ in todo], replace=opts.replace)
    for (_, res), status in zip(todo, statuses):
        res.status = status
    for (meta, runs, k, _), res, plan in zip(items, results, plans):
        if plan == "appended":
            meta.created = st.read_meta(meta.run_id).created  # the run is the same run
            st.update_run(meta, runs.table(k))
        if plan in ("unchanged", "appended"):
            res.status = plan
    return results


def _plan(st: Store, meta: RunMeta, runs: RunSet, k: int, *,
          replace: bool) -> tuple[WriteStatus, int | None]:
    """What writing run ``k`` would do, and how many points it adds when its log grew."""
    if not st.has_run(meta.run_id):
        return st.plan_write(meta, replace=replace), None
    old = st.read_meta(meta.run_id).source
    if same_source(old, meta.source):
        return "unchanged", None
    if not replace and _same_log(old, meta.source):
        table = st.read_points_table(meta.run_id)
        return "appended", check_growth(table, runs, k, run_id=meta.run_id, old_source=old)
    return st.plan_write(meta, replace=replace), None


def _same_log(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    """The same log file read the same way (its content may differ): a log that may have grown."""
    if not old or not new or old.get("format") not in TEXT_FORMATS:
        return False
    if (old.get("format"), old.get("options")) != (new.get("format"), new.get("options")):
        return False
    a, b = Path(str(old.get("path"))), Path(str(new.get("path")))
    try:
        return a == b or os.path.samefile(a, b)
    except OSError:
        return False


def ingest_path(path: str | os.PathLike[str], store: Store | str | os.PathLike[str],
                **options: Any) -> list[IngestResult]:
    """:func:`ingest_paths` for one file or directory."""
    return ingest_paths([path], store, **options)
