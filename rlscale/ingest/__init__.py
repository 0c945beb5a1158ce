"""Ingest training logs into the run store.

One module per source format, each turning a log into points: :mod:`.readers` (CSV/TSV via
pyarrow, JSONL, JSON, Parquet) and :mod:`.table` (long/wide tables, W&B exports),
:mod:`.tensorboard` (event files), :mod:`.trl` (``trainer_state.json``). :mod:`.points` validates
points with vectorised checks and splits them into runs; :mod:`.api` finds logs and writes them
all-or-nothing. See docs/ingest.md. Names are imported on first use, so the CLI starts fast.
"""

from __future__ import annotations

from rlscale import lazy_exports

_EXPORTS = {
    "FORMATS": "rlscale.ingest.options",
    "IngestOptions": "rlscale.ingest.options",
    "parse_set": "rlscale.ingest.options",
    "IngestResult": "rlscale.ingest.pipeline",
    "detect_format": "rlscale.ingest.pipeline",
    "discover": "rlscale.ingest.pipeline",
    "ingest_path": "rlscale.ingest.pipeline",
    "ingest_paths": "rlscale.ingest.pipeline",
    "read_source": "rlscale.ingest.pipeline",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
