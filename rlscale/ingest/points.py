"""Vectorised validation: raw points from any reader -> one :data:`POINTS_SCHEMA` table per run.

Every reader hands over a :class:`RawPoints` (numpy arrays, one entry per point, each carrying the
index of the source record it came from). The checks here run on whole arrays, so a 10-million
row table costs a few sorts and comparisons, and the first bad point is reported with the line
(or label) of its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from rlscale.ingest.columns import STEP_TIMES, TOKEN_COUNTERS
from rlscale.ingest.source import Source
from rlscale.store import COMPUTE_AXES, POINTS_SCHEMA, check_run_id


@dataclass
class RawPoints:
    """One entry per point. ``step`` float64 or int64 (NaN = missing); ``metric`` int32 codes into
    ``metric_names``; ``value`` float64; ``axes`` float64 per present compute axis (NaN = null);
    ``row`` int64 0-based source record (None: the identity); ``run`` int32 codes into ``run_names`` or None (one run).
    """

    step: np.ndarray
    metric: np.ndarray
    metric_names: list[str]
    value: np.ndarray
    row: np.ndarray | None  # None: point i came from record i
    axes: dict[str, np.ndarray] = field(default_factory=dict)
    run: np.ndarray | None = None
    run_names: list[str] = field(default_factory=list)
    step_field: str = "step"
    value_fields: list[str] | None = None  # per metric code, the source column (wide tables)
    axis_fields: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # metadata of every run of the source
    run_meta: list[dict[str, Any]] | None = None  # per run code: seed, recipe, ... from columns
    dup_hint: Callable[[], str | None] | None = None  # on a duplicate step: which option helps
    dropped: np.ndarray | None = None  # per run code: non-finite points dropped
    derived: dict[str, str] = field(default_factory=dict)  # axis -> how it was computed
    aux: set[str] = field(default_factory=set)  # metrics read only to make an axis (--metric)

    def row_of(self, i: int) -> int:
        """The 0-based source record of point ``i``."""
        return int(i) if self.row is None else int(self.row[i])

    def value_field(self, code: int) -> str:
        return self.value_fields[code] if self.value_fields else "value"

    def take(self, keep: np.ndarray) -> RawPoints:
        """Keep (bool mask) or reorder (indices) the points, in place and one array at a time,
        so a 10-million-point frame never holds two full copies of itself."""
        self.step = self.step[keep]
        self.metric = self.metric[keep]
        self.value = self.value[keep]
        if self.row is None:  # identity until the first reordering
            self.row = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64, copy=False)
        else:
            self.row = self.row[keep]
        for k in list(self.axes):
            self.axes[k] = self.axes[k][keep]
        if self.run is not None:
            self.run = self.run[keep]
        return self


def validate(raw: RawPoints, src: Source, *, drop_nonfinite: bool = False) -> RawPoints:
    """Check values, steps, compute; return the points with steps as int64 (same order)."""
    value = raw.value
    bad = ~np.isfinite(value)
    if bad.any():
        if not drop_nonfinite:
            i = int(np.flatnonzero(bad)[0])
            raise src.error(
                f"non-finite value {_n(value[i])} for metric {raw.metric_names[raw.metric[i]]!r}",
                row=raw.row_of(i), field=raw.value_field(int(raw.metric[i])),
                expected="a finite number (pass --drop-nonfinite to drop such points)",
            )
        run = raw.run[bad] if raw.run is not None else np.zeros(int(bad.sum()), np.int32)
        raw.dropped = np.bincount(run, minlength=max(len(raw.run_names), 1))
        raw.take(~bad)
    raw.step = _check_steps(raw, src)
    for axis, arr in raw.axes.items():
        bad = np.isinf(arr) | (arr < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise src.error(f"compute value {_n(arr[i])} at step {raw.step[i]}", row=raw.row_of(i),
                            field=raw.axis_fields.get(axis, axis),
                            expected="a finite, non-negative number")
    _check_tokens_range(raw, src)
    return raw


# Steps and tokens are stored as int64: a value at or past 2**63 (1e30 read as a float) cannot be.
MAX_INT64 = 2**63 - 1


def _check_tokens_range(raw: RawPoints, src: Source) -> None:
    """Tokens (stored as int64) must be below 2**63; a count past that is an error at its cell."""
    arr = raw.axes.get("tokens")
    if arr is None:
        return
    with np.errstate(invalid="ignore"):
        bad = arr >= 2.0**63
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise src.error(f"token count {_n(arr[i])} at step {raw.step[i]} is too large",
                        row=raw.row_of(i), field=raw.axis_fields.get("tokens", "tokens"),
                        expected=f"a token count from 0 to {MAX_INT64}")


def _n(x: object) -> str:
    """A number as a user wrote it: 0.5, nan, inf, 3 (never ``np.float64(0.5)``)."""
    return repr(x.item()) if hasattr(x, "item") else repr(x)


def _check_steps(raw: RawPoints, src: Source) -> np.ndarray:
    step = raw.step
    if step.dtype.kind in "iu":
        bad = step < 0
    else:
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(step) | (step < 0) | (step != np.floor(step)) | (step >= 2.0**63)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = "an empty cell" if np.isnan(step[i]) else _n(step[i])
        big = step.dtype.kind == "f" and step[i] >= 2.0**63
        raise src.error(f"bad step {shown}" + (" (too large)" if big else ""),
                        row=raw.row_of(i), field=raw.step_field,
                        expected=f"a non-negative integer up to {MAX_INT64}" if big
                        else "a non-negative integer")
    return step.astype(np.int64, copy=False)


def _sort_order(raw: RawPoints) -> np.ndarray | None:
    """Permutation ordering points by (run, metric, step, source row); None if already ordered."""
    n_runs = max(len(raw.run_names), 1)
    run = raw.run if raw.run is not None else np.zeros(len(raw.step), np.int32)
    bits = [int(n_runs - 1).bit_length(), int(len(raw.metric_names) - 1).bit_length(),
            int(raw.step.max(initial=0)).bit_length()]
    if sum(bits) <= 62:
        key = (run.astype(np.int64) << (bits[1] + bits[2])) | (
            raw.metric.astype(np.int64) << bits[2]) | raw.step
        if len(key) < 2 or bool((key[1:] >= key[:-1]).all()):
            return None
        return np.argsort(key, kind="stable")
    row = np.arange(len(raw.step)) if raw.row is None else raw.row
    return np.lexsort((row, raw.step, raw.metric, run))


def to_run_tables(raw: RawPoints, src: Source, *, default_run_id: str,
                  drop_nonfinite: bool = False) -> list[tuple[str, pa.Table]]:
    """Validate and split into ``[(run_id, table), ...]``; each table sorted by (metric, step)."""
    runs = to_run_set(raw, src, default_run_id=default_run_id, drop_nonfinite=drop_nonfinite)
    return [(rid, runs.table(k)) for k, rid in enumerate(runs.run_ids)]


class RunSet:
    """Validated points of one source, sorted by (run, metric, step), split into runs lazily:
    :meth:`table` builds one run's :data:`POINTS_SCHEMA` table when it is about to be written."""

    def __init__(self, raw: RawPoints, default_run_id: str, source: Source | None = None) -> None:
        self.raw = raw
        self.source = source  # the log they came from, for errors that name a point's line
        self.held_line: int | None = None  # an unterminated last line not read (growing.py)
        self.open_line: int | None = None  # an unterminated last line that was read
        n = len(raw.step)
        run = raw.run if raw.run is not None else np.zeros(n, np.int32)
        starts = np.concatenate([[0], np.flatnonzero(run[1:] != run[:-1]) + 1, [n]]) if n else [0, 0]
        self.bounds = [(int(s), int(e)) for s, e in zip(starts[:-1], starts[1:])]
        self.codes = [int(run[s]) if n else 0 for s, _ in self.bounds]
        self.run_ids = [raw.run_names[run[s]] if raw.run is not None else default_run_id
                        for s, _ in self.bounds]

    def meta(self, k: int) -> dict[str, Any]:
        """Metadata the source gives run ``k`` (seed, recipe, summaries, derived axes)."""
        per_run = self.raw.run_meta[self.codes[k]] if self.raw.run_meta else {}
        return {**self.raw.meta, **per_run}

    def n_dropped(self, k: int) -> int:
        """How many non-finite points of run ``k`` --drop-nonfinite dropped."""
        d = self.raw.dropped
        return 0 if d is None or self.codes[k] >= len(d) else int(d[self.codes[k]])

    def n_points(self, k: int) -> int:
        s, e = self.bounds[k]
        return e - s

    def metrics(self, k: int) -> list[str]:
        s, e = self.bounds[k]
        m = self.raw.metric[s:e]  # sorted within a run
        firsts = np.concatenate([[0], np.flatnonzero(m[1:] != m[:-1]) + 1]) if e > s else []
        return [self.raw.metric_names[m[i]] for i in firsts]

    def table(self, k: int) -> pa.Table:
        s, e = self.bounds[k]
        return _table(self.raw, s, e, self.run_ids[k])


