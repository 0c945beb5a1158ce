"""Tables (CSV/TSV, JSONL/JSON, Parquet), long or wide, -> :class:`RawPoints`.

Long tables have ``metric`` and ``value`` columns (one row per point); wide tables have one
column per metric (one row per step; an empty cell means "not logged at this step"). W&B
``run.history()`` frames (``_step``, ``_runtime``, ``_timestamp``) are wide tables; chart exports
(W&B "Export CSV", TensorBoard "Download CSV") are read by :mod:`.exports`.

Runs: ``--run-col`` (repeatable: the values joined), else a column named like
:data:`RUN_COLUMNS`, splits rows into runs; the values become run ids the way file names do
(:func:`sanitize_run_id`). Columns ``seed`` and ``recipe`` (or ``--seed-col``/``--recipe-col``)
that are constant within each run are that run's seed and recipe, not metrics; other text columns
constant within each run become its metadata. Metadata a reader put in the table's schema
(``rlscale.meta``: a trainer_state.json's final summary) goes to every run.
"""

from __future__ import annotations

import json
import shlex
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rlscale.errors import InputError
from rlscale.ingest.columns import (
    COUNTERS_AND_TIMES,
    RUN_COLUMNS,
    STEP_NAMES,
    compute_axis,
    find_step_column,
    is_step_like,
    numeric,
    step_candidates,
    steps,
)
from rlscale.ingest.exports import (
    is_tensorboard_csv,
    tensorboard_csv_points,
    wandb_export_points,
    wandb_export_shape,
)
from rlscale.ingest.options import IngestOptions, sanitize_run_id
from rlscale.ingest.points import RawPoints
from rlscale.ingest.source import Source

_WANDB_INTERNAL = ("_step", "_runtime", "_timestamp")
META_KEY = b"rlscale.meta"  # schema metadata: JSON of metadata every run of the table gets


def with_meta(table: pa.Table, meta: dict[str, Any]) -> pa.Table:
    """``table`` carrying ``meta`` for :func:`table_points` to hand to every run."""
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}) if meta else table


def _find(names: list[str], wanted: str) -> str | None:
    return next((n for n in names if n.lower() == wanted), None)


def table_points(table: pa.Table, src: Source, opts: IngestOptions) -> RawPoints:
    """Turn a read table into points, applying ``--step-col/--x-col/--metric/--run-col``."""
    names = list(table.column_names)
    if table.num_rows == 0:
        raise src.error("no data rows", expected="a header and at least one row of points")
    for k, name in enumerate(names):
        if not name.strip() and table[k].null_count < table.num_rows:
            i = int(np.flatnonzero(~table[k].is_null().to_numpy(zero_copy_only=False))[0])
            raise src.error(f"column {k + 1} has no name in the header but holds a value here",
                            row=i, expected="a name for every column that holds values (a "
                            "delimiter at the end of the header adds an unnamed column)")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise src.error("column name appears twice", field=dup, expected="unique column names")
    plain = not (opts.run_cols or opts.step_col or opts.x_col)
    if plain and is_tensorboard_csv(names):
        return tensorboard_csv_points(table, src, opts)
    shape = wandb_export_shape(names, src) if plain else None
    if shape:
        return wandb_export_points(table, src, opts, shape)
    step_wanted = opts.x_col if opts.x_unit == "step" else opts.step_col
    try:
        step_col = find_step_column(names, src, step_wanted, table)
    except InputError:
        _step_and_run_hint(table, names, src, opts, step_wanted)
        raise
    metric_col, value_col = _find(names, "metric"), _find(names, "value")
    run_cols = _run_columns(names, src, opts)
    run, run_names = _run_codes(table, run_cols, src) if run_cols else (None, [])
    per_run, meta_cols = _run_meta(table, names, src, opts, run, len(run_names),
                               skip={step_col, metric_col, value_col, *run_cols})
    axes, axis_fields = _axes(table, names, src, opts, skip={step_col, *run_cols, *meta_cols})
    common = {
        "step": steps(table[step_col], name=step_col, src=src), "step_field": step_col,
        "axes": axes, "axis_fields": axis_fields,
    }
    taken = {step_col, *run_cols, *meta_cols, *axis_fields.values()}
    if metric_col and value_col:
        raw = _long(table, src, opts, metric_col, value_col, common)
    else:
        raw = _wide(table, src, opts, names, taken, common)
    if run is not None:
        raw.run = run if raw.row is None else run[raw.row]
        raw.run_names = run_names
    raw.run_meta = per_run
    meta = (table.schema.metadata or {}).get(META_KEY)
    raw.meta = json.loads(meta) if meta else {}
    if not run_cols:
        raw.dup_hint = lambda: _run_hint(table, names, step_col, metric_col, taken)
    return raw


