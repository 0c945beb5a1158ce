"""How many CPU threads an RL job uses, chosen so that a busy machine slows it by its fair share.

torch's default is one thread per logical CPU, each spinning at every OpenMP barrier. On a machine
that other processes keep busy the spinning threads steal the cores from each other and from
everyone else: measured on 2 cores with three CPU-bound neighbours, a short job took 159 s with 2
threads against 49 s with 1 (alone: 21 s and 22 s). So, unless ``--threads`` says otherwise:

- threads = max(1, min(physical cores we may run on, cores not busy)), where "not busy" is the
  CPUs we may run on (affinity, cgroup quota) less the load, rounded; the load is the larger of
  the 1-minute load average and the CPUs busy in a 0.2 s sample of /proc/stat (the average lags
  a minute behind load that just started);
- OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``; ``KMP_BLOCKTIME=0`` for an Intel
  OpenMP build): an idle thread sleeps instead of spinning. OpenMP reads these when torch loads
  it, so :func:`setup_threads` must run before ``import torch`` to have that effect; a variable
  the user has set is left as it is.

This module does not import torch until :func:`setup_threads` applies the count.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
SYS_CPU = Path("/sys/devices/system/cpu")
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count and why: ``reason`` is one line for the job's log."""

    threads: int
    reason: str


def usable_cpus() -> int:
    """Logical CPUs this process may run on: its affinity, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def cgroup_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs a cgroup v2 quota allows (``cpu.max``: ``"<quota> <period>"`` or ``"max ..."``)."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def physical_cores(cpus: set[int] | None = None, sys_cpu: Path = SYS_CPU) -> int:
    """Physical cores among logical ``cpus`` (default: our affinity); hyper-threads count once."""
    if cpus is None:
        try:
            cpus = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topo = sys_cpu / f"cpu{cpu}" / "topology"
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(),
                       (topo / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))  # no topology: count the logical CPU
    return max(1, len(cores))


def choose_threads(*, cpus: int, physical: int, load: float) -> ThreadChoice:
    """The default thread count: max(1, min(physical, round(cpus - load))).

    ``cpus`` are the logical CPUs we may use, ``physical`` their physical cores, ``load`` the
    1-minute load average (runnable processes, ours not yet among them at start).
    """
    free = cpus - max(0.0, load)
    threads = max(1, min(physical, cpus, math.floor(free + 0.5)))
    why = (f"{threads} thread{'s' if threads > 1 else ''} (load {load:.2f} on {cpus} CPUs, "
           f"{physical} physical cores; --threads N overrides)")
    return ThreadChoice(threads, why)


def busy_now(seconds: float = 0.2, proc_stat: Path = Path("/proc/stat")) -> float | None:
    """CPUs busy over the next ``seconds`` (from /proc/stat), or None where it cannot say.

    The 1-minute load average lags: load that began seconds ago barely shows in it yet.
    """
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in proc_stat.read_text().splitlines()[0].split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cpus = os.cpu_count() or 1
    return cpus * (1 - (idle1 - idle0) / max(1, total1 - total0))


def default_threads() -> ThreadChoice:
    """:func:`choose_threads` for this machine now: load = max(1-minute load, CPUs busy now)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average: assume an idle machine
        load = 0.0
    load = max(load, busy_now() or 0.0)
    cpus = usable_cpus()
    return choose_threads(cpus=cpus, physical=min(cpus, physical_cores()), load=load)


def passive_wait(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set OpenMP's waiting policy to passive where the user has not set it; return what was set."""
    env = os.environ if environ is None else environ
    added = {k: v for k, v in WAIT_ENV.items() if k not in env}
    env.update(added)
    return added


def setup_threads(threads: int | None, why: str = "--threads") -> ThreadChoice:
    """Passive OpenMP waiting, then ``threads`` (or :func:`default_threads`) torch threads.

    Call it before anything imports torch: OpenMP reads its waiting policy once, when torch
    loads it. ``threads`` must be >= 1 (the CLI checks).
    """
    torch_loaded = "torch" in sys.modules
    passive_wait()
    choice = (ThreadChoice(threads, f"{threads} thread{'s' if threads > 1 else ''} ({why})")
              if threads else default_threads())
    import torch

    torch.set_num_threads(choice.threads)
    if not torch_loaded:
        # Inter-op threads serve torch.jit.fork-style parallelism, which the jobs do not use; one
        # keeps the pool from adding idle threads. Settable only before any inter-op work.
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    return choice