def to_run_set(raw: RawPoints, src: Source, *, default_run_id: str,
               drop_nonfinite: bool = False, gpus: float | None = None) -> RunSet:
    """Validate ``raw`` (consumed: its arrays are reordered in place) into a :class:`RunSet`.

    Identical duplicate (step, metric) points collapse to one; different ones are an error, as is
    a compute axis that decreases as steps increase within a metric's series. A cumulative token
    counter (:data:`TOKEN_COUNTERS`) that never decreases becomes the tokens axis; with ``gpus``,
    a per-step time (:data:`STEP_TIMES`) summed over steps gives gpu_hours.
    """
    raw = validate(raw, src, drop_nonfinite=drop_nonfinite)
    _promote_token_counter(raw)
    _check_tokens_range(raw, src)
    if gpus is not None:
        _derive_gpu_hours(raw, src, gpus)
    if raw.aux:
        raw.take(~np.isin(raw.metric, [k for k, n in enumerate(raw.metric_names) if n in raw.aux]))
    _sort_metric_names(raw)
    if raw.run is not None:
        for code, name in enumerate(raw.run_names):
            try:
                check_run_id(name)
            except Exception as exc:  # noqa: BLE001 - re-raised with the row that named it
                i = int(np.flatnonzero(raw.run == code)[0])
                raise src.error(f"{exc}", row=raw.row_of(i), field="run_id") from None
    if len(raw.step) == 0:
        raise src.error("no points", expected="at least one metric value (every cell was empty"
                        + (" or dropped as non-finite)" if drop_nonfinite else ")"))
    order = _sort_order(raw)
    if order is not None:
        raw.take(order)
        del order
    _collapse_duplicates(raw, src, _same_series(raw) & (raw.step[1:] == raw.step[:-1]))
    _check_monotone(raw, src, _same_series(raw))
    return RunSet(raw, default_run_id, src)