def _run_columns(names: list[str], src: Source, opts: IngestOptions) -> tuple[str, ...]:
    for col in opts.run_cols:
        if col not in names:
            raise src.error(f"no column {col!r} (from --run-col)", field=col,
                            expected=f"one of the columns {names}")
    if opts.run_cols:
        return opts.run_cols
    found = next((c for want in RUN_COLUMNS if (c := _find(names, want))), None)
    return (found,) if found else ()


def _text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col if pa.types.is_string(col.type) else col.cast(pa.string())


def _run_codes(table: pa.Table, cols: tuple[str, ...], src: Source) -> tuple[np.ndarray, list[str]]:
    """Each row's run code and the run ids: the run columns' values joined by ``-``, sanitised."""
    for col in cols:
        if table[col].null_count:
            i = int(np.flatnonzero(table[col].is_null().to_numpy(zero_copy_only=False))[0])
            raise src.error("empty cell", row=i, field=col, expected="the name of the row's run")
    codes = None
    typ = table[cols[0]].type
    if len(cols) == 1 and pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type):
        # the CSV reader's dictionary already is the encoding: no 10M strings to build (a
        # dictionary with unused or repeated values, as Parquet may hold, is encoded afresh)
        codes, values = _codes(table[cols[0]], src, cols[0])
        if len(set(values)) != len(values) or not np.bincount(codes, minlength=len(values)).all():
            codes = None
    if codes is None:
        texts = [_text(table[col]) for col in cols]
        joined = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, "-")
        enc = joined.combine_chunks().dictionary_encode()
        values = [str(v) for v in enc.dictionary.to_pylist()]
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    ids = [sanitize_run_id(v) for v in values]
    if len(set(ids)) != len(ids):  # two values that sanitise alike: merge their codes? no: error
        seen: dict[str, int] = {}
        for k, rid in enumerate(ids):
            if rid in seen:
                row = int(np.flatnonzero(codes == k)[0])
                raise src.error(f"runs {values[seen[rid]]!r} and {values[k]!r} both give run id "
                                f"{rid!r}", row=row, field=cols[0],
                                expected="run names that differ in letters, digits or . _ = + -")
            seen[rid] = k
    return codes, ids


def _run_meta(table: pa.Table, names: list[str], src: Source, opts: IngestOptions,
              run: np.ndarray | None, n_runs: int, skip: set) -> tuple[list[dict], set[str]]:
    """Per-run metadata from columns constant within each run, and the columns it used."""
    split = run
    run = np.zeros(table.num_rows, np.int32) if run is None else run
    n_runs = max(n_runs, 1)
    per_run: list[dict[str, Any]] = [{} for _ in range(n_runs)]
    used: set[str] = set()
    wanted = {"seed": opts.seed_col, "recipe": opts.recipe_col}
    for key, col in wanted.items():
        if col is not None and col not in names:
            raise src.error(f"no column {col!r} (from --{key}-col)", field=col,
                            expected=f"one of the columns {names}")
    for name in names:
        if name in skip:
            continue
        key = next((k for k, c in wanted.items() if c == name), None)
        explicit = key is not None
        if key is None and name.lower() in ("seed", "recipe") and wanted[name.lower()] is None:
            key = name.lower()
        col = table[name]
        is_text = pa.types.is_string(col.type) or pa.types.is_dictionary(col.type) or (
            pa.types.is_large_string(col.type))
        if key is None and (not is_text or split is None):
            continue  # other text columns: metadata only of runs split by a column
        values = _per_run_value(col, run, n_runs, key == "seed", src, name, explicit)
        if values is None:
            continue
        for k, v in enumerate(values):
            if v is not None:
                per_run[k][key or name] = v
        used.add(name)
    return per_run, used


