"""Ingest training logs into the run store.

One module per source format, each turning a log into points: :mod:`.readers` (CSV/TSV via
pyarrow, JSONL, JSON, Parquet) and :mod:`.table` (long/wide tables, W&B exports),
:mod:`.tensorboard` (event files), :mod:`.trl` (``trainer_state.json``). :mod:`.points` validates
points with vectorised checks and splits them into runs; :mod:`.api` finds logs and writes them
all-or-nothing. See docs/ingest.md.
"""

from __future__ import annotations

from rlscale.ingest.api import (
    IngestResult,
    detect_format,
    discover,
    ingest_path,
    ingest_paths,
    read_source,
)
from rlscale.ingest.options import FORMATS, IngestOptions, parse_set

__all__ = ["FORMATS", "IngestOptions", "IngestResult", "detect_format", "discover",
           "ingest_path", "ingest_paths", "parse_set", "read_source"]
