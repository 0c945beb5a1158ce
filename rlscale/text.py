"""DataFrames and numbers as JSON-safe values: NaN and +-inf become null, numpy scalars plain."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def jsonable(v: Any) -> Any:
    """``v`` with numpy types made plain and non-finite floats made ``None`` (recursively)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [jsonable(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-safe dict per row of ``df``."""
    return [jsonable(r) for r in df.to_dict("records")]
