"""A run whose writer was killed is not shown as ``running`` (rlscale/store/liveness.py)."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.store import POINT_COLUMNS, RunMeta, RunWriter, Store
from rlscale.store.liveness import INTERRUPTED, pid_alive, shown_status, this_host, writer_info


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # exited and reaped: nothing has this pid now
    return proc.pid


def _running_run(store_dir, writer) -> Store:
    st = Store(store_dir)
    st.write_run(RunMeta(run_id="r1", recipe="grpo", status="running", writer=writer),
                 pd.DataFrame(columns=list(POINT_COLUMNS)))
    return st


def _show(store_dir, *extra) -> str:
    res = CliRunner().invoke(main, ["show", "r1", "--store", str(store_dir), *extra])
    assert res.exit_code == 0, res.output
    return res.output


def test_a_killed_writer_shows_interrupted(store_dir):
    writer = {"pid": _dead_pid(), "host": this_host(), "started": 1.0}
    st = _running_run(store_dir, writer)
    assert "status: interrupted (killed?)\n" in _show(store_dir)
    assert json.loads(_show(store_dir, "--json"))["meta"]["status"] == INTERRUPTED
    assert st.summaries()[0]["status"] == INTERRUPTED  # runs, report
    assert st.read_meta("r1").status == "running"  # what is stored is left as it is


def test_a_live_writer_shows_running(store_dir):
    _running_run(store_dir, writer_info())
    assert "status: running\n" in _show(store_dir)


def test_a_reused_pid_is_not_the_writer():
    me = writer_info()
    assert shown_status("running", me) == "running"
    assert shown_status("running", {**me, "started": me["started"] - 3600}) == INTERRUPTED


def test_a_zombie_is_dead():
    proc = subprocess.Popen(["true"])
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    try:
        assert not pid_alive(proc.pid)
    finally:
        proc.wait()
    assert pid_alive(os.getpid())


def test_other_hosts_and_old_runs_are_unverified():
    other = {"pid": os.getpid(), "host": "elsewhere", "started": 1.0}
    assert shown_status("running", other) == "running (unverified: pid %d on elsewhere)" % os.getpid()
    assert shown_status("running", None) == "running (unverified: no writer recorded)"
    assert shown_status("complete", None) == "complete"
    assert shown_status("complete", {"pid": _dead_pid(), "host": this_host()}) == "complete"


def test_run_writer_records_its_writer(store_dir):
    writer = RunWriter.open(store_dir, RunMeta(run_id="r1"))
    stored = json.loads((store_dir / "r1" / "run.json").read_text())
    assert stored["status"] == "running"
    assert stored["writer"]["pid"] == os.getpid() and stored["writer"]["host"] == this_host()
    writer.close()
    assert Store(store_dir).summaries()[0]["status"] == "complete"