def _same_series(raw: RawPoints) -> np.ndarray:
    same = raw.metric[1:] == raw.metric[:-1]
    if raw.run is not None:
        same &= raw.run[1:] == raw.run[:-1]
    return same


def _sort_metric_names(raw: RawPoints) -> None:
    """Renumber metric codes so that code order is name order (tables come out name-sorted)."""
    order = sorted(range(len(raw.metric_names)), key=lambda k: raw.metric_names[k])
    if order == list(range(len(order))):
        return
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    raw.metric = rank[raw.metric]
    raw.metric_names = [raw.metric_names[k] for k in order]
    if raw.value_fields:
        raw.value_fields = [raw.value_fields[k] for k in order]


def _collapse_duplicates(raw: RawPoints, src: Source, dup: np.ndarray) -> None:
    """Merge repeats of one (run, metric, step): equal values are one point whatever their wall
    times (TRL logs ``train/epoch`` twice at its last step); the first one's wall time is kept.
    A repeat whose value, or other compute axis, differs is an error that shows both."""
    if not dup.any():
        return
    idx = np.flatnonzero(dup)
    same = raw.value[idx] == raw.value[idx + 1]
    differs: dict[str, np.ndarray] = {}
    for axis, arr in raw.axes.items():
        if axis == "wall_s":
            continue
        a, b = arr[idx], arr[idx + 1]
        differs[axis] = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        same &= ~differs[axis]
    if not same.all():
        k = int(np.flatnonzero(~same)[0])
        j = int(idx[k])
        first_line, first_label = src.locate(raw.row_of(j))
        first = f"line {first_line}" if first_line is not None else first_label
        field = raw.value_field(int(raw.metric[j]))
        if raw.value[j] != raw.value[j + 1]:
            shown = f"{_n(raw.value[j + 1])} here, {_n(raw.value[j])} at {first}"
        else:
            axis = next(a for a, d in differs.items() if d[k])
            field = raw.axis_fields.get(axis, axis)
            shown = (f"value {_n(raw.value[j])} both times, but {axis} {_n(raw.axes[axis][j + 1])} "
                     f"here, {_n(raw.axes[axis][j])} at {first}")
        hint = raw.dup_hint() if raw.dup_hint is not None else None
        raise src.error(
            f"duplicate point for metric {raw.metric_names[raw.metric[j]]!r} at step "
            f"{raw.step[j]}: {shown}", row=raw.row_of(j + 1), field=field,
            expected=hint or "one value per (step, metric); identical repeats are merged",
        )
    keep = np.ones(len(raw.step), bool)
    keep[idx + 1] = False
    raw.take(keep)


