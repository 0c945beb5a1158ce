"""File readers for tables: each returns ``(pyarrow.Table, Source)`` with record locations.

CSV/TSV go through ``pyarrow.csv`` (multi-threaded, so a 10-million-row file reads in seconds);
JSONL and JSON are read record by record so every error names its line; Parquet via pyarrow.
"""

from __future__ import annotations

import io
import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rlscale.errors import input_error
from rlscale.ingest.compressed import decompress, inner_suffix, is_compressed, open_text
from rlscale.ingest.growing import Snapshot, pieces
from rlscale.ingest.source import (
    Source,
    check_not_utf16,
    csv_line_locator,
    first_bad_utf8,
    iter_csv_records,
)

BLOCK_SIZE = 1 << 24  # bytes pyarrow parses per task (the blocks of its parallel reader)


def _delimiter(path: Path) -> str:
    if inner_suffix(path) in (".tsv", ".tab"):
        return "\t"
    return ","


def _header(path: Path, delimiter: str) -> list[str] | None:
    for index, _, fields in iter_csv_records(path, delimiter):
        return fields if index == -1 else None
    return None


def read_csv(path: Path, *, fmt: str = "csv", string_cols: tuple[str | None, ...] = (),
             data: Snapshot | None = None) -> tuple[pa.Table, Source]:
    """Read a CSV/TSV with pyarrow; ``string_cols`` (e.g. metric, run_id) are dictionary-encoded.

    ``data``: the bytes to parse (a snapshot of a growing file, :mod:`rlscale.ingest.growing`;
    its sha256 is taken on the way, see :func:`_parse_csv`); default the whole file.
    """
    delim = _delimiter(path)
    src = Source(path=path, format=fmt, locate=csv_line_locator(path, delim))
    raw = decompress(path) if is_compressed(path) else None
    if raw is not None:
        size, head, chunks = len(raw), raw[:256], (raw,)
    elif data is not None:
        size, head, chunks = data.size, data.head(256), data.chunks()
    else:
        size, head, chunks = path.stat().st_size, None, _file_chunks(path)
    if size == 0:
        raise src.error("empty file", expected="a header line and rows of points")
    check_not_utf16(path, src, head)
    header = _header(path, delim)
    if not header:
        raise src.error("no header line", expected="a header line naming the columns")
    if "\t" in header[0] and len(header) == 1 and delim == ",":
        delim = "\t"
        src.locate = csv_line_locator(path, delim)
        header = _header(path, delim) or header
    wanted = {c for c in string_cols if c}
    wanted |= {h for h in header if h.lower() in ("metric", "run_id", "run")}
    types = {h: pa.dictionary(pa.int32(), pa.string()) for h in header if h in wanted}
    quoted, hexy = _scan(chunks)

    def parse(newlines_in_values: bool) -> pa.Table:
        return _parse_csv(path, raw, data, {
            "read_options": pacsv.ReadOptions(block_size=BLOCK_SIZE),
            "parse_options": pacsv.ParseOptions(delimiter=delim,
                                                newlines_in_values=newlines_in_values),
            "convert_options": pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True,
                                                    column_types=types)})

    try:
        # Quoted values may hold line breaks. pyarrow's parallel reader is a third slower when
        # told so (it must track quotes to split the file into blocks), and a file that merely
        # quotes its text (as pyarrow's own CSV writer does) holds none: parse without, and
        # parse again with it when the file has a quote and either the parse failed or a value
        # holds a line break. Without it, a block split inside a quoted value leaves that
        # value's line break in the value it cuts short (or fails), so a parse whose values
        # hold none split no value.
        try:
            table = parse(False)
        except pa.ArrowInvalid:
            if not quoted:
                raise
            table = parse(True)
        else:
            if quoted and _has_line_break(table):
                table = parse(True)
    except pa.ArrowInvalid as exc:
        raise _bad_utf8(path, delim, header, src) or _csv_error(path, delim, src, exc) from None
    raw = None  # free the decompressed bytes (parse holds them through this cell)
    try:
        table.column_names
    except UnicodeDecodeError as exc:
        raise input_error(f"the header is not UTF-8 text (byte {exc.object[exc.start]:#04x})",
                          path=path, line=1, expected="UTF-8 column names") from None
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        exc = _bad_utf8(path, delim, header, src)  # pyarrow reads a non-UTF-8 column as bytes
        if exc is not None:
            raise exc
    if hexy:
        _check_no_hex(path, delim, table)
    return table, src


