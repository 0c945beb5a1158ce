"""How rlscale writes values for people and for JSON: group labels, short numbers, JSON-safe values.

- :func:`group_label` / :func:`series_label`: a fit group (``{"recipe": "grpo"}``) as text, in
  tables and forecasts (``recipe=grpo``) and in chart legends (``grpo``);
- :func:`format_value`: a metadata value as a short label (``4e9``, ``(none)``);
- :func:`num` / :func:`interval`: a number or ``[lo, hi]`` in a table or a sentence;
- :func:`short`: a cell of a plain listing (floats shortened, the rest as they are);
- :func:`jsonable` / :func:`records`: NaN and +-inf become null, numpy scalars plain.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

MISSING = "(none)"


def group_label(group: Mapping[str, Any] | None, *, sep: str = ",", empty: str = "all") -> str:
    """``{'recipe': 'a', 'lr': 1e-4}`` -> ``recipe=a,lr=0.0001``; an empty group is ``empty``."""
    if not group:
        return empty
    return sep.join(f"{k}={v}" for k, v in group.items())


def series_label(group: Mapping[str, Any] | None) -> str:
    """A legend entry: ``{"recipe": "grpo"}`` -> ``"grpo"``; several keys ->
    ``"recipe=grpo, seed=1"`` with each value through :func:`format_value`."""
    if not group:
        return "all"
    if len(group) == 1:
        return format_value(next(iter(group.values())))
    return ", ".join(f"{k}={format_value(v)}" for k, v in group.items())


def num(v: Any, fmt: str = ".4g", *, missing: str = "-", inf: str = "inf") -> str:
    """A number for a table or a line of text: ``fmt`` (4 significant digits) for floats, ints as
    they are, booleans as yes/no; ``missing`` for None and NaN, ``inf`` for +inf (``never`` reads
    better for a compute that is never reached); anything else as ``str``."""
    if v is None:
        return missing
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(x):
        return missing
    if math.isinf(x):
        return inf if x > 0 else "-inf"
    return format(x, fmt)


def interval(lo: Any, hi: Any, fmt: str = ".4g", **kw: str) -> str:
    """``[lo, hi]``, each through :func:`num` (same ``fmt``, ``missing``, ``inf``)."""
    return f"[{num(lo, fmt, **kw)}, {num(hi, fmt, **kw)}]"


def short(value: Any, fmt: str = ".4g", *, missing: str = "-") -> str:
    """A table cell: a float to ``fmt`` (4 significant digits), None as ``missing``, else ``str``."""
    if value is None:
        return missing
    if isinstance(value, (float, np.floating)):
        return format(value, fmt)
    return str(value)


def format_value(value: Any) -> str:
    """A metadata value as a short label: ``4e9`` for 4000000000.0, ``(none)`` for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value.is_integer() and abs(value) < 1e5:
            return str(int(value))
        return f"{value:.4g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    if isinstance(value, (int, np.integer)) and abs(int(value)) >= 1e5:
        return format_value(float(value))
    return str(value)


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
    pd = sys.modules.get("pandas")  # a pandas value exists only once pandas is imported
    if pd is not None:
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


def markdown_table(frame: pd.DataFrame, fmt: str = ".4g") -> str:
    """``frame`` as a Markdown table (floats through ``fmt``), for reports pasted into docs."""
    def cell(v: Any) -> str:
        return format(v, fmt) if isinstance(v, float) else str(v)
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    sep = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, sep, *body])