def _series(raw: RawPoints, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Metric ``name``'s points: (mask, run, step, value), ordered by (run, step)."""
    mask = np.isin(raw.metric, [k for k, n in enumerate(raw.metric_names) if n == name])
    run = raw.run[mask] if raw.run is not None else np.zeros(int(mask.sum()), np.int32)
    step, value = raw.step[mask], raw.value[mask]
    order = np.lexsort((step, run))
    return mask, run[order], step[order], value[order]


def _at_steps(raw: RawPoints, run: np.ndarray, step: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` (one per (run, step), sorted) at every point's (run, step); NaN elsewhere."""
    shift = int(raw.step.max(initial=0)).bit_length() + 1
    key = (run.astype(np.int64) << shift) | step
    all_run = raw.run if raw.run is not None else np.zeros(len(raw.step), np.int32)
    want = (all_run.astype(np.int64) << shift) | raw.step
    pos = np.clip(np.searchsorted(key, want), 0, max(len(key) - 1, 0))
    out = np.full(len(want), np.nan)
    if len(key):
        hit = key[pos] == want
        out[hit] = value[pos[hit]]
    return out


def _promote_token_counter(raw: RawPoints) -> None:
    """A cumulative token counter that never decreases (per run) becomes the tokens axis."""
    if "tokens" in raw.axes:
        return
    for name in TOKEN_COUNTERS:
        if name not in raw.metric_names:
            continue
        code = raw.metric_names.index(name)
        mask, run, step, value = _series(raw, name)
        same_run = run[1:] == run[:-1]
        repeat = same_run & (step[1:] == step[:-1])
        if (value < 0).any() or (same_run & (value[1:] < value[:-1])).any() or (
                repeat & (value[1:] != value[:-1])).any():
            continue  # not a counter: stays a metric
        keep = np.concatenate([[True], ~repeat])
        tokens = _at_steps(raw, run[keep], step[keep], value[keep])
        raw.take(~mask)
        raw.axes["tokens"] = tokens[~mask]
        raw.axis_fields["tokens"] = raw.value_field(code)
        return


def _derive_gpu_hours(raw: RawPoints, src: Source, gpus: float) -> None:
    """gpu_hours at each step where a per-step time was logged: the sum of the step times so far
    (each weighted by the steps since the previous logged one) x ``gpus`` / 3600."""
    name = next((n for n in STEP_TIMES if n in raw.metric_names), None)
    if name is None:
        raise src.error("--gpus needs a per-step time to multiply",
                        expected=f"a metric named one of {list(STEP_TIMES)}, or no --gpus")
    if "gpu_hours" in raw.axes:
        raise src.error(f"--gpus and a gpu_hours column ({raw.axis_fields['gpu_hours']!r})",
                        expected="one source of gpu_hours: drop --gpus")
    code = raw.metric_names.index(name)
    _, run, step, value = _series(raw, name)
    first = np.concatenate([[True], run[1:] != run[:-1]])
    keep = first | np.concatenate([[True], step[1:] != step[:-1]])
    run, step, value, first = run[keep], step[keep], value[keep], first[keep]
    gap = np.where(first, 1, np.diff(step, prepend=0))
    total = np.cumsum(value * gap)
    start = np.maximum.accumulate(np.where(first, np.arange(len(total)), 0))
    base = np.where(start > 0, total[np.maximum(start - 1, 0)], 0.0)
    hours = (total - base) * gpus / 3600.0
    raw.axes["gpu_hours"] = _at_steps(raw, run, step, hours)
    raw.axis_fields["gpu_hours"] = raw.value_field(code)
    raw.derived["gpu_hours"] = (
        f"sum of {name!r} (seconds per step, times the steps since the previous log) "
        f"x {gpus:g} GPUs / 3600")


def _check_monotone(raw: RawPoints, src: Source, same_series: np.ndarray) -> None:
    boundary = None
    for axis, arr in raw.axes.items():
        nan = np.isnan(arr)
        if not nan.any():  # the common case: compare neighbours within a series directly
            a = np.flatnonzero(same_series & (arr[1:] < arr[:-1]))
            bad_pair = (int(a[0]), int(a[0]) + 1) if len(a) else None
        else:
            present = np.flatnonzero(~nan)
            if len(present) < 2:
                continue
            if boundary is None:
                boundary = np.concatenate([[0], np.cumsum(~same_series)])
            a, b = present[:-1], present[1:]
            bad = (boundary[a] == boundary[b]) & (arr[b] < arr[a])
            k = np.flatnonzero(bad)
            bad_pair = (int(a[k[0]]), int(b[k[0]])) if len(k) else None
        if bad_pair is not None:
            i, j = bad_pair
            raise src.error(
                f"{axis} decreases from {_n(arr[i])} (step {raw.step[i]}) to {_n(arr[j])} "
                f"(step {raw.step[j]})", row=raw.row_of(j), field=raw.axis_fields.get(axis, axis),
                expected="compute that never decreases as steps increase",
            )


def _table(raw: RawPoints, s: int, e: int, rid: str) -> pa.Table:
    cols = {
        "run_id": _strings([rid], np.zeros(e - s, np.int32)),
        "step": pa.array(raw.step[s:e]),
        "metric": _strings(raw.metric_names, raw.metric[s:e]),
        "value": pa.array(raw.value[s:e]),
    }
    for axis in COMPUTE_AXES:
        typ = POINTS_SCHEMA.field(axis).type
        if axis not in raw.axes:
            cols[axis] = pa.nulls(e - s, typ)
            continue
        arr = raw.axes[axis][s:e]
        mask = np.isnan(arr)
        if axis == "tokens":
            arr = np.round(np.where(mask, 0, arr)).astype(np.int64)
        cols[axis] = pa.array(arr, type=typ, mask=mask if mask.any() else None)
    return pa.table(cols, schema=POINTS_SCHEMA)


def _strings(names: list[str], codes: np.ndarray) -> pa.Array:
    """``[names[c] for c in codes]`` as a string array, built from its buffers; fast when
    ``codes`` come in runs of equal values (a run's metrics are sorted): a few repeats."""
    n = len(codes)
    cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], cuts]).astype(np.int64) if n else np.zeros(0, np.int64)
    counts = np.diff(np.concatenate([starts, [n]]))
    enc = [name.encode() for name in names]
    width = np.array([len(b) for b in enc], np.int64)
    if n == 0 or int((width[codes[starts]] * counts).sum()) >= 2**31:  # past int32 offsets
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)),
                                              pa.array(names, pa.string())).cast(pa.string())
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(width[codes], out=offsets[1:])
    data = b"".join(enc[c] * int(k) for c, k in zip(codes[starts], counts))
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                   pa.py_buffer(data)])