def _parse_csv(path: Path, raw: bytes | None, data: Snapshot | None,
               options: dict[str, Any]) -> pa.Table:
    """pyarrow's parse of the bytes to read: decompressed ones, a snapshot's, or the file's."""
    if raw is not None:
        return pacsv.read_csv(pa.BufferReader(pa.py_buffer(raw)), **options)
    if data is None:
        return pacsv.read_csv(str(path), **options)
    if data.size == data.full_size:
        # The common case, a log that is not growing: pyarrow reads the file itself (faster
        # than through Python) while a thread hashes the snapshot's bytes. If the file's size
        # changed meanwhile, the parse may have seen bytes past the snapshot: parse it exactly.
        error = None
        with ThreadPoolExecutor(1) as pool:  # hashlib drops the GIL
            hashed = pool.submit(data.sha256)
            try:
                table = pacsv.read_csv(str(path), **options)
            except pa.ArrowInvalid as exc:
                error = exc
            hashed.result()
        if path.stat().st_size == data.size:
            if error is not None:
                raise error
            return table
    with data.open() as fh:  # exactly the snapshot's bytes, hashed as they are read
        return pacsv.read_csv(fh, **options)


def _has_line_break(table: pa.Table) -> bool:
    """Whether a text value of ``table`` holds a CR or LF (a dictionary column: its values)."""
    for col in table.columns:
        typ = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)
                or pa.types.is_binary(typ) or pa.types.is_large_binary(typ)):
            continue
        parts = ([c.dictionary for c in col.chunks] if pa.types.is_dictionary(col.type)
                 else col.chunks)
        for part in parts:
            for brk in ("\n", "\r"):
                if pc.any(pc.match_substring(part, brk)).as_py():
                    return True
    return False


def _file_chunks(path: Path) -> Iterator[bytearray]:
    with open(path, "rb", buffering=0) as fh:
        yield from pieces(fh)


def _scan(chunks: Iterable[bytes | bytearray]) -> tuple[bool, bool]:
    """One pass over the bytes: ``(a quote character occurs, "0x" or "0X" occurs)``. Looking
    for the letter first keeps it fast: numbers are full of zeros, seldom of x's."""
    quoted = hexy = False
    last = b""
    for chunk in chunks:
        quoted = quoted or b'"' in chunk
        if not hexy and (b"x" in chunk or b"X" in chunk):
            seam = last + chunk[:1]
            hexy = any(n in chunk or n in seam for n in (b"0x", b"0X"))
        last = chunk[-1:]
        if quoted and hexy:
            break
    return quoted, hexy


def _bad_utf8(path: Path, delim: str, header: list[str], src: Source) -> Exception | None:
    """The error for the first byte that is not UTF-8 (its own line, its column), or None."""
    found = first_bad_utf8(path, delim)
    if found is None:
        return None
    line, col, byte, field = found
    name = header[field] if 0 <= field < len(header) and line > 1 else None
    where = f"{path}, line {line}"
    return input_error(f"byte 0x{byte:02x} at character {col} is not UTF-8", path=where,
                       field=name, expected="UTF-8 text: save the file as UTF-8")


_HEX = re.compile(r"\s*[+-]?0[xX]")


def _check_no_hex(path: Path, delim: str, table: pa.Table) -> None:
    """pyarrow reads ``0x1`` as the integer 1; a log never means that, so it is an error
    (called when the bytes hold ``0x``/``0X`` somewhere)."""
    ints = [i for i, f in enumerate(table.schema) if pa.types.is_integer(f.type)]
    if not ints:
        return
    for index, line, fields in iter_csv_records(path, delim):
        if index < 0 or fields is None:
            continue
        for i in ints:
            if i < len(fields) and _HEX.match(fields[i]):
                raise input_error(f"{fields[i].strip()!r} is hexadecimal", path=f"{path}",
                                  line=line, field=table.column_names[i],
                                  expected="a decimal number")


def _csv_error(path: Path, delim: str, src: Source, exc: Exception) -> Exception:
    n_cols = None
    for index, line, fields in iter_csv_records(path, delim):
        if fields is None:
            return src.error("unreadable CSV record", row=None, expected="well-formed CSV "
                             f"(line {line})")
        if index == -1:
            n_cols = len(fields)
        elif len(fields) != n_cols:
            exc2 = src.error(f"{len(fields)} fields", row=index,
                             expected=f"{n_cols} fields, as in the header")
            return exc2
    return src.error(f"cannot read as CSV: {str(exc).splitlines()[0]}",
                     expected="UTF-8 comma- or tab-separated text")


