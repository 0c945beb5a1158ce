"""TensorBoard event files: scalars of one run directory, read with TensorBoard's EventAccumulator.

A run is a directory holding ``events.out.tfevents.*`` files (several files, e.g. after a restart,
are merged by the accumulator, which also drops points orphaned by a restart). Scalars written
as ``simple_value`` (``torch.utils.tensorboard``, tensorboardX) and as scalar tensors
(``tf.summary.scalar``) are both read. Tags named like a compute axis (``gpu_hours``,
``train/num_tokens``, ...) become that axis at their step; ``wall_s`` is each event's wall time
minus the run's first event's. Every event file is first read through TensorBoard's record
reader with CRC checks, so a truncated or corrupt file is an error, not a silent short run.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from rlscale.ingest.columns import COUNTERS_AND_TIMES, compute_axis
from rlscale.ingest.options import IngestOptions
from rlscale.ingest.points import RawPoints
from rlscale.ingest.source import Source

EVENT_GLOB = "events.out.tfevents.*"


def event_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob(EVENT_GLOB) if p.is_file())


def _check_lengths(path: Path, src: Source) -> None:
    """Each record's length field fits in what is left of the file (a corrupt length such as
    2**40 would otherwise have the record reader try to allocate it)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos, count = 0, 0
        while pos + 12 <= size:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length + 16 > size - pos:
                raise src.error(f"{path.name}: event file is truncated or corrupt after {count} "
                                f"records (record {count + 1} at byte {pos} claims {length} "
                                f"bytes, {max(0, size - pos - 16)} are left)",
                                expected="a complete TensorBoard event file")
            pos += 16 + length
            fh.seek(pos)
            count += 1


def _check_records(path: Path, src: Source) -> None:
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow

    _check_lengths(path, src)
    reader = pywrap_tensorflow.PyRecordReader_New(str(path).encode(), 0, None, None)
    count = 0
    while True:
        try:
            reader.GetNext()
            event_pb2.Event.FromString(reader.record())
        except DecodeError:
            raise src.error(f"{path.name}: record {count + 1} is not a TensorBoard event "
                            "(its checksum matches, its contents do not parse)",
                            expected="a complete TensorBoard event file") from None
        except errors.OutOfRangeError:
            break
        except errors.DataLossError as exc:
            raise src.error(f"{path.name}: event file is truncated or corrupt after {count} "
                            f"records ({exc.message.split(' has ')[-1]})",
                            expected="a complete TensorBoard event file") from None
        count += 1
    if count == 0:
        raise src.error(f"{path.name}: empty event file", expected="TensorBoard events")


def read_tensorboard(run_dir: Path, opts: IngestOptions, *, fmt: str = "tensorboard"
                     ) -> tuple[RawPoints, Source]:
    """Points of one TensorBoard run directory (or one event file's directory)."""
    labels: list[str] = []
    src = Source(path=run_dir, format=fmt, locate=lambda row: (None, labels[row]))
    files = event_files(run_dir)
    if not files:
        raise src.error("no event files", expected=f"files named {EVENT_GLOB}")
    for f in files:
        _check_records(f, src)
    events = _load_scalars(run_dir, src)
    metric_tags = sorted(t for t in events if compute_axis(t) is None)
    aux: set[str] = set()
    if opts.metrics:
        missing = sorted(set(opts.metrics) - set(metric_tags))
        if missing:
            raise src.error(f"no scalar tag(s) {missing} (from --metric)", field=missing[0],
                            expected=f"tags among {metric_tags}")
        aux = {t for t in metric_tags if t in COUNTERS_AND_TIMES and t not in opts.metrics}
        metric_tags = [t for t in metric_tags if t in opts.metrics or t in aux]
    if not metric_tags:
        raise src.error("no scalar metrics", expected="scalar summaries (add_scalar)")
    step, value, wall, metric = [], [], [], []
    for code, tag in enumerate(metric_tags):
        for k, (w, s, v) in enumerate(events[tag]):
            labels.append(f"tag {tag!r} event {k + 1} (step {s})")
            step.append(s), value.append(v), wall.append(w), metric.append(code)
    step_arr = np.asarray(step, np.int64)
    raw = RawPoints(
        step=step_arr, metric=np.asarray(metric, np.int32), metric_names=metric_tags,
        value=np.asarray(value, np.float64), row=np.arange(len(step), dtype=np.int64),
        axis_fields={}, aux=aux,
    )
    first_wall = min(w for evs in events.values() for w, _, _ in evs)
    raw.axes["wall_s"] = np.asarray(wall, np.float64) - first_wall
    raw.axis_fields["wall_s"] = "wall_time"
    for tag in sorted(set(events) - set(metric_tags)):
        axis = compute_axis(tag)
        if axis is None:
            continue
        raw.axes[axis] = _axis_at_steps(events[tag], step_arr, src, tag)
        raw.axis_fields[axis] = tag
    return raw, src


def _axis_at_steps(evs: list[tuple[float, int, float]], steps: np.ndarray, src: Source,
                   tag: str) -> np.ndarray:
    by_step: dict[int, float] = {}
    for _, s, v in evs:
        if s in by_step and by_step[s] != v:
            raise src.error(f"tag {tag!r} has two values at step {s}: {by_step[s]} and {v}",
                            field=tag, expected="one compute value per step")
        by_step[s] = v
    return np.array([by_step.get(int(s), np.nan) for s in steps], np.float64)


def _load_scalars(run_dir: Path, src: Source) -> dict[str, list[tuple[float, int, float]]]:
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    acc = ea.EventAccumulator(str(run_dir), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    out = {t: [(e.wall_time, e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]}
    for tag in tags.get("tensors", []):
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        out[tag] = [(e.wall_time, e.step, _scalar(tensor_util.make_ndarray(e.tensor_proto), tag,
                                                  e.step, src))
                    for e in acc.Tensors(tag)]
    return out


def _scalar(arr: np.ndarray, tag: str, step: int, src: Source) -> float:
    """A scalars-plugin tensor's one number; a string or a vector is an error naming the tag."""
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        kind = "string" if arr.dtype.kind in "SUO" else arr.dtype.name
        what = f"a {kind} tensor of shape {list(arr.shape)}"
        raise src.error(f"tag {tag!r} at step {step} holds {what}", field=tag,
                        expected="one number per scalar summary")
    return float(arr.reshape(()))
