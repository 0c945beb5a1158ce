"""TensorBoard event files written by torch.utils.tensorboard.SummaryWriter (the real writer)."""

from __future__ import annotations

import pytest

from rlscale.errors import InputError
from rlscale.ingest import ingest_path, read_source
from rlscale.store import load_points

tb = pytest.importorskip("torch.utils.tensorboard")


def write_run(log_dir, n=20, start=0, reward=lambda s: 0.1 + 0.01 * s, gpu=True):
    with tb.SummaryWriter(log_dir=str(log_dir)) as w:
        for s in range(start, start + n):
            w.add_scalar("eval/reward", reward(s), s)
            if gpu:
                w.add_scalar("gpu_hours", 0.5 * s, s)
    return log_dir


def test_scalars_and_compute_tag(tmp_path, store_dir):
    run = write_run(tmp_path / "logs" / "grpo_a")
    [res] = ingest_path(run, store_dir, recipe="grpo")
    assert (res.run_id, res.format, res.n_points, res.metrics) == (
        "grpo_a", "tensorboard", 20, ["eval/reward"])
    pts = load_points(store_dir)
    assert pts["step"].tolist() == list(range(20))
    assert pts["value"].tolist() == pytest.approx([0.1 + 0.01 * s for s in range(20)], rel=1e-6)
    assert pts["gpu_hours"].tolist() == [0.5 * s for s in range(20)]
    assert (pts["wall_s"] >= 0).all() and pts["wall_s"].is_monotonic_increasing


def test_directory_of_run_dirs_and_event_file_path(tmp_path, store_dir):
    write_run(tmp_path / "logs" / "a", gpu=False)
    write_run(tmp_path / "logs" / "b", n=5, gpu=False)
    res = ingest_path(tmp_path / "logs", store_dir)
    assert [(r.run_id, r.n_points) for r in res] == [("a", 20), ("b", 5)]
    event = next((tmp_path / "logs" / "b").glob("events.out.tfevents.*"))
    [(meta, _)] = read_source(event)
    assert meta.run_id == "b"


def test_truncated_event_file_is_an_error(tmp_path, store_dir):
    run = write_run(tmp_path / "cut")
    event = next(run.glob("events.out.tfevents.*"))
    data = event.read_bytes()
    event.write_bytes(data[: len(data) - 7])
    with pytest.raises(InputError, match=r"cut.*truncated or corrupt") as info:
        ingest_path(run, store_dir)
    assert info.value.path == str(run)
    assert not store_dir.exists()


def test_restart_in_a_second_file_merges(tmp_path):
    run = tmp_path / "restarted"
    write_run(run, n=10, gpu=False)
    write_run(run, n=10, start=10, gpu=False)
    [(_, table)] = read_source(run)
    assert table["step"].tolist() == list(range(20))


def test_nan_scalar_needs_drop_nonfinite(tmp_path):
    run = write_run(tmp_path / "nan", n=3, reward=lambda s: float("nan") if s == 1 else 0.5,
                    gpu=False)
    with pytest.raises(InputError, match=r"tag 'eval/reward' event 2 \(step 1\).*non-finite"):
        read_source(run)
    [(_, table)] = read_source(run, drop_nonfinite=True)
    assert table["step"].tolist() == [0, 2]