def _per_run_value(col: pa.ChunkedArray, run: np.ndarray, n_runs: int, integer: bool, src: Source,
                   name: str, explicit: bool) -> list[Any] | None:
    """The one value each run has in ``col`` (None where all empty), or None if some run has
    two (an error naming the row when the column was asked for)."""
    if integer:
        vals = numeric(col, name=name, src=src, required=explicit)
        if vals is None:
            return None
        ok = np.isnan(vals) | (vals == np.floor(vals))
        if not ok.all():
            if explicit:
                i = int(np.flatnonzero(~ok)[0])
                raise src.error(f"seed {vals[i]!r} is not a whole number", row=i, field=name,
                                expected="an integer seed")
            return None
        cells = pd.Series(vals).astype("Int64")
    else:
        cells = pd.Series(_text(col).to_pandas(), dtype=object)
        present = cells.dropna()
        if not explicit and (present.empty or pd.notna(pd.to_numeric(present.iloc[:1],
                                                                  errors="coerce").iloc[0])):
            return None  # a number first: a metric column with a bad cell, not a name
    frame = pd.DataFrame({"run": run, "value": cells}).dropna()
    counts = frame.groupby("run")["value"].nunique()
    if (counts > 1).any():
        if explicit:
            r = int(counts.index[counts > 1][0])
            rows = frame.index[frame["run"] == r]
            vals_r = frame.loc[rows, "value"]
            i = int(rows[(vals_r != vals_r.iloc[0]).to_numpy()][0])
            raise src.error(f"{_py(vals_r.loc[i])!r} here, {_py(vals_r.iloc[0])!r} earlier in the "
                            "same run", row=i, field=name, expected="one value per run")
        return None
    first = frame.groupby("run")["value"].first()
    return [_py(first[r]) if r in first.index else None for r in range(n_runs)]


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _step_and_run_hint(table: pa.Table, names: list[str], src: Source, opts: IngestOptions,
                       step_wanted: str | None) -> None:
    """With no step column, a likely one, and rows whose steps would then repeat per value of
    run-like columns: one error naming every option the table needs at once (a long table of
    many runs, such as a paper's released curves)."""
    if step_wanted is not None or opts.run_cols or any(n.lower() in RUN_COLUMNS for n in names):
        return
    cands = step_candidates(table)
    if not cands:
        return
    hint = _run_hint(table, names, cands[0], _find(names, "metric"), set())
    if hint is None:
        return
    runs = hint.split("pass ", 1)[1]
    raise src.error("no step column", field="step",
                    expected=f"a column named one of {list(STEP_NAMES)} (any case); "
                             f"{cands[0]!r} holds non-negative whole numbers and its values "
                             f"repeat for each value of the run-like columns: pass --step-col "
                             f"{shlex.quote(cands[0])} {runs}")


def _run_hint(table: pa.Table, names: list[str], step_col: str, metric_col: str | None,
              taken: set) -> str | None:
    """``--run-col ...`` that would make each step appear once per run (text columns of few
    values, tried alone, then in pairs and threes), or None."""
    n = table.num_rows
    cands = [c for c in names if c not in taken and c not in (step_col, metric_col)
             and (pa.types.is_string(table[c].type) or pa.types.is_dictionary(table[c].type))
             and 1 < pc.count_distinct(table[c]).as_py() <= max(n // 2, 1)]
    if not cands:
        return None
    frame = table.to_pandas().drop_duplicates()
    base = [step_col] + ([metric_col] if metric_col else [])
    for size in range(1, min(3, len(cands)) + 1):
        for combo in combinations(cands, size):
            if not frame.duplicated([*combo, *base]).any():
                opts = " ".join(f"--run-col {shlex.quote(c)}" for c in combo)
                cols = ", ".join(map(repr, combo))
                return (f"one value per (step, metric) and run; the steps repeat for each value of "
                        f"{cols}, which look like run names: pass {opts}")
    return None


def _axes(table: pa.Table, names: list[str], src: Source, opts: IngestOptions,
          skip: set) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    fields: dict[str, str] = {}
    if opts.x_col is not None and opts.x_unit != "step":
        if opts.x_col not in names:
            raise src.error(f"no column {opts.x_col!r} (from --x-col)", field=opts.x_col,
                            expected=f"one of the columns {names}")
        fields[opts.x_unit] = opts.x_col
    for name in names:
        axis = compute_axis(name)
        if axis is None or name in skip or name == opts.x_col:
            continue
        if axis in fields:
            if fields[axis] == opts.x_col:
                continue
            raise src.error(f"two columns give {axis}: {fields[axis]!r} and {name!r}", field=name,
                            expected=f"one; pick it with --x-col COL --x-unit {axis}")
        fields[axis] = name
    axes = {a: numeric(table[c], name=c, src=src, required=True) for a, c in fields.items()}
    return axes, fields


def _codes(col: pa.ChunkedArray, src: Source, name: str) -> tuple[np.ndarray, list[str]]:
    if not pa.types.is_dictionary(col.type):
        col = col.cast(pa.string()).dictionary_encode()
    col = col.unify_dictionaries() if isinstance(col, pa.ChunkedArray) else col
    if col.null_count:
        i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise src.error("empty cell", row=i, field=name, expected="a name")
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not chunks:
        return np.zeros(0, np.int32), []
    names = chunks[0].dictionary.to_pylist()
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])
    return codes.astype(np.int32, copy=False), [str(n) for n in names]


