"""Chart exports, one file per plotted curve set: W&B's "Export CSV" and TensorBoard's "Download CSV".

* W&B: an x column (``Step``, or ``Relative Time (Process)``/``Relative Time (Wall)``/``Wall Time``
  when the chart was drawn against time) and one column per run: ``<run> - <metric>`` with its
  ``__MIN``/``__MAX`` envelope, or a bare ``<run>`` (a chart of one metric, named then by
  ``--metric`` or the file). Every W&B run becomes a run named after it (a single one is named
  like any one-run log, after the file, its W&B name kept as ``wandb_run`` metadata); the
  envelope columns are dropped. A chart
  against time needs each run's ``<run> - _step`` column for its steps; the time is wall_s.
* TensorBoard: ``Wall time,Step,Value``. The metric is the tag of TensorBoard's file name
  (``run-<run>-tag-<tag>.csv``), else the file's name, or ``--metric NAME``; ``Wall time`` (UNIX
  seconds) becomes wall_s, counted from the first row.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from rlscale.ingest.columns import numeric, steps
from rlscale.ingest.options import IngestOptions, sanitize_run_id
from rlscale.ingest.points import RawPoints
from rlscale.ingest.source import Source

EXPORT_COL = re.compile(r"^(?P<run>.+?) - (?P<metric>.+)$")
ENVELOPE = ("__MIN", "__MAX")
WANDB_X = {"Step": "step", "Relative Time (Process)": "wall_s", "Relative Time (Wall)": "wall_s",
           "Wall Time": "wall_s"}
TB_CSV = ["wall time", "step", "value"]
_TB_NAME = re.compile(r"^run[-_](?P<run>.+)[-_]tag[-_](?P<tag>.+)$")


def is_tensorboard_csv(names: list[str]) -> bool:
    return [n.strip().lower() for n in names] == TB_CSV


def wandb_export_shape(names: list[str], src: Source) -> str | None:
    """``"runs"`` (``<run> - <metric>`` columns), ``"bare"`` (one column per run, with its
    ``__MIN``/``__MAX``, or every header cell quoted as W&B writes it) or None."""
    if not names or names[0] not in WANDB_X or len(names) < 2:
        return None
    others = [n for n in names[1:] if not n.endswith(ENVELOPE)]
    if others and all(EXPORT_COL.match(n) for n in others):
        return "runs"
    enveloped = all(f"{n}__MIN" in names and f"{n}__MAX" in names for n in others)
    if others and (enveloped or (names[0] == "Step" and _quoted_header(src))):
        return "bare"
    return None


def _quoted_header(src: Source) -> bool:
    try:
        with open(src.path, encoding="utf-8-sig", errors="replace") as fh:
            head = fh.readline().strip()
    except OSError:
        return False
    return head.startswith('"Step",') and all(
        f.startswith('"') and f.endswith('"') for f in head.split('","'))


def _file_metric(src: Source, opts: IngestOptions, what: str) -> str:
    if len(opts.metrics) > 1:
        raise src.error(f"--metric given {len(opts.metrics)} times for {what} of one metric",
                        field="--metric", expected="one --metric NAME (the metric's name)")
    if opts.metrics:
        return opts.metrics[0]
    stem = src.path.name.split(".")[0] or src.path.stem
    m = _TB_NAME.match(stem)
    return m["tag"] if m else stem


def tensorboard_csv_points(table: pa.Table, src: Source, opts: IngestOptions) -> RawPoints:
    wall_col, step_col, value_col = table.column_names
    metric = _file_metric(src, opts, "a TensorBoard CSV")
    step = steps(table[step_col], name=step_col, src=src)
    value = numeric(table[value_col], name=value_col, src=src, required=True)
    wall = numeric(table[wall_col], name=wall_col, src=src, required=True)
    start = np.nanmin(wall) if np.isfinite(wall).any() else 0.0
    return RawPoints(step=step, metric=np.zeros(len(step), np.int32), metric_names=[metric],
                     value=value, row=None, step_field=step_col, value_fields=[value_col],
                     axes={"wall_s": wall - start}, axis_fields={"wall_s": wall_col})


def wandb_export_points(table: pa.Table, src: Source, opts: IngestOptions, shape: str) -> RawPoints:
    names = table.column_names
    x_col = names[0]
    x_axis = WANDB_X[x_col]
    x = (steps(table[x_col], name=x_col, src=src) if x_axis == "step"
         else numeric(table[x_col], name=x_col, src=src, required=True))
    cols: list[tuple[str, str, str]] = []  # (column, run, metric)
    step_cols: dict[str, str] = {}
    for name in names[1:]:
        if name.endswith(ENVELOPE):
            continue
        if shape == "bare":
            cols.append((name, name, _file_metric(src, opts, "a W&B chart")))
            continue
        m = EXPORT_COL.match(name)
        if m["metric"] == "_step":
            step_cols[m["run"]] = name
        else:
            cols.append((name, m["run"], m["metric"]))
    if shape == "runs" and opts.metrics:
        have = sorted({c[2] for c in cols})
        missing = sorted(set(opts.metrics) - set(have))
        if missing:
            raise src.error(f"no metric column(s) {missing} (from --metric)", field=missing[0],
                            expected=f"metrics among {have}")
        cols = [c for c in cols if c[2] in opts.metrics]
    if not cols:
        raise src.error("no metric columns in the W&B export", expected="'<run> - <metric>' columns")
    run_names = sorted({r for _, r, _ in cols})
    parts = []
    for code, (name, run, _) in enumerate(cols):
        vals = numeric(table[name], name=name, src=src, required=True)
        rows = np.flatnonzero(~table[name].is_null().to_numpy(zero_copy_only=False))
        if x_axis == "step":
            step = x[rows]
        elif run in step_cols:
            step = numeric(table[step_cols[run]], name=step_cols[run], src=src, required=True)[rows]
        else:
            raise src.error(f"a W&B chart against {x_col!r} without the run's steps", field=name,
                            expected=f"a '{run} - _step' column (add _step to the chart before "
                                     "exporting), or export the chart against Step")
        parts.append((rows, step, vals[rows], run_names.index(run), code))
    rows = np.concatenate([p[0] for p in parts]).astype(np.int64)
    raw = RawPoints(  # one metric code per column, so an error names the column it came from
        step=np.concatenate([p[1] for p in parts]),
        metric=np.concatenate([np.full(len(p[0]), p[4], np.int32) for p in parts]),
        metric_names=[m for _, _, m in cols], value=np.concatenate([p[2] for p in parts]),
        row=rows, step_field=x_col if x_axis == "step" else "_step",
        value_fields=[n for n, _, _ in cols],
        run=np.concatenate([np.full(len(p[0]), p[3], np.int32) for p in parts]),
        run_names=[sanitize_run_id(r) for r in run_names],
    )
    if len(run_names) == 1:  # one W&B run: named like any single-run log (file or --run-id)
        raw.run, raw.run_names, raw.meta = None, [], {"wandb_run": run_names[0]}
    if x_axis != "step":
        raw.axes["wall_s"] = x[rows]
        raw.axis_fields["wall_s"] = x_col
    if len(set(raw.run_names)) != len(raw.run_names):
        a, b = _clash(run_names)
        raise src.error(f"W&B runs {a!r} and {b!r} give one run id", field=a,
                        expected="run names that differ in letters, digits or . _ = + -")
    return raw


def _clash(names: list[str]) -> tuple[str, str]:
    seen: dict[str, str] = {}
    for n in names:
        rid = sanitize_run_id(n)
        if rid in seen:
            return seen[rid], n
        seen[rid] = n
    raise AssertionError("no clash")
