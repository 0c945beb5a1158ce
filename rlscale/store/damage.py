"""Damaged runs: what readers check in each run they read, and what they do when it fails.

A store is shared data: a run directory can be truncated, overwritten or half deleted by hand, a
full disk or another tool. Every reader of :class:`~rlscale.store.runs.Store` checks each run it
opens (:func:`check_meta_dict`, :func:`check_points_table`) and, on a failure, raises
:class:`DamagedRun`: one line naming the run, the file and what is wrong. The readers that go
over many runs (listing, loading points) skip a damaged run with a :class:`DamagedRunWarning`
(the CLI prints it as one ``Warning:`` line on stderr) and carry on with the rest, or refuse
(re-raise) when strict: ``Store(root, strict=True)``, ``load_points(..., strict=True)``,
``RLSCALE_STRICT=1``, or ``--strict`` on the reading commands (:func:`strict_mode`).
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rlscale.errors import DamagedRunWarning, StoreError
from rlscale.store.schema import POINTS_SCHEMA, SCHEMA_VERSION

#: set by ``--strict`` for the command it runs (see :func:`strict_mode`); None: $RLSCALE_STRICT
STRICT: contextvars.ContextVar[bool | None] = contextvars.ContextVar("rlscale_strict",
                                                                    default=None)


class DamagedRun(StoreError):
    """A run whose ``run.json`` or ``points.parquet`` cannot be used: one line naming both."""

    def __init__(self, run_id: str, path: Path | str, problem: str) -> None:
        self.run_id, self.path, self.problem = run_id, str(path), one_line(problem)
        super().__init__(f"run {run_id!r} is damaged: {self.path}: {self.problem}")


__all__ = ["STRICT", "DamagedRun", "DamagedRunWarning", "check_meta_dict", "check_points_table",
           "one_line", "strict_mode"]


def strict_mode(strict: bool | None = None) -> bool:
    """Whether readers refuse a damaged run: ``strict`` if given, else ``--strict`` (the
    :data:`STRICT` context variable), else ``$RLSCALE_STRICT`` (``1``/``true``/``yes``)."""
    if strict is not None:
        return strict
    ctx = STRICT.get()
    if ctx is not None:
        return ctx
    return os.environ.get("RLSCALE_STRICT", "").strip().lower() in ("1", "true", "yes")


def one_line(text: object) -> str:
    """The first non-empty line of ``text`` (pyarrow's errors run over several)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else type(text).__name__


# field -> the JSON types it may have (None: null allowed)
_META_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "recipe": (str, type(None)), "seed": (int, str, type(None)),
    "task": (str, type(None)), "model": (str, type(None)), "metadata": (dict,),
    "config": (dict,), "source": (dict, type(None)), "status": (str,), "created": (str,),
    "schema_version": (int,), "writer": (dict, type(None)),
}
_JSON_NAMES = {str: "a string", int: "an integer", dict: "an object", type(None): "null"}


def check_meta_dict(data: Any, run_id: str) -> str | None:
    """What is wrong with ``data`` (a parsed run.json) as the metadata of ``run_id``, or None."""
    if not isinstance(data, dict):
        return f"holds a JSON {type(data).__name__}, expected an object with key 'run_id'"
    unknown = sorted(set(data) - set(_META_TYPES))
    if unknown:
        return f"unknown keys {unknown} (expected keys among {sorted(_META_TYPES)})"
    if "run_id" not in data:
        return "missing key 'run_id'"
    for key, types in _META_TYPES.items():
        value = data.get(key)
        if key in data and (not isinstance(value, types) or isinstance(value, bool)):
            want = " or ".join(_JSON_NAMES[t] for t in types)
            return f"key {key!r} is {value!r:.40}, expected {want}"
    if data["run_id"] != run_id:
        return f"says run_id {data['run_id']!r}, but its directory is {run_id!r}"
    if data.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
        return (f"schema_version {data['schema_version']} is newer than this rlscale's "
                f"{SCHEMA_VERSION}")
    return None


def check_points_table(table: pa.Table, run_id: str) -> tuple[pa.Table | None, str | None]:
    """``table`` (as read from points.parquet) cast to :data:`POINTS_SCHEMA`, or what is wrong.

    Columns must be the schema's (in any order, of types that cast safely), ``run_id``,
    ``step``, ``metric`` and ``value`` never null, and every ``run_id`` the run's own.
    """
    names = set(table.schema.names)
    missing = [n for n in POINTS_SCHEMA.names if n not in names]
    extra = [n for n in table.schema.names if n not in POINTS_SCHEMA.names]
    if missing or extra:
        what = ", ".join(filter(None, [missing and f"lacks columns {missing}",
                                       extra and f"has unknown columns {extra}"]))
        return None, f"{what} (expected columns {POINTS_SCHEMA.names})"
    table = table.select(POINTS_SCHEMA.names)
    for f in POINTS_SCHEMA:
        have = table.schema.field(f.name).type
        if have != f.type:
            try:
                table = table.set_column(POINTS_SCHEMA.get_field_index(f.name), f,
                                         table[f.name].cast(f.type, safe=True))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return None, f"column {f.name!r} is {have}, expected {f.type}"
    for name in ("run_id", "step", "metric", "value"):
        nulls = table[name].null_count
        if nulls:
            return None, f"column {name!r} has {nulls} null value(s)"
    # unique + to_pylist: comparing with a Python str scalar would import pandas (slow start-up)
    others = sorted(set(pc.unique(table["run_id"]).to_pylist()) - {run_id})
    if others:
        return None, f"column 'run_id' names other runs {others[:3]} (expected only {run_id!r})"
    return table, None
