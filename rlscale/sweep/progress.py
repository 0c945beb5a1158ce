"""The sweep progress view: jobs done/running/failed, and each job's latest step and reward.

It reads the latest points of each run straight from the store, so it shows the same thing
whichever executor runs the jobs (a Ray cluster writing to a shared store included). On a terminal
the table is redrawn in place; otherwise (logs, CI) one line is printed per job start/finish, plus
a summary of the running jobs every ``log_every_s`` seconds.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import pyarrow.compute as pc

from rlscale.store import Store
from rlscale.sweep.run import JobState
from rlscale.text import short

_ORDER = ("running", "failed", "pending", "complete", "skipped")


def latest_point(store: Store, run_id: str, metric: str) -> tuple[int | None, float | None]:
    """(last step, its value) of ``metric`` in a run; ``(max step, None)`` if the metric is absent,
    ``(None, None)`` if the run has no points yet."""
    try:
        table = store.read_points_table(run_id)
    except (OSError, ValueError):  # the run is not there yet
        return None, None
    if table.num_rows == 0:
        return None, None
    sel = table.filter(pc.equal(table["metric"], metric))
    if sel.num_rows == 0:
        return int(pc.max(table["step"]).as_py()), None
    i = int(pc.index(sel["step"], pc.max(sel["step"])).as_py())
    return int(sel["step"][i].as_py()), float(sel["value"][i].as_py())


class ProgressView:
    """Callable given every job's :class:`JobState`; draws the progress table or log lines."""

    def __init__(self, store: Store, *, name: str, metric: str = "reward",
                 stream: IO[str] | None = None, tty: bool | None = None,
                 log_every_s: float = 30.0, max_rows: int = 30) -> None:
        self.store, self.name, self.metric = store, name, metric
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.log_every_s, self.max_rows = log_every_s, max_rows
        self._drawn = 0
        self._seen: dict[str, str] = {}
        self._last_log = time.monotonic()

    def __call__(self, states: list[JobState]) -> None:
        if self.tty:
            self._redraw(states)
        else:
            self._log(states)

    def summary(self, states: list[JobState]) -> str:
        counts = {s: sum(j.state == s for j in states) for s in _ORDER}
        done = counts["complete"] + counts["skipped"]
        parts = [f"{done}/{len(states)} done", f"{counts['running']} running",
                 f"{counts['failed']} failed", f"{counts['pending']} pending"]
        if counts["skipped"]:
            parts.append(f"{counts['skipped']} already complete")
        return f"sweep {self.name}: " + ", ".join(parts)

    def rows(self, states: list[JobState]) -> list[dict[str, Any]]:
        """One dict per job: run_id, state, step, the progress metric's latest value, wall_s."""
        out = []
        for j in states:
            step, value = (None, None)
            if j.state != "pending":
                step, value = latest_point(self.store, j.job_id, self.metric)
            out.append({"run_id": j.job_id, "state": j.state + ("*" if j.resumed else ""),
                        "step": step, self.metric: value, "wall_s": j.wall_s})
        return out

    def table(self, states: list[JobState]) -> list[str]:
        shown = states
        if len(states) > self.max_rows:  # big sweeps: the jobs that need attention
            shown = [j for j in states if j.state in ("running", "failed")][: self.max_rows]
        rows = self.rows(shown)
        width = max([len("run_id"), *(len(r["run_id"]) for r in rows)])
        lines = [f"{'run_id':<{width}}  {'state':<10} {'step':>7} {self.metric:>10} {'wall_s':>8}"]
        for r in rows:
            lines.append(f"{r['run_id']:<{width}}  {r['state']:<10} {short(r['step']):>7} "
                         f"{short(r[self.metric]):>10} {short(r['wall_s']):>8}")
        if len(shown) < len(states):
            lines.append(f"... {len(states) - len(shown)} more (pending or done)")
        return lines

    def _redraw(self, states: list[JobState]) -> None:
        lines = [self.summary(states), *self.table(states)]
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)

    def _log(self, states: list[JobState]) -> None:
        for j in states:
            if self._seen.get(j.job_id) == j.state or j.state == "pending":
                continue
            self._seen[j.job_id] = j.state
            if j.state == "skipped":
                continue
            step, value = latest_point(self.store, j.job_id, self.metric)
            what = ("resumed" if j.resumed else "started") if j.state == "running" else j.state
            line = f"{what:<9} {j.job_id}"
            if j.state in ("complete", "failed"):
                line += f"  step {short(step)}  {self.metric} {short(value)}  ({short(j.wall_s)} s)"
            if j.error:
                line += f"\n          error: {j.error}"
            self.stream.write(f"[{self.summary(states)}] {line}\n")
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            running = [r for r in self.rows(states) if r["state"].startswith("running")]
            for r in running:
                if r["step"] is None:  # e.g. an RL job still pretraining its base
                    self.stream.write(f"  running {r['run_id']}: no points yet\n")
                    continue
                self.stream.write(f"  running {r['run_id']}: step {short(r['step'])}, "
                                  f"{self.metric} {short(r[self.metric])}\n")
        self.stream.flush()
