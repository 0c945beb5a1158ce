"""What a stored run is: the points schema, the compute axes, run ids, and run.json's fields.

Every stage reads these facts from here: the axes a curve can be plotted against
(:data:`COMPUTE_AXES`, and :data:`X_AXES` with ``step``), the Parquet schema of
``points.parquet`` (:data:`POINTS_SCHEMA`), what a run id may be (:func:`check_run_id`), and
:class:`RunMeta` (``run.json``).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rlscale.errors import input_error

SCHEMA_VERSION = 1
# The compute columns of points.parquet, in schema order; null where a source lacks one.
COMPUTE_AXES: tuple[str, ...] = ("flops", "gpu_hours", "tokens", "wall_s")
# What a curve can be fitted or plotted against: a compute axis, or the step (the default first).
X_AXES: tuple[str, ...] = ("gpu_hours", "flops", "tokens", "wall_s", "step")
POINTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("step", pa.int64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("flops", pa.float64()),
        ("gpu_hours", pa.float64()),
        ("tokens", pa.int64()),
        ("wall_s", pa.float64()),
    ]
)
POINT_COLUMNS: tuple[str, ...] = tuple(POINTS_SCHEMA.names)
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$")


@dataclass
class RunMeta:
    """What is known about one run besides its points.

    ``metadata`` holds flat, user-facing keys (``pretrain_tokens``, ``lr``, ...) that ``--by`` and
    ``--facet`` can group on; ``config`` holds the full job config of an rlscale RL job; ``source``
    records where ingested points came from (``path``, ``format``, ``sha256``).
    """

    run_id: str
    recipe: str | None = None
    seed: int | None = None
    task: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] | None = None
    status: str = "complete"
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_run_id(self.run_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: Path | str | None = None) -> RunMeta:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown or "run_id" not in data:
            what = f"unknown keys {unknown}" if unknown else "missing key 'run_id'"
            raise input_error(what, path=path, expected=f"keys among {sorted(known)}")
        return cls(**data)


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is safe as a directory name, else raise :class:`InputError`."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise input_error(
            f"invalid run_id {run_id!r}",
            expected="1-200 characters of letters, digits and . _ = + -, not starting with . or _",
        )
    return run_id


def normalize_points(points: pd.DataFrame, run_id: str, *, source: str | None = None) -> pa.Table:
    """Coerce a points frame to :data:`POINTS_SCHEMA`, checking what every stage relies on.

    Missing compute axes become null. Values must be finite, steps non-negative integers, and
    (step, metric) unique. Raises :class:`InputError` naming ``source`` and the offending column.
    """
    df = points.copy()
    for col in ("step", "metric", "value"):
        if col not in df.columns:
            raise input_error(f"missing column {col!r}", path=source, field=col)
    df["run_id"] = run_id
    for axis in COMPUTE_AXES:
        if axis not in df.columns:
            df[axis] = None
    df = df[list(POINT_COLUMNS)]
    value = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    bad = ~np.isfinite(value.to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise input_error(
            f"non-finite value {df['value'].iloc[i]!r} for metric {df['metric'].iloc[i]!r} "
            f"at step {df['step'].iloc[i]}",
            path=source, field="value", expected="a finite number",
        )
    df["value"] = value
    step = pd.to_numeric(df["step"], errors="coerce")
    if step.isna().any() or (step < 0).any() or (step != np.floor(step)).any():
        i = int(np.flatnonzero(step.isna() | (step < 0) | (step != np.floor(step)))[0])
        raise input_error(f"bad step {df['step'].iloc[i]!r}", path=source, field="step",
                          expected="a non-negative integer")
    df["step"] = step.astype("int64")
    for axis in COMPUTE_AXES:
        col = pd.to_numeric(df[axis], errors="coerce").astype("float64")
        arr = col.to_numpy()
        bad = (~np.isnan(arr) & ~np.isfinite(arr)) | (arr < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(f"bad compute value {arr[i]!r} at step {df['step'].iloc[i]}",
                              path=source, field=axis, expected="a finite non-negative number")
        df[axis] = col
    df["tokens"] = df["tokens"].round().astype("Int64")
    dup = df.duplicated(["step", "metric"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise input_error(
            f"duplicate (step={first['step']}, metric={first['metric']!r})",
            path=source, field="step", expected="one value per step and metric",
        )
    df = df.sort_values(["metric", "step"], kind="stable").reset_index(drop=True)
    return pa.Table.from_pandas(df, schema=POINTS_SCHEMA, preserve_index=False)
