"""Which column is the step, which are compute axes, which are metrics; numeric coercion."""

from __future__ import annotations

import shlex

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rlscale.ingest.source import Source

# Lower-cased names (after dropping a ``train/`` prefix) that mean a compute axis. Never guessed
# beyond this list: a column not named here is a metric.
COMPUTE_ALIASES: dict[str, str] = {
    **dict.fromkeys(["gpu_hours", "gpu_hour", "gpuhours", "gpu-hours", "gpu hours", "gpu_h"],
                    "gpu_hours"),
    **dict.fromkeys(["flops", "flop", "total_flos", "total_flops", "flos"], "flops"),
    **dict.fromkeys(["tokens", "num_tokens", "total_tokens", "num_input_tokens_seen",
                     "tokens_seen"], "tokens"),
    **dict.fromkeys(["wall_s", "_runtime", "runtime_s", "wall_time_s", "elapsed_s"], "wall_s"),
}
# Cumulative token counters that frameworks log under their own names (verl, prime-rl, NeMo):
# the tokens axis when they never decrease within a run, else an ordinary metric.
TOKEN_COUNTERS: tuple[str, ...] = ("perf/total_num_tokens", "progress/total_tokens",
                                   "training_tokens", "train/training_tokens")
# Seconds one training step took (verl, prime-rl, ...): with --gpus N, summed into gpu_hours.
STEP_TIMES: tuple[str, ...] = ("timing_s/step", "step_time", "time/step", "train/step_time",
                               "perf/step_time", "timing/step")
# Kept past --metric (which may not name them) until the axes they give are made.
COUNTERS_AND_TIMES: frozenset[str] = frozenset(TOKEN_COUNTERS + STEP_TIMES)
# Columns that name the run of each row without --run-col (any case), first found wins.
RUN_COLUMNS: tuple[str, ...] = ("run_id", "run", "run_name", "name")
# Words in a column name that make it a likely step when no column is named like one.
_STEP_HINTS = ("step", "iter", "example", "sample", "epoch", "episode", "update", "batch", "seen")
STEP_NAMES: tuple[str, ...] = ("step", "global_step", "train/global_step", "trainer/global_step",
                               "iteration", "iter", "_step")


def compute_axis(name: str) -> str | None:
    low = name.strip().lower()
    if low.startswith("train/"):
        low = low[len("train/"):]
    return COMPUTE_ALIASES.get(low)


def find_step_column(names: list[str], src: Source, wanted: str | None,
                     table: pa.Table | None = None) -> str:
    """The step column: ``wanted`` (``--step-col``) or the first of :data:`STEP_NAMES` present."""
    if wanted is not None:
        if wanted not in names:
            raise src.error(f"no column {wanted!r} (from --step-col)", field=wanted,
                            expected=f"one of the columns {names}")
        return wanted
    lower = {n.lower(): n for n in reversed(names)}
    for cand in STEP_NAMES:
        if cand in lower:
            return lower[cand]
    raise src.error("no step column", field="step", expected=_step_expected(names, table))


def _step_expected(names: list[str], table: pa.Table | None) -> str:
    cands = step_candidates(table) if table is not None else []
    if cands:
        others = f" (or {', '.join(map(repr, cands[1:]))})" if len(cands) > 1 else ""
        return (f"a column named one of {list(STEP_NAMES)} (any case); {cands[0]!r} holds "
                f"non-negative whole numbers: pass --step-col {shlex.quote(cands[0])}{others}")
    return (f"a column named one of {list(STEP_NAMES)} (any case), or --step-col COL;"
            f" columns are {names}")


def step_candidates(table: pa.Table) -> list[str]:
    """Numeric columns whose cells are all non-negative whole numbers (not all equal): those
    named like a step count first (``Seen Examples``, ``timesteps``), then by distinct values."""
    found = []
    for name in table.column_names:
        col = table[name]
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            continue
        v = _to_numpy(col.cast(pa.float64()))
        v = v[~np.isnan(v)]
        if len(v) < 2 or (v < 0).any() or (v != np.floor(v)).any() or v.min() == v.max():
            continue
        hinted = any(h in name.lower() for h in _STEP_HINTS)
        found.append((not hinted, -len(np.unique(v)), name))
    return [name for _, _, name in sorted(found)]


