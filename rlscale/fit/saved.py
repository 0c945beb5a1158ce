"""Saved fits: ``<store>/_fits/<metric>__<x>__<law>__<by>.json``, beside the runs.

Run readers skip ``_``-prefixed directories, so saved fits never look like runs. Each file holds
the fits of one (metric, x axis, law, grouping) with their data window, method and samples, so
forecast and plot can reload a fit (``load_fits``) without refitting.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from rlscale.errors import input_error
from rlscale.fit.result import FitResult
from rlscale.store import layout

FORMAT_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9._=+-]")


def _part(value: str) -> str:
    return _SAFE.sub("-", value) or "-"


def fits_path(store: str | os.PathLike[str], *, metric: str, x: str, law: str,
              by: Iterable[str] | str | None) -> Path:
    """Where fits of this (metric, x, law, by) live; ``by`` None means 'all points'."""
    by_name = by if isinstance(by, str) else "+".join(by or []) or "all"
    name = "__".join(_part(p) for p in (metric, x, law, by_name)) + ".json"
    return layout.fits_dir(Path(store)) / name


def save_fits(store: str | os.PathLike[str], fits: FitResult | list[FitResult], *,
              by: Iterable[str] | str | None = None) -> list[Path]:
    """Write fits atomically, one file per (metric, x, law) among them; returns the paths.

    ``by`` names the grouping (default: the keys of the first fit's group)."""
    fits = [fits] if isinstance(fits, FitResult) else list(fits)
    buckets: dict[tuple[str, str, str], list[FitResult]] = {}
    for f in fits:
        buckets.setdefault((f.metric, f.x, f.law), []).append(f)
    written = []
    for (metric, x, law), group in buckets.items():
        by_cols = by if by is not None else list(group[0].group)
        path = fits_path(store, metric=metric, x=x, law=law, by=by_cols)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "format": "rlscale-fits", "version": FORMAT_VERSION, "metric": metric, "x": x,
            "law": law, "by": [by_cols] if isinstance(by_cols, str) else list(by_cols),
            "method": group[0].method, "fits": [f.to_dict() for f in group],
        }
        tmp = layout.temp_name(path)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        written.append(path)
    return written


def load_fits(store: str | os.PathLike[str], *, metric: str | None = None, x: str | None = None,
              law: str | None = None, by: Iterable[str] | str | None = None) -> list[FitResult]:
    """Saved fits matching the filters (None = any), in file-name order."""
    root = layout.fits_dir(Path(store))
    if not root.is_dir():
        return []
    want_by = None if by is None else ([by] if isinstance(by, str) else list(by))
    out: list[FitResult] = []
    for path in sorted(root.glob("*.json")):
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise input_error(f"unreadable saved fits ({exc})", path=path,
                              expected="a JSON file written by rlscale fit --save") from None
        if doc.get("format") != "rlscale-fits":
            raise input_error("not an rlscale fits file", path=path, field="format",
                              expected="'rlscale-fits'")
        if (metric is not None and doc["metric"] != metric) or (x is not None and doc["x"] != x) \
                or (law is not None and doc["law"] != law) \
                or (want_by is not None and doc["by"] != want_by):
            continue
        out.extend(FitResult.from_dict(d) for d in doc["fits"])
    return out
