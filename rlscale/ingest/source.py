"""Where a point came from: turning a row index back into what the user sees in an editor."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rlscale.errors import InputError, input_error
from rlscale.ingest.compressed import open_text


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of every file under a directory (relative names included)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass
class Source:
    """A file being read. ``locate(row)`` maps a 0-based record index to ``(line, label)``:

    tables give a 1-based editor line (header = line 1); other formats give a label such as
    ``log_history[3]`` or ``tag 'reward'``.
    """

    path: Path
    format: str
    locate: Callable[[int], tuple[int | None, str | None]] = field(
        default=lambda row: (None, f"record {row + 1}")
    )

    def error(self, what: str, *, row: int | None = None, field: str | None = None,
              expected: str | None = None) -> InputError:
        line, label = self.locate(row) if row is not None else (None, None)
        where = str(self.path) if label is None else f"{self.path}, {label}"
        exc = input_error(what, path=where, line=line, field=field, expected=expected)
        exc.path = str(self.path)
        return exc


def csv_line_locator(path: Path, delimiter: str) -> Callable[[int], tuple[int | None, str | None]]:
    """Map a data-row index (as pyarrow.csv counts them) to its editor line, scanning only on demand.

    pyarrow skips empty lines and lets quoted fields span lines; the csv module is told to do the
    same, so the two agree on which record is which.
    """

    def locate(row: int) -> tuple[int | None, str | None]:
        for index, line, _ in iter_csv_records(path, delimiter):
            if index == row:
                return line, None
        return None, f"data row {row + 1}"

    return locate


def iter_csv_records(path: Path, delimiter: str):
    """Yield ``(data_row_index, first_line_number, fields)``; index -1 is the header."""
    with open_text(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        index = -1
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield index + 1, start, None
                return
            if not fields:
                continue
            yield index, start, fields
            index += 1