def read_parquet(path: Path, *, fmt: str = "parquet") -> tuple[pa.Table, Source]:
    src = Source(path=path, format=fmt, locate=lambda row: (None, f"row {row + 1}"))
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise src.error(f"cannot read as Parquet: {first}", expected="a Parquet file") from None
    return _parquet_columns(table, src), src


def _parquet_columns(table: pa.Table, src: Source) -> pa.Table:
    """Unsigned integers beyond int64 and text that is not UTF-8 are errors naming the cell;
    binary columns that hold UTF-8 become text."""
    try:
        names = table.column_names
    except UnicodeDecodeError:
        raise src.error("a column name is not UTF-8 text", expected="UTF-8 column names") from None
    cols = []
    for name, col in zip(names, table.columns):
        t = col.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_uint64(t):
            big = pc.greater(col.cast(pa.uint64()) if t != col.type else col,
                             pa.scalar(2**63 - 1, pa.uint64()))
            row = _first_true(big)
            if row is not None:
                raise src.error(f"{col[row].as_py()} is too large", row=row, field=name,
                                expected="an integer below 2**63")
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t) \
                or pa.types.is_large_string(t):
            # pyarrow does not check that a string column holds UTF-8; casting via binary does
            # (a dictionary column: its dictionaries only)
            parts = ([c.dictionary for c in col.chunks] if pa.types.is_dictionary(col.type)
                     else [col])
            for part in parts:
                try:
                    part.cast(pa.large_binary()).cast(pa.large_string())
                except pa.ArrowInvalid:
                    values = part.cast(pa.large_binary()).to_pylist()
                    bad = next(i for i, v in enumerate(values) if v is not None and not _utf8(v))
                    row = bad if part is col else _first_true(pc.equal(
                        col.cast(pa.large_binary()), pa.scalar(values[bad], pa.large_binary())))
                    raise src.error("invalid UTF-8 text", row=row, field=name,
                                    expected="UTF-8 text") from None
            if pa.types.is_binary(t) or pa.types.is_large_binary(t):
                col = col.cast(pa.string())
        cols.append(col)
    return pa.table(cols, names=names)


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_true(mask: pa.ChunkedArray | pa.Array) -> int | None:
    idx = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if idx is None or idx < 0 else idx


def read_jsonl(path: Path, *, fmt: str = "jsonl",
               data: Snapshot | None = None) -> tuple[pa.Table, Source]:
    """One JSON object per line; blank lines are skipped (line numbers stay the editor's).

    ``data``: the bytes to parse (as for :func:`read_csv`); default the whole file.
    """
    lines: list[int] = []
    records: list[dict[str, Any]] = []
    src = Source(path=path, format=fmt, locate=lambda row: (lines[row], None))
    # surrogateescape: a byte that is not UTF-8 stays visible (as U+DCxx) and is an error below
    text_args = {"encoding": "utf-8-sig", "errors": "surrogateescape"}
    raw = decompress(path) if is_compressed(path) else None
    check_not_utf16(path, src, raw[:256] if raw is not None
                    else data.head(256) if data is not None else None)
    if raw is not None:
        opened = io.TextIOWrapper(io.BytesIO(raw), **text_args)
        del raw
    elif data is not None:
        opened = io.TextIOWrapper(io.BufferedReader(data.open(), 1 << 20), **text_args)
    else:
        opened = open(path, **text_args)
    with opened as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            bad = _NOT_UTF8.search(text)
            if bad:
                lines.append(number)
                raise src.error(f"byte 0x{ord(bad.group()) - 0xDC00:02x} at character "
                                f"{bad.start() + 1} is not UTF-8", row=len(lines) - 1,
                                expected="UTF-8 text: save the file as UTF-8")
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                lines.append(number)
                raise src.error(f"not valid JSON ({exc.msg} at column {exc.colno})",
                                row=len(lines) - 1, expected="one JSON object per line") from None
            except RecursionError:
                lines.append(number)
                raise src.error("JSON nested too deeply",
                                row=len(lines) - 1, expected="one flat JSON object per line"
                                ) from None
            lines.append(number)
            if not isinstance(rec, dict):
                raise src.error(f"a JSON {type(rec).__name__}, not an object", row=len(lines) - 1,
                                expected="one JSON object per line")
            records.append(rec)
    if not records:
        raise src.error("empty file", expected="JSON objects, one per line")
    return records_to_table(records, src), src


