"""Atomic file writes under a store: a temporary name in the same directory, fsync, rename."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rlscale.errors import StoreError
from rlscale.store.layout import temp_name


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where the OS does not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: Path, data: dict[str, Any], *, sync: bool = True,
               direct: bool = False) -> None:
    """Write ``data`` as sorted, indented JSON (via a temporary name unless ``direct``)."""
    tmp = path if direct else temp_name(path)
    with _writing(path, tmp, direct):
        # dumps, then one write: json.dump with indent writes piece by piece (3x slower)
        text = json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        if not direct:
            os.replace(tmp, path)


def write_parquet(path: Path, table: pa.Table, *, sync: bool = True,
                  direct: bool = False) -> None:
    """Write ``table`` to ``path`` (via a temporary name and a rename unless ``direct``)."""
    tmp = path if direct else temp_name(path)
    with _writing(path, tmp, direct):
        # Dictionary-encode the text columns only: trying it on 10k distinct floats costs time
        # and bytes (the encoder falls back to plain anyway).
        with pa.OSFile(str(tmp), "wb") as sink:
            pq.write_table(table, sink, use_dictionary=["run_id", "metric"])
        if sync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        if not direct:
            os.replace(tmp, path)


@contextmanager
def _writing(path: Path, tmp: Path, direct: bool) -> Iterator[None]:
    """An OSError while writing (a full disk, a read-only store) becomes one StoreError naming
    the file; a temporary file it leaves is removed (the file at ``path`` is untouched)."""
    try:
        yield
    except OSError as exc:
        if not direct:
            with suppress(OSError):
                os.unlink(tmp)
        what = exc.strerror or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"cannot write {path}: {what}") from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    msg = f"cannot store {type(obj).__name__} in run.json"
    raise TypeError(msg)
