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

import pyarrow as pa

from rlscale.errors import input_error

SCHEMA_VERSION = 1
# The compute columns of points.parquet, in schema order; null where a source lacks one.
COMPUTE_AXES: tuple[str, ...] = ("flops", "gpu_hours", "tokens", "wall_s")
# What a curve can be fitted or plotted against: a compute axis, or the step (the default first).
X_AXES: tuple[str, ...] = ("gpu_hours", "flops", "tokens", "wall_s", "step")
# The axis a fit uses when none is asked for: the first of these that the points have.
AUTO_X_ORDER: tuple[str, ...] = ("gpu_hours", "flops", "tokens", "step")
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
    writer: dict[str, Any] | None = None  # pid, host, started of a run being written (liveness)
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