_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def read_json(path: Path, *, fmt: str = "json") -> tuple[pa.Table, Source]:
    """A JSON list of records, or a frame saved by pandas ``to_json`` (columns/split/records)."""
    src = Source(path=path, format=fmt)
    data = load_json(path, src)
    labels: list[str] = []
    if isinstance(data, list):
        records = data
    elif isinstance(data, dict) and {"columns", "data"} <= set(data):
        records = _split_records(data, src)
    elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        index = list(dict.fromkeys(k for col in data.values() for k in col))
        records = [{c: data[c].get(i) for c in data} for i in index]
        labels = [f"row with index {i!r}" for i in index]
    elif isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        n = max(len(v) for v in data.values())
        records = [{c: (v[i] if i < len(v) else None) for c, v in data.items()} for i in range(n)]
    else:
        raise src.error("unrecognised JSON layout", expected="a list of records or a pandas "
                        "to_json frame (orient columns, split, records or list)")
    if labels:
        src.locate = lambda row: (None, labels[row])
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise src.error("record is not an object", row=bad, expected="JSON objects")
    if not records:
        raise src.error("no records", expected="at least one record")
    return records_to_table(records, src), src


def _split_records(data: dict[str, Any], src: Source) -> list[dict[str, Any]]:
    """Rows of a pandas ``orient="split"`` frame: ``columns`` a list of names, ``data`` a list
    of rows as long as it."""
    columns, rows = data["columns"], data["data"]
    expected = ('orient "split": "columns" a list of names and "data" a list of rows, '
                'each as long as "columns"')
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise src.error('"columns" is not a list of names', field="columns", expected=expected)
    if not isinstance(rows, list):
        raise src.error(f'"data" is a JSON {type(rows).__name__}', field="data",
                        expected=expected)
    src.locate = lambda row: (None, f"data[{row}]")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            got = (f"{len(row)} values" if isinstance(row, list)
                   else f"a JSON {type(row).__name__}")
            raise src.error(f"{got}, not {len(columns)}", row=i, expected=expected)
    return [dict(zip(columns, row)) for row in rows]


def load_json(path: Path, src: Source) -> Any:
    if path.stat().st_size == 0:
        raise src.error("empty file", expected="JSON")
    check_not_utf16(path, src)
    try:
        with open_text(path, encoding="utf-8-sig") as fh:
            return json.loads(fh.read())
    except RecursionError:
        raise src.error("JSON nested too deeply",
                        expected="a JSON log of records") from None
    except json.JSONDecodeError as exc:
        raise input_error(f"not valid JSON ({exc.msg} at column {exc.colno})", path=path,
                          line=exc.lineno, expected="valid JSON") from None
    except UnicodeDecodeError as exc:
        raise src.error(f"not UTF-8 text ({exc.reason})", expected="UTF-8 JSON") from None


def records_to_table(records: list[dict[str, Any]], src: Source) -> pa.Table:
    """Records -> columns. A column is numeric when its first non-null cell is a number; a later
    cell that is not a number is an error naming its record. Other columns are kept as text."""
    names = list(dict.fromkeys(k for r in records for k in r))
    cols = {}
    for name in names:
        values = [r.get(name) for r in records]
        first = next((v for v in values if v is not None), None)
        if _is_number(first):
            for i, v in enumerate(values):
                if v is not None and not _is_number(v):
                    raise src.error(f"{json.dumps(v)[:40]} is not a number", row=i, field=name,
                                    expected="a number (or null where not logged)")
            ints = all(isinstance(v, int) or v is None for v in values)
            try:
                cols[name] = pa.array(values, pa.int64() if ints else pa.float64())
            except (pa.ArrowInvalid, OverflowError):
                cols[name] = pa.array([None if v is None else _float(v, i, name, src)
                                       for i, v in enumerate(values)], pa.float64())
        else:
            cols[name] = pa.array([None if v is None else _text(v) for v in values], pa.string())
    return pa.table(cols)


def _float(v: int | float, i: int, name: str, src: Source) -> float:
    try:
        return float(v)
    except OverflowError:
        raise src.error(f"integer {str(v)[:20]}... ({len(str(v))} digits) is too large", row=i,
                        field=name, expected="a number below 1.8e308") from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return json.dumps(v)

