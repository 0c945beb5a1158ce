"""Points from any writer checked and coerced to :data:`~rlscale.store.schema.POINTS_SCHEMA`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from rlscale.errors import input_error
from rlscale.store.schema import COMPUTE_AXES, POINT_COLUMNS, POINTS_SCHEMA


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
