"""Sweeps on a local Ray instance (one per module: Ray takes seconds to start)."""

from __future__ import annotations

import pytest

from sweep_jobs import assert_whole, starts, write_spec

from rlscale.sweep.executors import InProcessExecutor, RayExecutor
from rlscale.store import Store
from rlscale.sweep.run import run_sweep
from rlscale.sweep.spec import load_spec

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_sweep_matches_local(ray_instance, tmp_path):
    spec_path = write_spec(tmp_path, extra="num_cpus = 1")
    spec = load_spec(spec_path)
    run_sweep(spec, store=tmp_path / "local", executor=InProcessExecutor())
    executor = RayExecutor()
    result = run_sweep(spec, store=tmp_path / "ray", executor=executor, refresh_s=0.1)
    assert result.counts() == {"complete": 2}
    assert ray_instance.is_initialized()  # the executor did not shut down a Ray it did not start
    a = Store(tmp_path / "local").read_points().drop(columns="wall_s")
    b = Store(tmp_path / "ray").read_points().drop(columns="wall_s")
    assert len(a) == 12 and a.equals(b)
    assert_whole(Store(tmp_path / "ray"), spec_path)


def test_ray_failure_reported_and_resume(ray_instance, tmp_path):
    spec_path = write_spec(tmp_path, grid="fail_at = [-1, 3]")
    result = run_sweep(load_spec(spec_path), store=tmp_path / "s", executor=RayExecutor(),
                       refresh_s=0.1)
    assert [(j.job_id, j.state, j.error) for j in result.jobs] == [
        ("toy-fail_at=-1-s0", "complete", None),
        ("toy-fail_at=3-s0", "failed", "RuntimeError: injected failure at step 3")]
    again = run_sweep(load_spec(spec_path), store=tmp_path / "s", executor=RayExecutor(),
                      resume=True, refresh_s=0.1)
    assert again.counts() == {"skipped": 1, "failed": 1}
    assert starts(tmp_path) == {"toy-fail_at=-1-s0": [False], "toy-fail_at=3-s0": [False, True]}


def test_cli_executor_ray(ray_instance, tmp_path):
    from click.testing import CliRunner

    from rlscale.cli import main

    spec_path = write_spec(tmp_path, grid="lr = [0.5, 2.0]")
    store = tmp_path / "s"
    out = CliRunner().invoke(main, ["sweep", str(spec_path), "--store", str(store),
                                    "--executor", "ray", "--refresh", "0.1"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "2 complete" in out.output
    assert_whole(Store(store), spec_path)