def is_step_like(name: str) -> bool:
    return name.lower() in STEP_NAMES


def numeric(col: pa.ChunkedArray | pa.Array, *, name: str, src: Source,
            required: bool) -> np.ndarray | None:
    """A column as float64 (null -> NaN), or None if it is not numeric at all.

    A text column whose first cell is a number and a later one is not is an error at that cell
    (so is any non-number when ``required``); one whose first cell is text is text (None), like
    a JSON column; booleans are not numeric.
    """
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = col.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ):
        arr = col.cast(pa.float64())
        return _to_numpy(arr)
    if pa.types.is_boolean(typ) and not required:
        return None
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        try:
            return _to_numpy(pc.cast(col, pa.float64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        ser = pd.Series(col.to_pylist(), dtype=object)
        parsed = pd.to_numeric(ser.str.strip(), errors="coerce")
        is_nan_text = ser.str.strip().str.lower().isin(["nan", "+nan", "-nan"])
        bad = ser.notna() & parsed.isna() & ~is_nan_text
        if not required and not (ser.notna() & ~bad).any():
            return None
        first = int(np.flatnonzero(ser.notna().to_numpy())[0])
        if not required and bad.iloc[first]:
            return None  # text first (a name such as "6 Enc, 6 Dec"): a text column
        if not bad.any():  # pyarrow's parser is stricter than pandas' on a few spellings
            return parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise src.error(f"cannot parse {ser.iloc[i]!r} as a number", row=i, field=name,
                        expected="a number")
    if not required:
        return None
    raise src.error(f"column holds {typ} values", field=name, expected="numbers")


def _to_numpy(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr.to_numpy(zero_copy_only=False)


# Formats whose numbers are typed by the file itself: a quoted number there is text, not a step.
JSON_FORMATS = ("jsonl", "json", "trl")
MAX_INT64 = 2**63 - 1


def steps(col: pa.ChunkedArray | pa.Array, *, name: str, src: Source) -> np.ndarray:
    """The step column as int64 when it is integer with no nulls, else float64 (NaN = empty).

    A NaN cell (``nan`` in a CSV, ``NaN`` in JSON) is an error here, where it can still be told
    from an empty one; so are a uint64 step past int64 and, in JSON, a step written as a string.
    """
    typ = col.type
    if pa.types.is_dictionary(typ):
        col, typ = col.cast(typ.value_type), typ.value_type
    if pa.types.is_unsigned_integer(typ) and typ.bit_width == 64:
        big = _to_numpy(pc.fill_null(pc.greater(col, pa.scalar(MAX_INT64, pa.uint64())), False))
        if big.any():
            i = int(np.flatnonzero(big)[0])
            raise src.error(f"bad step {col[i].as_py()} (too large)", row=i, field=name,
                            expected=f"a non-negative integer up to {MAX_INT64}")
    if pa.types.is_integer(typ) and col.null_count == 0:
        return _to_numpy(col.cast(pa.int64()))
    if src.format in JSON_FORMATS and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        present = np.flatnonzero(~col.is_null().to_numpy(zero_copy_only=False))
        if len(present):
            i = int(present[0])
            raise src.error(f"step {col[i].as_py()!r} is a string", row=i, field=name,
                            expected="a JSON number, e.g. 1 not \"1\"")
    out = numeric(col, name=name, src=src, required=True)
    if out.dtype.kind == "f":
        nan = np.isnan(out) & ~col.is_null().to_numpy(zero_copy_only=False)
        if nan.any():
            i = int(np.flatnonzero(nan)[0])
            raise src.error("bad step nan", row=i, field=name, expected="a non-negative integer")
    return out
