"""Logs that are still growing: a stable snapshot of a text log, and the check that a log only grew.

A training job appends lines to its CSV/JSONL log while we read it. :func:`snapshot` maps the
file once and takes its first ``size`` bytes: the parse and the sha256 both see exactly those
bytes, however much the writer appends meanwhile (an append-only file's prefix never changes).
A last line without its newline may be one the writer is still in the middle of: ``hold=True``
leaves it out (``rlscale watch``), and :func:`rlscale.ingest.pipeline` leaves it out when the
file does not parse with it; either way it is read, whole, the next time.

:func:`check_growth` compares a run's stored points with the points the grown log gives now:
every stored point must still be there with the same value and compute, or it is an error
naming the line that changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rlscale.ingest.points import RunSet
from rlscale.store import COMPUTE_AXES

TEXT_FORMATS = ("csv", "jsonl")
_CHUNK = 1 << 24


@dataclass
class Snapshot:
    """The first ``data.size`` bytes of a text log; ``held_line`` is the 1-based line left out
    (an unterminated last line), or None when the snapshot ends at the end of a line or file."""

    path: Path
    data: pa.Buffer
    full: pa.Buffer  # every byte there was when the file was mapped
    held_line: int | None = None

    @property
    def size(self) -> int:
        return self.data.size

    def sha256(self) -> str:
        """sha256 of the bytes read (equal to :func:`rlscale.ingest.source.sha256_of` of the file
        when nothing is held back and the file did not grow meanwhile)."""
        return hashlib.sha256(memoryview(self.data)).hexdigest()

    def tail(self) -> bytes:
        """The bytes after the last newline of the file as mapped (b"" when it ends with one)."""
        n = self.full.size
        start = n
        while start > 0:
            lo = max(0, start - (1 << 16))
            chunk = self.full.slice(lo, start - lo).to_pybytes()
            k = chunk.rfind(b"\n")
            if k >= 0:
                return self.full.slice(lo + k + 1).to_pybytes()
            start = lo
        return self.full.to_pybytes()

    def without_tail(self) -> Snapshot:
        """This snapshot minus an unterminated last line (itself if there is none)."""
        tail = self.tail()
        if not tail.strip():
            return self
        keep = self.full.size - len(tail)
        lines = sum(self.full.slice(i, min(_CHUNK, keep - i)).to_pybytes().count(b"\n")
                    for i in range(0, keep, _CHUNK))
        return Snapshot(self.path, self.full.slice(0, keep), self.full, held_line=lines + 1)


def snapshot(path: Path, *, hold: bool = False) -> Snapshot:
    """Map ``path`` once; with ``hold`` leave out an unterminated last line."""
    if path.stat().st_size == 0:
        data = pa.py_buffer(b"")
    else:
        with pa.memory_map(str(path)) as mm:
            data = mm.read_buffer(mm.size())
    snap = Snapshot(path, data, data)
    return snap.without_tail() if hold else snap


def open_line_source(runs: RunSet, k: int) -> dict[str, Any]:
    """``{"open_line": {"line": N, "points": [[metric, step], ...]}}``: the points run ``k`` took
    from an unterminated last line that did read (``4,0.`` of a writer about to write ``4,0.41``).
    The next ingest of the grown log may change or drop exactly these points."""
    raw = runs.raw
    s, e = runs.bounds[k]
    rows = np.arange(len(raw.step)) if raw.row is None else raw.row
    last = rows.max(initial=-1)
    mine = np.flatnonzero(rows[s:e] == last) + s
    points = [[raw.metric_names[raw.metric[i]], int(raw.step[i])] for i in mine]
    return {"open_line": {"line": runs.open_line, "points": points}} if points else {}


def check_growth(old: pa.Table, runs: RunSet, k: int, *, run_id: str,
                 old_source: dict[str, Any] | None = None) -> int:
    """Number of points run ``k`` of ``runs`` (the grown log) adds to ``old`` (its stored points).

    Raises :class:`~rlscale.errors.InputError` naming the file, line and column when a stored
    point's value or compute differs in the log now, or when stored points are no longer in it.
    Points that came from an unterminated last line (``old_source["open_line"]``, see
    :func:`open_line_source`) are exempt: that line may have been cut mid-number.
    """
    new = runs.table(k)
    cols = ["metric", "step", "value", *COMPUTE_AXES]
    before = _frame(old.select(cols))
    n_before = len(before)
    exempt = ((old_source or {}).get("open_line") or {}).get("points") or []
    if exempt:
        keys = pd.MultiIndex.from_frame(before[["metric", "step"]])
        drop = keys.isin([(str(m), int(st)) for m, st in exempt])
        before = before[~drop]
    after = _frame(new.select(cols))
    after["_i"] = np.arange(len(after))
    both = before.merge(after, on=["metric", "step"], how="left", suffixes=("", "_new"),
                        indicator=True)
    src, raw = runs.source, runs.raw
    gone = both[both["_merge"] == "left_only"]
    expected = ("a log that only grew since it was ingested (its old points unchanged); pass "
                "--replace to overwrite the run")
    if len(gone):
        first = gone.iloc[0]
        more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
        raise src.error(f"step {int(first['step'])} of metric {first['metric']!r}{more}, "
                          f"stored for run {run_id!r}, is no longer in the log",
                     field=raw.step_field, expected=expected)
    for col in ("value", *COMPUTE_AXES):
        a, b = both[col].to_numpy(float), both[f"{col}_new"].to_numpy(float)
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if differ.any():
            j = int(np.flatnonzero(differ)[0])
            row = both.iloc[j]
            i = runs.bounds[k][0] + int(row["_i"])
            field = (raw.value_field(int(raw.metric[i])) if col == "value"
                     else raw.axis_fields.get(col, col))
            what = "value" if col == "value" else col
            raise src.error(f"{what} {_n(b[j])} of metric {row['metric']!r} at step "
                              f"{int(row['step'])} differs from {_n(a[j])} stored for run "
                              f"{run_id!r}", row=raw.row_of(i), field=field, expected=expected)
    return len(after) - n_before


def _frame(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    for axis in COMPUTE_AXES:
        df[axis] = df[axis].astype(float)  # nullable ints -> floats with NaN, compared as such
    return df


def _n(x: float) -> str:
    return repr(float(x))
