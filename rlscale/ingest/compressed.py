"""Gzip-compressed logs (``.csv.gz``, ``.tsv.gz``, ``.jsonl.gz``): decompressed with a bound.

A small compressed file can expand to gigabytes (a decompression bomb). What one file may expand
to is bounded: by default ``max(100 x its compressed size, 256 MiB)`` -- text logs compress
3-20x, so the bound leaves real logs plenty of room while a 1 MB file that would expand to 600 MB
is refused. ``--max-expand`` (:func:`expand_limit`; ``ingest_paths(max_expand=...)``) or
``RLSCALE_MAX_EXPAND`` sets the bound for every file instead (bytes, or with a suffix: ``4G``,
``512M``); the option wins over the variable. The check runs while decompressing, chunk by
chunk, so a bomb is stopped at the bound, never expanded whole.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from rlscale.errors import input_error

ENV = "RLSCALE_MAX_EXPAND"
OPTION = "--max-expand"
#: the bound ``--max-expand`` set for the command running now (bytes), None: not set
LIMIT: ContextVar[int | None] = ContextVar("rlscale_max_expand", default=None)
RATIO = 100
FLOOR = 256 << 20
_CHUNK = 1 << 20
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def is_compressed(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def inner_suffix(path: Path) -> str:
    """The suffix that tells the format: ``.csv`` for ``log.csv.gz``, else the file's own."""
    if is_compressed(path):
        return Path(path.name[:-3]).suffix.lower()
    return path.suffix.lower()


def parse_size(text: str, field: str = ENV) -> int:
    """``"4G"`` -> 4294967296; plain digits are bytes. Raises InputError naming ``field``."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m or int(m.group(1)) <= 0:
        raise input_error(f"{text!r} is not a size", field=field,
                          expected="a positive number of bytes, e.g. 4G, 512M or 1000000")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


@contextmanager
def expand_limit(size: int | str | None) -> Iterator[None]:
    """Within the block, every compressed file may expand to ``size`` bytes (``"8G"`` or an int;
    None: leave the bound as it is). What ``--max-expand`` does."""
    if size is None:
        yield
        return
    n = parse_size(size, OPTION) if isinstance(size, str) else int(size)
    if n <= 0:
        raise input_error(f"{size!r} is not a size", field=OPTION,
                          expected="a positive number of bytes, e.g. 4G, 512M or 1000000")
    token = LIMIT.set(n)
    try:
        yield
    finally:
        LIMIT.reset(token)


def max_expand(compressed_size: int) -> int:
    """The most bytes a file of ``compressed_size`` compressed bytes may expand to:
    ``--max-expand``, else ``$RLSCALE_MAX_EXPAND``, else max(100x, 256 MiB)."""
    limit = LIMIT.get()
    if limit is not None:
        return limit
    env = os.environ.get(ENV)
    if env:
        return parse_size(env)
    return max(RATIO * compressed_size, FLOOR)


def _bound_text() -> str:
    """Where the bound in force came from, for the error that names it."""
    if LIMIT.get() is not None:
        return f"{_size_text(LIMIT.get())} ({OPTION})"
    if os.environ.get(ENV):
        return f"{_size_text(parse_size(os.environ[ENV]))} ({ENV})"
    return f"max({RATIO}x the compressed size, {_size_text(FLOOR)})"


def _size_text(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit] and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]} {unit}iB"
    return f"{n} bytes"


def decompress(path: Path) -> bytes:
    """The decompressed bytes of a gzip file (several members are joined, as gzip does).

    Raises InputError naming the file when it is not valid gzip, is truncated, or would expand
    past :func:`max_expand`.
    """
    size = path.stat().st_size
    limit = max_expand(size)
    out = bytearray()
    with open(path, "rb") as fh:
        d = zlib.decompressobj(wbits=31)
        pending = b""
        while True:
            if not pending:
                pending = fh.read(_CHUNK)
                if not pending:
                    break
            try:
                # max_length caps each step, so a bomb never expands past the bound in memory
                out += d.decompress(pending, limit + 1 - len(out))
            except zlib.error as exc:
                raise input_error(f"not valid gzip data ({exc})", path=path,
                                  expected="a complete gzip file") from None
            if len(out) > limit:
                raise input_error(
                    f"expands to more than {_size_text(limit)} (from {size} compressed bytes)",
                    path=path, expected=f"at most {_bound_text()}; pass {OPTION} (e.g. "
                    f"{OPTION} 8G) or set {ENV} to allow more")
            pending = d.unconsumed_tail
            if d.eof:
                rest = d.unused_data + pending
                pending = b""
                if rest.lstrip(b"\0"):  # another gzip member follows
                    d = zlib.decompressobj(wbits=31)
                    pending = rest
    if not d.eof:
        raise input_error("gzip data is truncated", path=path, expected="a complete gzip file")
    return bytes(out)


def open_text(path: Path, **kwargs) -> io.TextIOBase:
    """``open(path, **kwargs)`` in text mode, decompressing a ``.gz`` file (with the bound)."""
    if is_compressed(path):
        return io.TextIOWrapper(io.BytesIO(decompress(path)), **kwargs)
    return open(path, **kwargs)
