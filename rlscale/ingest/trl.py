"""TRL / Hugging Face ``trainer_state.json``: the ``log_history`` list of logged dicts.

Each entry is a record with ``step`` and whatever was logged: training entries (``loss``,
``reward``, ``rewards/<func>/mean``, ``completions/mean_length``, ``kl``, ``num_tokens`` for TRL's
GRPO), evaluation entries (``eval_*``) and the final summary (``train_runtime``, ``total_flos``,
``train_loss``, ...), which is the run's metadata, not one-point metrics (so ``total_flos``, a
total, makes no flops axis). ``num_tokens`` -> tokens (see :data:`COMPUTE_ALIASES`). An entry
without a compute value takes it from another entry logged at the *same* step (an eval entry
at step 50 gets the training entry's ``num_tokens`` at step 50); no value is interpolated.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from rlscale.ingest.columns import compute_axis
from rlscale.ingest.readers import load_json, records_to_table
from rlscale.ingest.source import Source
from rlscale.ingest.table import with_meta

# Keys only Trainer's end-of-training summary entry has.
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second")


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
        step = entry["step"]
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            raise src.error(f"step is {step!r}", row=i, field="step",
                            expected="a non-negative integer")
        for key, value in entry.items():
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise src.error(f"value is a {type(value).__name__}", row=i, field=key,
                                expected="a number (log_history entries hold flat scalars)")
    summary: dict[str, object] = {}
    rows = []  # log_history indices of the entries kept, for error labels
    for i, entry in enumerate(history):
        if any(k in entry for k in SUMMARY_KEYS):
            summary.update({k: v for k, v in entry.items() if k not in ("step", "epoch")})
        else:
            rows.append(i)
    if not rows:
        raise src.error("log_history holds only the final summary", field="log_history",
                        expected="logged training entries (logging_steps)")
    src.locate = lambda row: (None, f"log_history[{rows[row]}]")
    records = _fill_compute_by_step([history[i] for i in rows])
    return with_meta(records_to_table(records, src), summary), src


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