def _long(table, src, opts, metric_col, value_col, common) -> RawPoints:
    metric, metric_names = _codes(table[metric_col], src, metric_col)
    value = numeric(table[value_col], name=value_col, src=src, required=True)
    empty = table[value_col].is_null().to_numpy(zero_copy_only=False)
    if empty.any() and not opts.drop_nonfinite:
        raise src.error("empty cell", row=int(np.flatnonzero(empty)[0]), field=value_col,
                        expected="a finite number (pass --drop-nonfinite to drop such points)")
    raw = RawPoints(metric=metric, metric_names=metric_names, value=value,
                    row=None, **common)
    if opts.metrics:
        missing = sorted(set(opts.metrics) - set(metric_names))
        if missing:
            raise src.error(f"no metric(s) {missing} (from --metric)", field=metric_col,
                            expected=f"metrics among {sorted(metric_names)}")
        wanted = np.array([m in opts.metrics for m in metric_names] + [False])
        raw.take(wanted[raw.metric])
    return raw


def _wide(table, src, opts, names, taken, common) -> RawPoints:
    history = opts.format == "wandb" or any(n in names for n in _WANDB_INTERNAL)
    cols = [n for n in names if n not in taken and not is_step_like(n)
            and not (history and n.startswith("_"))]
    aux: set[str] = set()
    if opts.metrics:
        missing = sorted(set(opts.metrics) - set(cols))
        if missing:
            raise src.error(f"no metric column(s) {missing} (from --metric)", field=missing[0],
                            expected=f"columns among {sorted(cols)}")
        aux = {c for c in cols if c in COUNTERS_AND_TIMES and c not in opts.metrics}
        cols = [c for c in cols if c in opts.metrics or c in aux]
    parts, kept, skipped = [], [], []
    for name in cols:
        col = table[name]
        vals = numeric(col, name=name, src=src, required=bool(opts.metrics))
        if vals is None:
            skipped.append(name)
            continue
        present = np.flatnonzero(~col.is_null().to_numpy(zero_copy_only=False))
        parts.append((present, vals[present], len(kept)))
        kept.append(name)
    if not kept and skipped:
        col = table[skipped[0]]
        i = int(np.flatnonzero(~col.is_null().to_numpy(zero_copy_only=False))[0])
        raise src.error(f"cannot parse {col[i].as_py()!r} as a number, and no other column holds "
                        "metrics", row=i, field=skipped[0], expected="a number")
    if not kept:
        raise src.error("no numeric metric columns", expected="at least one column of numbers "
                        "besides the step and compute columns")
    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    return RawPoints(
        aux=aux, step=common["step"][rows], step_field=common["step_field"],
        metric=np.concatenate([np.full(len(p[0]), p[2], np.int32) for p in parts]),
        metric_names=list(kept), value_fields=list(kept),
        value=np.concatenate([p[1] for p in parts]), row=rows.astype(np.int64),
        axes={a: v[rows] for a, v in common["axes"].items()}, axis_fields=common["axis_fields"],
    )
