"""The default thread count of an RL job and OpenMP's waiting policy (rlscale/rl/threads.py)."""

from __future__ import annotations

import pytest

from rlscale.rl import threads as th


@pytest.mark.parametrize(("cpus", "physical", "load", "want"), [
    (2, 2, 0.1, 2),    # idle: every physical core
    (2, 2, 0.6, 1),    # 1.4 cores free rounds to 1
    (2, 2, 0.4, 2),    # 1.6 free rounds to 2
    (2, 2, 3.0, 1),    # three busy neighbours on 2 cores: never below 1
    (8, 4, 0.0, 4),    # hyper-threads: physical cores, not logical CPUs
    (8, 4, 5.2, 3),    # 2.8 free
    (16, 16, 12.0, 4),
    (4, 4, -1.0, 4),   # a nonsense load counts as none
])
def test_choose_threads(cpus, physical, load, want):
    choice = th.choose_threads(cpus=cpus, physical=physical, load=load)
    assert choice.threads == want
    assert f"load {max(load, -1):.2f} on {cpus} CPUs" in choice.reason


def test_default_threads_reads_load_and_affinity(monkeypatch, tmp_path):
    monkeypatch.setattr(th.os, "getloadavg", lambda: (2.7, 1.0, 1.0))
    monkeypatch.setattr(th.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    monkeypatch.setattr(th, "busy_now", lambda: 0.5)  # the average is the larger here
    monkeypatch.setattr(th, "cgroup_quota", lambda: None)
    monkeypatch.setattr(th, "physical_cores", lambda: 6)
    assert th.default_threads().threads == 3
    monkeypatch.setattr(th, "busy_now", lambda: 4.6)  # load that began after the average saw it
    assert th.default_threads().threads == 1
    monkeypatch.setattr(th, "busy_now", lambda: 0.0)
    monkeypatch.setattr(th, "cgroup_quota", lambda: 1.5)  # a container allowed 1.5 CPUs
    assert th.usable_cpus() == 2 and th.default_threads().threads == 1


def _cpu(root, n, package, core):
    topo = root / f"cpu{n}" / "topology"
    topo.mkdir(parents=True)
    (topo / "physical_package_id").write_text(f"{package}\n")
    (topo / "core_id").write_text(f"{core}\n")


def test_physical_cores_counts_hyperthreads_once(tmp_path):
    for n, (package, core) in enumerate([(0, 0), (0, 1), (0, 0), (0, 1), (1, 0), (1, 0)]):
        _cpu(tmp_path, n, package, core)
    assert th.physical_cores({0, 1, 2, 3, 4, 5}, sys_cpu=tmp_path) == 3
    assert th.physical_cores({0, 2}, sys_cpu=tmp_path) == 1  # two siblings of one core
    assert th.physical_cores({0, 9}, sys_cpu=tmp_path) == 2  # cpu9: no topology, counted


def test_cgroup_quota(tmp_path):
    f = tmp_path / "cpu.max"
    f.write_text("150000 100000\n")
    assert th.cgroup_quota(f) == 1.5
    f.write_text("max 100000\n")
    assert th.cgroup_quota(f) is None
    assert th.cgroup_quota(tmp_path / "missing") is None


def test_busy_now_from_proc_stat(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    lines = iter(["cpu 100 0 100 700 100 0 0 0 0 0\n", "cpu 150 0 150 750 150 0 0 0 0 0\n"])
    monkeypatch.setattr(th.time, "sleep", lambda s: stat.write_text(next(lines)))
    stat.write_text(next(lines))
    monkeypatch.setattr(th.os, "cpu_count", lambda: 4)
    assert th.busy_now(proc_stat=stat) == pytest.approx(4 * 0.5)  # 100 of 200 ticks idle
    assert th.busy_now(proc_stat=tmp_path / "missing") is None


def test_passive_wait_keeps_what_the_user_set():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert th.passive_wait(env) == {"KMP_BLOCKTIME": "0"}
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "KMP_BLOCKTIME": "0"}
    env = {}
    th.passive_wait(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def test_setup_threads_applies_the_count(monkeypatch):
    torch = pytest.importorskip("torch")
    env = {k: v for k, v in th.os.environ.items() if k not in th.WAIT_ENV}
    monkeypatch.setattr(th.os, "environ", env)  # restored after the test
    before = torch.get_num_threads()
    try:
        choice = th.setup_threads(1)
        assert choice.threads == 1 and torch.get_num_threads() == 1
        assert choice.reason == "1 thread (--threads)"
        assert env["OMP_WAIT_POLICY"] == "PASSIVE"
        monkeypatch.setattr(th, "default_threads", lambda: th.ThreadChoice(1, "by load"))
        assert th.setup_threads(None).reason == "by load"
    finally:
        torch.set_num_threads(before)
