"""TRL / Hugging Face ``trainer_state.json``: the ``log_history`` list of logged dicts.

Each entry is a record with ``step`` and whatever was logged: training entries (``loss``,
``reward``, ``rewards/<func>/mean``, ``completions/mean_length``, ``kl``, ``num_tokens`` for TRL's
GRPO), evaluation entries (``eval_*``) and the final summary (``train_runtime``, ``total_flos``).
``num_tokens`` -> tokens and ``total_flos`` -> flops (see :data:`COMPUTE_ALIASES`). An entry
without a compute value takes it from another entry logged at the *same* step (an eval entry
at step 50 gets the training entry's ``num_tokens`` at step 50); no value is interpolated.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from rlscale.ingest.columns import compute_axis
from rlscale.ingest.readers import load_json, records_to_table
from rlscale.ingest.source import Source


def read_trainer_state(path: Path, *, fmt: str = "trl") -> tuple[pa.Table, Source]:
    """``(table, source)`` with one row per ``log_history`` entry, labelled ``log_history[i]``."""
    src = Source(path=path, format=fmt, locate=lambda row: (None, f"log_history[{row}]"))
    data = load_json(path, src)
    history = data.get("log_history") if isinstance(data, dict) else None
    if not isinstance(history, list):
        raise src.error("no 'log_history' list", field="log_history",
                        expected="a trainer_state.json written by transformers/TRL")
    if not history:
        raise src.error("empty log_history", field="log_history", expected="logged entries")
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise src.error("entry is not an object", row=i, expected="a dict of logged values")
        if "step" not in entry:
            raise src.error("entry has no 'step'", row=i, field="step",
                            expected="every log_history entry to carry its global step")
        if isinstance(entry["step"], (list, dict)):
            raise src.error(f"step is a {type(entry['step']).__name__}", row=i, field="step",
                            expected="an integer global step")
    records = _fill_compute_by_step(history)
    return records_to_table(records, src), src


def _fill_compute_by_step(history: list[dict]) -> list[dict]:
    by_step: dict[object, dict[str, object]] = {}
    for entry in history:
        for key, value in entry.items():
            if compute_axis(key) is not None and value is not None:
                by_step.setdefault(entry["step"], {}).setdefault(key, value)
    out = []
    for entry in history:
        known = by_step.get(entry["step"], {})
        have = {compute_axis(k) for k in entry if compute_axis(k)}
        extra = {k: v for k, v in known.items() if compute_axis(k) not in have}
        out.append({**entry, **extra})
    return out
