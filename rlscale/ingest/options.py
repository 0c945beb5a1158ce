"""Ingest options, ``--set KEY=VALUE`` parsing and run-id sanitising."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from rlscale.errors import input_error
from rlscale.store.schema import X_AXES

FORMATS: tuple[str, ...] = ("auto", "csv", "jsonl", "json", "parquet", "tensorboard", "wandb", "trl",
                            "verl", "sb3", "mlflow")
# RunMeta fields that --set may fill, with the type each must have.
META_FIELDS: dict[str, type] = {"seed": int, "task": str, "model": str, "recipe": str}


@dataclass
class IngestOptions:
    """How to read sources and where their points go. Every field has a CLI flag of the same name.

    ``set_values`` holds ``--set`` metadata already parsed by :func:`parse_set`; ``metrics`` limits
    which metric columns (wide tables) or metric names (long tables) are kept (empty: all numeric).
    """

    format: str = "auto"
    run_id: str | None = None
    recipe: str | None = None
    set_values: dict[str, Any] = field(default_factory=dict)
    step_col: str | None = None
    x_col: str | None = None
    x_unit: str | None = None
    metrics: tuple[str, ...] = ()
    run_col: str | tuple[str, ...] | None = None  # several: the run is their values joined
    replace: bool = False
    drop_nonfinite: bool = False
    run_prefix: str | None = None  # put before every run id; "{file}" is the log's own name
    recipe_col: str | None = None
    seed_col: str | None = None
    gpus: float | None = None  # with a per-step time column: gpu_hours = cumulative time x gpus

    @property
    def run_cols(self) -> tuple[str, ...]:
        """``--run-col`` as a tuple (empty when not given)."""
        if self.run_col is None:
            return ()
        return (self.run_col,) if isinstance(self.run_col, str) else tuple(self.run_col)

    def prefixed(self, run_id: str, file_id: str) -> str:
        """``run_id`` with ``--run-prefix`` before it (``{file}`` -> the log's default run id)."""
        if not self.run_prefix:
            return run_id
        return sanitize_run_id(self.run_prefix.replace("{file}", file_id) + run_id)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise input_error(f"unknown format {self.format!r}", expected=f"one of {list(FORMATS)}")
        if (self.x_col is None) != (self.x_unit is None):
            raise input_error("--x-col and --x-unit go together",
                              expected="both (e.g. --x-col gpu_time --x-unit gpu_hours) or neither")
        if self.x_unit == "steps":  # the spelling before --x-unit shared fit --x's names
            self.x_unit = "step"
        if self.x_unit is not None and self.x_unit not in X_AXES:
            raise input_error(f"unknown --x-unit {self.x_unit!r}", expected=f"one of {list(X_AXES)}")
        self.metrics = tuple(self.metrics)
        if not isinstance(self.run_col, (str, type(None))):
            cols = tuple(self.run_col)
            self.run_col = None if not cols else cols[0] if len(cols) == 1 else cols
        if self.gpus is not None and not (self.gpus > 0 and math.isfinite(self.gpus)):
            raise input_error(f"--gpus {self.gpus!r} is not a positive number", field="--gpus",
                              expected="the number of GPUs the run used, e.g. --gpus 8")
        for key, value in self.set_values.items():
            check_meta_value(key, value)


_BOOLS = {"true": True, "false": False, "yes": True, "no": False}


def parse_value(text: str) -> Any:
    """``"2e9"`` -> 2e9, ``"3"`` -> 3, ``"true"`` -> True, ``"null"`` -> None, else the string."""
    low = text.strip().lower()
    if low in _BOOLS:
        return _BOOLS[low]
    if low in ("null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def parse_set(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``["pretrain_tokens=2e9", "seed=1"]`` into typed values (numbers, bools, strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise input_error(f"--set {item!r} is not KEY=VALUE", field="--set",
                              expected="KEY=VALUE, e.g. --set pretrain_tokens=2e9")
        value = parse_value(raw)
        check_meta_value(key, value)
        out[key] = value
    return out


def check_meta_value(key: str, value: Any) -> None:
    """``seed`` must be an integer; any other key takes a JSON scalar (task/model/recipe are
    stored as text)."""
    want = META_FIELDS.get(key)
    if want is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise input_error(f"--set {key}={value!r} is not an integer",
                          expected=f"an integer, e.g. --set {key}=1")
    if not isinstance(value, (str, int, float, bool, type(None))):
        raise input_error(f"--set {key} has a {type(value).__name__} value",
                          expected="a number, bool or string")


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def sanitize_run_id(name: str) -> str:
    """Turn a file or directory name into a valid run id (``my run (2).csv`` -> ``my-run-2``)."""
    rid = _UNSAFE.sub("-", name).strip("-._=+")
    rid = re.sub(r"-{2,}", "-", rid)[:200].rstrip("-._=+")
    return rid or "run"
