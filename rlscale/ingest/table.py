"""Tables (CSV/TSV, JSONL/JSON, Parquet), long or wide, -> :class:`RawPoints`.

Long tables have ``metric`` and ``value`` columns (one row per point); wide tables have one
column per metric (one row per step; an empty cell means "not logged at this step"). W&B's two
export shapes are recognised: ``run.history()`` frames (``_step``, ``_runtime``, ``_timestamp``)
and the chart "Export CSV" (``Step``, ``<run> - <metric>``, ``<run> - <metric>__MIN``/``__MAX``).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from rlscale.ingest.columns import compute_axis, find_step_column, is_step_like, numeric, steps
from rlscale.ingest.options import IngestOptions, sanitize_run_id
from rlscale.ingest.points import RawPoints
from rlscale.ingest.source import Source

_EXPORT_COL = re.compile(r"^(?P<run>.+?) - (?P<metric>.+)$")
_WANDB_INTERNAL = ("_step", "_runtime", "_timestamp")


def _find(names: list[str], wanted: str) -> str | None:
    return next((n for n in names if n.lower() == wanted), None)


def is_wandb_export(names: list[str]) -> bool:
    others = [n for n in names if n != "Step"]
    return "Step" in names and bool(others) and all(_EXPORT_COL.match(n) for n in others)


def table_points(table: pa.Table, src: Source, opts: IngestOptions) -> RawPoints:
    """Turn a read table into points, applying ``--step-col/--x-col/--metric/--run-col``."""
    names = list(table.column_names)
    if table.num_rows == 0:
        raise src.error("no data rows", expected="a header and at least one row of points")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise src.error("column name appears twice", field=dup, expected="unique column names")
    step_wanted = opts.x_col if opts.x_unit == "step" else opts.step_col
    step_col = find_step_column(names, src, step_wanted)
    metric_col, value_col = _find(names, "metric"), _find(names, "value")
    run_col = None
    if opts.run_col is not None:
        if opts.run_col not in names:
            raise src.error(f"no column {opts.run_col!r} (from --run-col)", field=opts.run_col,
                            expected=f"one of the columns {names}")
        run_col = opts.run_col
    axes, axis_fields = _axes(table, names, src, opts, skip={step_col, run_col})
    common = {
        "step": steps(table[step_col], name=step_col, src=src), "step_field": step_col,
        "axes": axes, "axis_fields": axis_fields,
    }
    taken = {step_col, run_col, *axis_fields.values()}
    if metric_col and value_col:
        return _long(table, src, opts, metric_col, value_col, run_col, common)
    return _wide(table, src, opts, names, taken, run_col, common)


def _axes(table: pa.Table, names: list[str], src: Source, opts: IngestOptions,
          skip: set) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    fields: dict[str, str] = {}
    if opts.x_col is not None and opts.x_unit != "step":
        if opts.x_col not in names:
            raise src.error(f"no column {opts.x_col!r} (from --x-col)", field=opts.x_col,
                            expected=f"one of the columns {names}")
        fields[opts.x_unit] = opts.x_col
    for name in names:
        axis = compute_axis(_EXPORT_COL.sub(r"\g<metric>", name))
        if axis is None or name in skip or name == opts.x_col or name.endswith(("__MIN", "__MAX")):
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


def _long(table, src, opts, metric_col, value_col, run_col, common) -> RawPoints:
    metric, metric_names = _codes(table[metric_col], src, metric_col)
    value = numeric(table[value_col], name=value_col, src=src, required=True)
    empty = table[value_col].is_null().to_numpy(zero_copy_only=False)
    if empty.any() and not opts.drop_nonfinite:
        raise src.error("empty cell", row=int(np.flatnonzero(empty)[0]), field=value_col,
                        expected="a finite number (pass --drop-nonfinite to drop such points)")
    raw = RawPoints(metric=metric, metric_names=metric_names, value=value,
                    row=None, **common)
    if run_col is not None:
        raw.run, raw.run_names = _codes(table[run_col], src, run_col)
    if opts.metrics:
        missing = sorted(set(opts.metrics) - set(metric_names))
        if missing:
            raise src.error(f"no metric(s) {missing} (from --metric)", field=metric_col,
                            expected=f"metrics among {sorted(metric_names)}")
        wanted = np.array([m in opts.metrics for m in metric_names] + [False])
        raw.take(wanted[raw.metric])
    return raw


def _wide(table, src, opts, names, taken, run_col, common) -> RawPoints:
    export = is_wandb_export(names)
    history = opts.format == "wandb" or any(n in names for n in _WANDB_INTERNAL)
    cols: list[tuple[str, str, str | None]] = []  # (column, metric name, W&B run)
    for name in names:
        if name in taken or is_step_like(name):
            continue
        if export:
            if name.endswith(("__MIN", "__MAX")):
                continue
            m = _EXPORT_COL.match(name)
            cols.append((name, m["metric"], m["run"]))
        elif not (history and name.startswith("_")):
            cols.append((name, name, None))
    if opts.metrics:
        have = {m for _, m, _ in cols}
        missing = sorted(set(opts.metrics) - have)
        if missing:
            raise src.error(f"no metric column(s) {missing} (from --metric)", field=missing[0],
                            expected=f"columns among {sorted(have)}")
        cols = [c for c in cols if c[1] in opts.metrics]
    parts, kept, skipped = [], [], []
    for name, metric, run in cols:
        col = table[name]
        vals = numeric(col, name=name, src=src, required=bool(opts.metrics))
        if vals is None:
            skipped.append(name)
            continue
        present = np.flatnonzero(~col.is_null().to_numpy(zero_copy_only=False))
        parts.append((present, vals[present], len(kept)))
        kept.append((name, metric, run))
    if not kept and skipped:
        col = table[skipped[0]]
        i = int(np.flatnonzero(~col.is_null().to_numpy(zero_copy_only=False))[0])
        raise src.error(f"cannot parse {col[i].as_py()!r} as a number, and no other column holds "
                        "metrics", row=i, field=skipped[0], expected="a number")
    if not kept:
        raise src.error("no numeric metric columns", expected="at least one column of numbers "
                        "besides the step and compute columns")
    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    raw = RawPoints(
        step=common["step"][rows], step_field=common["step_field"],
        metric=np.concatenate([np.full(len(p[0]), p[2], np.int32) for p in parts]),
        metric_names=[m for _, m, _ in kept], value_fields=[n for n, _, _ in kept],
        value=np.concatenate([p[1] for p in parts]), row=rows.astype(np.int64),
        axes={a: v[rows] for a, v in common["axes"].items()}, axis_fields=common["axis_fields"],
    )
    runs = sorted({r for _, _, r in kept if r is not None})
    if run_col is not None:
        codes, raw.run_names = _codes(table[run_col], src, run_col)
        raw.run = codes[rows]
    elif len(runs) > 1:
        raw.run_names = [sanitize_run_id(r) for r in runs]
        per_col = np.array([runs.index(r) for _, _, r in kept], np.int32)
        raw.run = per_col[raw.metric]
    return raw
