"""Logs that are still growing: a stable snapshot of a text log, and the check that a log only grew.

A training job appends lines to its CSV/JSONL log while we read it. :func:`snapshot` notes the
file's size once and the parse reads only its first ``size`` bytes, hashing them as it goes
(:class:`PrefixReader`): the parse and the sha256 see exactly those bytes, however much the
writer appends meanwhile (an append-only file's prefix never changes). Nothing is mapped: a
400 MB log costs no 400 MB of resident pages. (The CSV reader parses a log whose size did not
change natively and hashes it beside the parse; see ``readers._parse_csv``.)
A last line without its newline may be one the writer is still in the middle of: ``hold=True``
leaves it out (``rlscale watch``), and :func:`rlscale.ingest.pipeline` leaves it out when the
file does not parse with it; either way it is read, whole, the next time.

:func:`check_growth` compares a run's stored points with the points the grown log gives now:
every stored point must still be there with the same value and compute, or it is an error
naming the line that changed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from rlscale.ingest.points import RunSet
from rlscale.store import COMPUTE_AXES

TEXT_FORMATS = ("csv", "jsonl")


class PrefixReader(io.RawIOBase):
    """A binary file object over the first ``size`` bytes of ``path``. With ``done``, it hashes
    (sha256) what it reads and calls ``done(hexdigest)`` once the last byte is read, so a parser
    reading it to the end and the hash see exactly the same bytes."""

    def __init__(self, path: Path, size: int, done: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self._fh = open(path, "rb", buffering=0)
        self._left = size
        self._hash = hashlib.sha256() if done is not None else None
        self._done = done

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fh.read(want) if want else b""
        self._took(len(data), want, data)
        return data

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")[: self._left]
        n = self._fh.readinto(view) if len(view) else 0
        self._took(n or 0, len(view), view[: n or 0])
        return n or 0

    def _took(self, n: int, want: int, data: Any) -> None:
        if want and n == 0:
            msg = "the file shrank while it was read"
            raise OSError(0, msg, self._fh.name)
        self._left -= n
        if self._hash is not None:
            self._hash.update(data)  # hashlib drops the GIL for large buffers
            if n and not self._left:
                self._done(self._hash.hexdigest())

    def close(self) -> None:
        self._fh.close()
        super().close()


@dataclass
class Snapshot:
    """The first ``size`` bytes of a text log; ``held_line`` is the 1-based line left out
    (an unterminated last line), or None when the snapshot ends at the end of a line or file.
    A reader streams the bytes with :meth:`open`, which hashes them on the way."""

    path: Path
    size: int
    full_size: int  # every byte there was when the snapshot was taken
    held_line: int | None = None
    _sha: str | None = field(default=None, repr=False)  # set once a reader read every byte

    def open(self) -> PrefixReader:
        """A fresh file object over the snapshot's bytes; reading it to the end hashes them
        (:meth:`sha256` then costs nothing)."""
        return PrefixReader(self.path, self.size, done=self._hashed)

    def _hashed(self, digest: str) -> None:
        self._sha = digest

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes of the snapshot (fewer if it is shorter)."""
        with open(self.path, "rb") as fh:
            return fh.read(min(n, self.size))

    def chunks(self, *, hashed: bool = False) -> Iterator[bytearray]:
        """The snapshot's bytes, 1 MiB at a time (hashed on the way if ``hashed``)."""
        with self.open() if hashed else PrefixReader(self.path, self.size) as fh:
            yield from pieces(fh)

    def sha256(self) -> str:
        """sha256 of the snapshot's bytes (equal to :func:`rlscale.ingest.source.sha256_of` of
        the file when nothing is held back and the file did not grow meanwhile)."""
        if self._sha is None:
            for _ in self.chunks(hashed=True):
                pass
        return self._sha if self.size else hashlib.sha256().hexdigest()

    def tail(self) -> bytes:
        """The bytes after the last newline of the file as it was (b"" when it ends with one)."""
        with open(self.path, "rb") as fh:
            start = self.full_size
            while start > 0:
                lo = max(0, start - (1 << 16))
                fh.seek(lo)
                chunk = fh.read(start - lo)
                k = chunk.rfind(b"\n")
                if k >= 0:
                    fh.seek(lo + k + 1)
                    return fh.read(self.full_size - (lo + k + 1))
                start = lo
            fh.seek(0)
            return fh.read(self.full_size)

    def without_tail(self) -> Snapshot:
        """This snapshot minus an unterminated last line (itself if there is none)."""
        tail = self.tail()
        if not tail.strip():
            return self
        keep = self.full_size - len(tail)
        cut = Snapshot(self.path, keep, self.full_size)
        cut.held_line = sum(chunk.count(b"\n") for chunk in cut.chunks()) + 1
        return cut


def pieces(fh: Any, size: int = 1 << 20) -> Iterator[bytearray]:
    """What is left of binary file ``fh``, ``size`` bytes at a time, in ONE reused buffer: each
    piece is valid until the next is read. Reading a large file into fresh ``bytes`` objects
    would fault in (and zero) new pages for every piece; one small buffer stays in the cache."""
    buf = bytearray(size)
    while n := fh.readinto(buf):
        yield buf if n == size else buf[:n]


def snapshot(path: Path, *, hold: bool = False) -> Snapshot:
    """The file's bytes as of now (its size); with ``hold`` leave out an unterminated last line."""
    size = path.stat().st_size
    snap = Snapshot(path, size, size)
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
