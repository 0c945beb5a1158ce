"""Is a run whose run.json says ``running`` still being written? (The writer's pid, host, start.)

A run being written records its writer in run.json (``writer``: ``pid``, ``host`` and the
process's ``started`` time, seconds since the epoch). A killed writer never gets to mark its run
otherwise, so readers do not trust ``status: running`` alone: :func:`shown_status` says
``running`` only when that pid is alive on this host and started when the writer did (a pid the
system reused for another process does not count), and ``interrupted (killed?)`` when it is not.
A writer on another host cannot be checked from here; its run shows as
``running (unverified: pid N on HOST)``.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

INTERRUPTED = "interrupted (killed?)"
_PROC = Path("/proc")
_START_SLACK_S = 2.0  # clock-tick rounding of /proc start times, and boot-time drift


def this_host() -> str:
    return socket.gethostname()


def process_started(pid: int, proc: Path = _PROC) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None where /proc cannot say."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after "pid (comm)"
        btime = next(int(ln.split()[1]) for ln in (proc / "stat").read_text().splitlines()
                     if ln.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def writer_info() -> dict[str, Any]:
    """This process as a run's writer: ``{"pid", "host", "started"}``."""
    pid = os.getpid()
    started = process_started(pid)
    return {"pid": pid, "host": this_host(),
            "started": round(time.time() if started is None else started, 2)}


def pid_alive(pid: int, proc: Path = _PROC) -> bool:
    """Whether ``pid`` is a live process here (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    except (OSError, OverflowError):
        return False
    try:
        state = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def shown_status(status: str, writer: dict[str, Any] | None, *, host: str | None = None) -> str:
    """The status a reader should show for a run whose run.json says ``status``/``writer``."""
    if status != "running":
        return status
    if not isinstance(writer, dict) or not isinstance(writer.get("pid"), int):
        return "running (unverified: no writer recorded)"
    pid, where = writer["pid"], writer.get("host")
    if where != (this_host() if host is None else host):
        return f"running (unverified: pid {pid} on {where})"
    if not pid_alive(pid):
        return INTERRUPTED
    started, recorded = process_started(pid), writer.get("started")
    if (started is not None and isinstance(recorded, (int, float))
            and abs(started - recorded) > _START_SLACK_S):
        return INTERRUPTED  # the pid now belongs to another process
    return "running"
