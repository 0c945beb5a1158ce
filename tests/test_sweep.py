"""Running sweeps: in-process and local-pool execution, failures, restart after SIGKILL, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner

import sweep_jobs
from sweep_jobs import assert_whole, starts, write_spec

from rlscale.cli import main
from rlscale.errors import RLScaleError, StoreError
from rlscale.sweep.executors import InProcessExecutor, LocalExecutor, make_executor
from rlscale.store import Store
from rlscale.sweep.run import read_sweep_state, resolve_jobs, run_sweep
from rlscale.sweep.progress import ProgressView
from rlscale.sweep.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def test_inprocess_sweep_then_resume_skips_complete(tmp_path, store_dir):
    spec_path = write_spec(tmp_path)
    spec = load_spec(spec_path)
    result = run_sweep(spec, store=store_dir, executor=InProcessExecutor(), refresh_s=0.01)
    assert result.counts() == {"complete": 2}
    store = Store(store_dir)
    assert store.run_ids() == ["toy-lr=0.5-s0", "toy-lr=1-s0"]
    assert_whole(store, spec_path)
    state = read_sweep_state(store, "toy")
    assert state["driver"] is None and {j["state"] for j in state["jobs"].values()} == {"complete"}
    with pytest.raises(StoreError, match="pass --resume"):
        run_sweep(spec, store=store_dir, executor=InProcessExecutor())
    again = run_sweep(spec, store=store_dir, executor=InProcessExecutor(), resume=True)
    assert again.counts() == {"skipped": 2}
    assert starts(tmp_path) == {"toy-lr=0.5-s0": [False], "toy-lr=1-s0": [False]}


def test_extending_a_sweep_runs_only_the_new_jobs(tmp_path, store_dir):
    run_sweep(load_spec(write_spec(tmp_path, grid="lr = [0.5]")), store=store_dir,
              executor=InProcessExecutor())
    spec_path = write_spec(tmp_path, grid="lr = [0.5, 1.0]")
    result = run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor(),
                       resume=True)
    assert [(j.job_id, j.state) for j in result.jobs] == [
        ("toy-lr=0.5-s0", "skipped"), ("toy-lr=1-s0", "complete")]
    assert_whole(Store(store_dir), spec_path)


def test_failing_job_is_reported_and_others_finish(tmp_path, store_dir):
    spec_path = write_spec(tmp_path, grid="lr = [0.5]",
                           points="[[points]]\nfail_at = -1\n[[points]]\nfail_at = 2\n"
                                  "[[points]]\nfail_at = 7\n")
    result = run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor())
    assert [(j.job_id, j.state) for j in result.jobs] == [
        ("toy-fail_at=-1-lr=0.5-s0", "complete"), ("toy-fail_at=2-lr=0.5-s0", "failed"),
        ("toy-fail_at=7-lr=0.5-s0", "complete")]
    bad = result.failed[0]
    assert bad.error == "RuntimeError: injected failure at step 2"
    assert "curve_job" in bad.traceback
    log = (store_dir / "_sweeps" / "toy" / f"{bad.job_id}.log").read_text()
    assert "RuntimeError: injected failure at step 2" in log
    recorded = read_sweep_state(Store(store_dir), "toy")["jobs"][bad.job_id]
    assert recorded["state"] == "failed" and recorded["error"] == bad.error
    # a restart resumes the failed run (from its 2 logged steps) rather than starting it over
    again = run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor(),
                      resume=True)
    assert again.counts() == {"skipped": 2, "failed": 1}
    assert starts(tmp_path)[bad.job_id] == [False, True]


def test_local_pool_matches_inprocess(tmp_path):
    spec_path = write_spec(tmp_path)
    spec = load_spec(spec_path)
    run_sweep(spec, store=tmp_path / "a", executor=InProcessExecutor())
    pool = LocalExecutor(workers=2, cores=2)
    assert (pool.capacity, pool.threads) == (2, 1)
    result = run_sweep(spec, store=tmp_path / "b", executor=pool, refresh_s=0.05)
    assert result.counts() == {"complete": 2}
    assert {j.host for j in result.jobs} == {os.uname().nodename}
    a = Store(tmp_path / "a").read_points().drop(columns="wall_s")
    b = Store(tmp_path / "b").read_points().drop(columns="wall_s")
    assert len(a) == 12
    assert a.equals(b)


def test_group_leader_finishes_before_the_rest_start(tmp_path, store_dir):
    spec_path = write_spec(tmp_path, extra='seeds = [0, 1]\ngroup_by = ["recipe"]', sleep_s=0.02)
    jobs = resolve_jobs(load_spec(spec_path))
    assert {j.group for j in jobs} == {"toy"}
    result = run_sweep(load_spec(spec_path), store=store_dir, executor=LocalExecutor(workers=2),
                       refresh_s=0.02)
    assert result.counts() == {"complete": 4}
    marks = tmp_path / "markers"
    begun = {p.name.rsplit(".", 2)[0]: json.loads(p.read_text())["t"] for p in marks.glob("*.json")}
    leader_end = float((marks / f"{jobs[0].job_id}.end").read_text())
    assert min(begun.values()) == begun[jobs[0].job_id]
    assert all(begun[j.job_id] > leader_end for j in jobs[1:])


def test_local_pool_survives_a_crashing_worker(tmp_path, store_dir):
    spec_path = write_spec(tmp_path, grid="crash_at = [1, -1]")
    result = run_sweep(load_spec(spec_path), store=store_dir, executor=LocalExecutor(workers=1),
                       refresh_s=0.05)
    crashed, fine = result.jobs
    assert crashed.state == "failed" and crashed.error.startswith("worker process died")
    assert fine.state == "complete"
    assert Store(store_dir).read_meta(crashed.job_id).status == "running"  # resumable


def test_a_job_calling_exit_fails_alone(tmp_path, store_dir):
    spec_path = write_spec(tmp_path, grid="exit_at = [1, -1]")
    result = run_sweep(load_spec(spec_path), store=store_dir, executor=LocalExecutor(workers=1),
                       refresh_s=0.05)
    assert [(j.state, j.error) for j in result.jobs] == [
        ("failed", "SystemExit: job called exit at step 1"), ("complete", None)]


def test_local_pool_splits_threads():
    pool = LocalExecutor(cores=8)
    assert (pool.capacity, pool.threads) == (8, 1)
    pool.expect(2)
    assert (pool.capacity, pool.threads) == (2, 4)
    pool = LocalExecutor(workers=3, cores=8)
    pool.expect(2)  # an explicit --workers stays
    assert (pool.capacity, pool.threads) == (3, 2)


def test_sweep_cores_option_reaches_the_pool():
    from rlscale.sweep.executors import make_executor

    pool = make_executor("local", workers=1, cores=1)
    assert (pool.capacity, pool.threads) == (1, 1)
    assert make_executor("local", cores=3).threads == 1


def test_changed_spec_under_same_name_is_refused(tmp_path, store_dir):
    spec_path = write_spec(tmp_path)
    run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor())
    spec_path = write_spec(tmp_path, extra="[set]\nsteps = 9")
    before = sorted(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())

    def never() -> None:
        pytest.fail("an executor was built for a sweep that cannot run")

    with pytest.raises(StoreError, match="different config.*steps: stored 6 vs spec 9"):
        run_sweep(load_spec(spec_path), store=store_dir, executor=never, resume=True)
    assert sorted(p.read_bytes() for p in store_dir.rglob("*") if p.is_file()) == before


def test_sigkilled_sweep_restarts_without_rerunning(tmp_path, store_dir):
    spec_path = write_spec(tmp_path, grid="steps = [3, 40, 4]", sleep_s=0.05)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    cmd = [sys.executable, "-m", "rlscale", "sweep", str(spec_path), "--store", str(store_dir),
           "--workers", "1", "--refresh", "0.1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = Store(store_dir)
    first, second = "toy-steps=3-s0", "toy-steps=40-s0"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (store.has_run(first) and store.read_meta(first).status == "complete"
                    and store.has_run(second) and len(store.read_points(runs=[second])) >= 5):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"sweep never got midway: {proc.stderr.read().decode()[-2000:]}")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    worker = json.loads(next((tmp_path / "markers").glob(f"{second}.*.json")).read_text())["pid"]
    for _ in range(100):  # the pool worker notices its parent is gone and exits
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the pool worker outlived the killed sweep")
    assert store.read_meta(second).status == "running"
    assert not store.has_run("toy-steps=4-s0")

    out = CliRunner().invoke(main, ["sweep", str(spec_path), "--store", str(store_dir),
                                    "--executor", "inprocess", "--resume", "--refresh", "0.05"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "resumed" in out.output and "1 skipped" in out.output
    assert_whole(store, spec_path)
    assert starts(tmp_path) == {first: [False], second: [False, True], "toy-steps=4-s0": [False]}


def test_a_sweep_running_elsewhere_on_this_host_is_not_started_twice(tmp_path, store_dir):
    import socket

    spec_path = write_spec(tmp_path)
    state = store_dir / "_sweeps" / "toy.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"driver": {"host": socket.gethostname(), "pid": os.getppid()}}))
    with pytest.raises(StoreError, match=f"already being run by process {os.getppid()}"):
        run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor())
    state.write_text(json.dumps({"driver": {"host": socket.gethostname(), "pid": 2**22 + 7}}))
    result = run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor())
    assert result.counts() == {"complete": 2}  # a dead driver's claim does not count


def test_cli_dry_run_prints_jobs_and_compute_and_writes_nothing(tmp_path, store_dir):
    spec_path = write_spec(tmp_path, extra="seeds = [0, 1]")
    out = CliRunner().invoke(main, ["sweep", str(spec_path), "--store", str(store_dir),
                                    "--dry-run"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == ["run_id", "action", "lr", "seed", "flops", "device_h"]
    assert lines[1].split() == ["toy-lr=0.5-s0", "start", "0.5", "0", "6e+09", "6e-06"]
    assert lines[4].split()[0] == "toy-lr=1-s1"
    assert "4 jobs: 4 to start, 0 to resume, 0 complete" in lines[5]
    assert "estimated compute to run: 2.4e+10 FLOPs, 2.4e-05 device-hours" in lines[5]
    assert not store_dir.exists()


def test_cli_reports_failures_with_exit_code(tmp_path, store_dir):
    spec_path = write_spec(tmp_path, grid="fail_at = [-1, 1]")
    out = CliRunner().invoke(main, ["sweep", str(spec_path), "--store", str(store_dir),
                                    "--executor", "inprocess"], catch_exceptions=False)
    assert out.exit_code == 1
    assert "FAILED toy-fail_at=1-s0: RuntimeError: injected failure at step 1" in out.output
    assert "1 complete, 1 failed" in out.output


def test_cli_bad_spec_and_bad_options(tmp_path, store_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\njob = "m:f"\nseeds = "0"\n')
    out = CliRunner().invoke(main, ["sweep", str(bad), "--store", str(store_dir)])
    assert out.exit_code == 1 and "column 'seeds'" in out.output and str(bad) in out.output
    out = CliRunner().invoke(main, ["sweep", str(bad), "--address", "auto"])
    assert out.exit_code == 2 and "--address is for --executor ray" in out.output
    assert not store_dir.exists()


def test_ray_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RLScaleError, match=r"pip install 'rlscale\[ray\]'"):
        make_executor("ray")


def test_progress_view_log_and_table(tmp_path, store_dir):
    spec_path = write_spec(tmp_path)
    log = StringIO()
    view = ProgressView(Store(store_dir), name="toy", stream=log, tty=False)
    run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor(), on_update=view)
    text = log.getvalue()
    assert "started   toy-lr=0.5-s0" in text
    last = sweep_jobs.value_at({"lr": 1.0, "seed": 0}, 5)
    assert f"complete  toy-lr=1-s0  step 5  reward {last:.4g}" in text
    assert "[sweep toy: 2/2 done, 0 running, 0 failed, 0 pending]" in text
    tty = StringIO()
    view = ProgressView(Store(store_dir), name="toy", stream=tty, tty=True)
    states = run_sweep(load_spec(spec_path), store=store_dir, executor=InProcessExecutor(),
                       resume=True).jobs
    view(states)
    view(states)
    drawn = tty.getvalue()
    assert drawn.count("\x1b[4F\x1b[J") == 1  # the second draw replaced the first in place
    assert "toy-lr=1-s0    skipped          5" in drawn and f"{last:.4g}" in drawn


def test_progress_view_reports_running_jobs_periodically(store_dir):
    import pandas as pd

    from rlscale.store import RunMeta, RunWriter
    from rlscale.sweep.run import JobState

    writer = RunWriter.open(store_dir, RunMeta("a", seed=0))
    writer.append(pd.DataFrame({"step": [0, 1, 1], "metric": ["reward", "reward", "loss"],
                                "value": [0.25, 0.5, 3.0]}))
    states = [JobState("a", 0, {}, state="running"), JobState("b", 0, {}, state="running")]
    log = StringIO()
    view = ProgressView(Store(store_dir), name="s", stream=log, tty=False, log_every_s=0)
    view(states)
    lines = log.getvalue().splitlines()
    assert lines[-2:] == ["  running a: step 1, reward 0.5", "  running b: no points yet"]
