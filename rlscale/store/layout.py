"""Every path under a store, decided here and nowhere else (docs/store.md shows the tree).

::

    <store>/<run_id>/run.json              a run's metadata (RunMeta)
    <store>/<run_id>/points.parquet        its points, one row per (step, metric)
    <store>/_fits/<metric>__<x>__<law>__<by>.json   saved fits
    <store>/_sweeps/<spec name>.json       a sweep's job states
    <store>/_ckpt/<run_id>/ckpt.pt         an RL run's latest checkpoint
    <store>/.tmp-<uuid>/<run_id>/          a run being written (renamed into place when whole)
    <store>/.trash-<uuid>/<run_id>/        a replaced run's old copy, removed right after
    <store>/.deleted-<uuid>/<run_id>/      a deleted run, removed right after
    .<name>.<uuid>.tmp                     a file being rewritten in place (atomic replace)

What a killed writer leaves (:func:`is_debris`, :func:`is_debris_file`) is recovered or removed
by :mod:`rlscale.store.recover`.

Entries starting with ``.`` or ``_`` are never runs: readers skip them, and the glob
``<store>/*/points.parquet`` of DuckDB, polars or pandas never matches one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

RUN_FILE = "run.json"
POINTS_FILE = "points.parquet"
FITS_DIR = "_fits"
SWEEPS_DIR = "_sweeps"
CKPT_DIR = "_ckpt"
CKPT_FILE = "ckpt.pt"
STAGING_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
DELETED_PREFIX = ".deleted-"
HIDDEN_PREFIXES = (".", "_")


def is_run_name(name: str) -> bool:
    """Whether a directory entry of the store's root can be a run (not hidden, not rlscale's)."""
    return not name.startswith(HIDDEN_PREFIXES)


def run_dir(root: Path, run_id: str) -> Path:
    return root / run_id


def fits_dir(root: Path) -> Path:
    return root / FITS_DIR


def sweeps_dir(root: Path) -> Path:
    return root / SWEEPS_DIR


def checkpoint_dir(root: Path, run_id: str) -> Path:
    return root / CKPT_DIR / run_id


def checkpoint_file(root: Path, run_id: str) -> Path:
    return checkpoint_dir(root, run_id) / CKPT_FILE


def scratch_name(prefix: str) -> str:
    """A new hidden directory name directly under the root (``.tmp-<uuid>``, ``.trash-<uuid>``)."""
    return f"{prefix}{uuid.uuid4().hex}"


def is_debris(name: str) -> bool:
    """Leftovers of a killed writer at the root, which :meth:`Store.clean` removes."""
    return name.startswith((STAGING_PREFIX, TRASH_PREFIX, DELETED_PREFIX))


def is_debris_file(name: str) -> bool:
    """A file a killed writer left half written anywhere in a store (:func:`temp_name`)."""
    return name.startswith(".") and name.endswith(".tmp")


def temp_name(path: Path) -> Path:
    """A hidden sibling of ``path`` to write before an atomic ``os.replace`` onto it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
