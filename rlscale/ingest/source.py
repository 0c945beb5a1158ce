"""Where a point came from: turning a row index back into what the user sees in an editor."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rlscale.errors import InputError, input_error
from rlscale.ingest.compressed import open_text

# pyarrow reads a field of any length; the csv module (which finds the line of a record) stops at
# 128 KB by default and would then misreport a long header as missing. Agree with pyarrow.
csv.field_size_limit(2**31 - 1)


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
        what = re.sub(r"\s*\n\s*", " ", what)  # one line, whatever a library's message held
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


def utf16_hint(head: bytes) -> str | None:
    """``"UTF-16"`` when the first bytes of a file are UTF-16 (a BOM, or a NUL beside every ASCII
    character), else None: such files decode as garbage, so say what they are."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "UTF-16"
    sample = head[:200]
    if len(sample) >= 4 and (sample[1::2].count(0) >= len(sample) // 2 - 1
                             or sample[0::2].count(0) >= len(sample) // 2 - 1):
        return "UTF-16"
    return None


def check_not_utf16(path: Path, src: "Source", data: bytes | None = None) -> None:
    """Raise the error for a UTF-16 file (Windows tools write them); do nothing otherwise."""
    if data is None:
        with open(path, "rb") as fh:
            data = fh.read(256)
    if utf16_hint(data[:256]):
        raise src.error("the file is UTF-16 text", expected="UTF-8 text: save it as UTF-8")


def first_bad_utf8(path: Path, delimiter: str | None = None) -> tuple[int, int, int, int] | None:
    """``(line, byte column, byte, field index)`` of the first byte that is not UTF-8, or None.

    ``line`` is the editor's (1-based); the field index (``delimiter`` given) counts the
    delimiters before the byte on its line (quoted delimiters aside, which is rare enough)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                before = raw[:exc.start]
                field = before.count(delimiter.encode()) if delimiter else -1
                return number, exc.start + 1, raw[exc.start], field
    return None
