"""Run a sweep: expand a spec into jobs, decide what each needs, run them, record the state.

Restart semantics, decided per job from the store (see :func:`plan_jobs`):

- a run with status ``complete`` is skipped;
- a run that exists with any other status (``running``: the sweep or the job was killed, or the job
  failed) is resumed: the job is called with ``resume=True`` and continues from its checkpoint;
- a run that does not exist is started.

A job that fails is reported with its error and traceback and does not stop the others. The sweep's
own state (per job: state, starts, error, wall time) is written to ``<store>/_sweeps/<name>.json``
after every change, and each job's printed output is appended to
``<store>/_sweeps/<name>/<run_id>.log``; readers of the store skip ``_`` directories. Jobs never share files, so a store
on a shared filesystem needs no locking.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from rlscale.errors import StoreError
from rlscale.store import Store, as_store, layout
from rlscale.store.atomic import write_json
from rlscale.sweep.executors import Outcome, Task, resolve_target
from rlscale.sweep.spec import Job, SweepSpec, expand_jobs, load_plain_base, load_spec

__all__ = ["Job", "SweepSpec", "load_spec", "expand_jobs", "resolve_jobs", "plan_jobs",
           "estimate_jobs", "run_sweep", "read_sweep_state", "PlannedJob", "JobState", "SweepResult"]

Action = Literal["start", "resume", "skip"]
RL_TARGET = "rlscale.rl.sweep_job:run_rl_job"


@dataclass(frozen=True)
class PlannedJob:
    """A job and what the sweep will do with it given the store: start, resume or skip."""

    job: Job
    action: Action
    stored_status: str | None


@dataclass
class JobState:
    """A job's state within one sweep: ``pending``, ``running``, ``complete``, ``failed`` or
    ``skipped`` (complete in the store before this sweep started)."""

    job_id: str
    seed: int
    varied: dict[str, Any]
    state: str = "pending"
    starts: int = 0
    resumed: bool = False
    error: str | None = None
    traceback: str | None = None
    wall_s: float | None = None
    host: str | None = None


@dataclass
class SweepResult:
    """The final state of every job of a sweep, in spec order."""

    name: str
    jobs: list[JobState] = field(default_factory=list)

    @property
    def failed(self) -> list[JobState]:
        return [j for j in self.jobs if j.state == "failed"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in self.jobs:
            out[j.state] = out.get(j.state, 0) + 1
        return out


def job_target(spec: SweepSpec) -> str:
    """The import path of the callable that runs one job of this spec."""
    return RL_TARGET if spec.job == "rl" else spec.job


def resolve_jobs(spec: SweepSpec) -> list[Job]:
    """Expand a spec into jobs with complete, checked configs.

    For ``job = "rl"`` the base config is read with :class:`rlscale.rl.config.JobConfig` (so defaults
    are filled in and every key can be varied) and each job's config is validated by it; for a custom
    job the base is the plain TOML/inline table.
    """
    if spec.job == "rl":
        from rlscale.rl import sweep_job

        base = sweep_job.load_base(spec)
        jobs = []
        for j in expand_jobs(spec, base=base):
            config = sweep_job.normalize(j.config, spec=spec)
            jobs.append(Job(j.job_id, j.varied, j.seed, config, group=sweep_job.group(config)))
        return jobs
    base = load_plain_base(spec.base_path) if spec.base_path else spec.base
    return expand_jobs(spec, base=base)


def estimate_jobs(spec: SweepSpec, jobs: list[Job]) -> list[dict[str, float] | None]:
    """Estimated compute per job (``flops``, ``device_hours``), or ``None`` where none is known."""
    if spec.job == "rl":
        from rlscale.rl import sweep_job

        return [sweep_job.estimate(j.config) for j in jobs]
    if spec.estimate is None:
        return [None] * len(jobs)
    fn = resolve_target(spec.estimate)
    return [dict(fn(j.config)) for j in jobs]


def plan_jobs(jobs: list[Job], store: Store) -> list[PlannedJob]:
    """Decide, from the store, whether each job starts, resumes, or is skipped (see module doc).

    Raises :class:`StoreError` if a run exists with a config that differs from the job's: the spec
    changed under the same name, and resuming would mix two experiments in one run.
    """
    plan = []
    for job in jobs:
        if not store.has_run(job.job_id):
            plan.append(PlannedJob(job, "start", None))
            continue
        meta = store.read_meta(job.job_id)
        diff = _config_diff(meta.config, job.config)
        if diff:
            shown = ", ".join(f"{k}: stored {a!r} vs spec {b!r}" for k, a, b in diff[:3])
            msg = (f"run {job.job_id!r} in {str(store.root)!r} was made with a different config "
                   f"({shown}); give the changed sweep a new name, or delete that run")
            raise StoreError(msg)
        plan.append(PlannedJob(job, "skip" if meta.status == "complete" else "resume", meta.status))
    return plan


def _config_diff(stored: dict[str, Any], wanted: dict[str, Any], prefix: str = ""
                 ) -> list[tuple[str, Any, Any]]:
    """Keys present in both configs whose values differ (keys only one side has are ignored:
    a job may record derived settings beside the ones it was given)."""
    out = []
    for key in wanted.keys() & stored.keys():
        a, b = stored[key], wanted[key]
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_diff(a, b, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, (list, tuple)) and list(a) == list(b)):
            out.append((f"{prefix}{key}", a, b))
    return sorted(out, key=lambda t: t[0])


def sweep_state_path(store: Store, name: str) -> Path:
    return layout.sweeps_dir(store.root) / f"{name}.json"


def read_sweep_state(store: Store, name: str) -> dict[str, Any] | None:
    """The recorded state of sweep ``name`` (see :func:`run_sweep`), or ``None`` if never run."""
    path = sweep_state_path(store, name)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def run_sweep(
    spec: SweepSpec,
    *,
    store: Store | str | os.PathLike[str],
    executor: Any,
    resume: bool = False,
    refresh_s: float = 2.0,
    on_update: Callable[[list[JobState]], None] | None = None,
) -> SweepResult:
    """Run every job of ``spec`` on ``executor`` (see :mod:`rlscale.sweep.executors`).

    Without ``resume`` the sweep refuses to touch runs that already exist; with it, complete runs
    are skipped and the others resumed. ``on_update`` is called with every job's state after each
    change and at least every ``refresh_s`` seconds (the CLI draws its progress view from it).
    ``executor`` may also be a function that returns one: it is called only once the spec and the
    store have been checked, so a bad spec never starts workers or connects to a cluster.
    The executor is closed on return. Failed jobs are in the result, never raised.
    """
    store = as_store(store)
    jobs = resolve_jobs(spec)
    plan = plan_jobs(jobs, store)
    existing = [p.job.job_id for p in plan if p.action != "start"]
    if existing and not resume:
        msg = (f"{len(existing)} of the {len(plan)} runs of sweep {spec.name!r} are already in "
               f"{str(store.root)!r} (e.g. {existing[0]!r}); pass --resume (resume=True) to skip "
               "finished runs and resume the others")
        raise StoreError(msg)
    _claim(store, spec.name)
    if not hasattr(executor, "start"):
        executor = executor()
    states = {p.job.job_id: JobState(p.job.job_id, p.job.seed, p.job.varied,
                                     state="skipped" if p.action == "skip" else "pending")
              for p in plan}
    previous = (read_sweep_state(store, spec.name) or {}).get("jobs", {})
    for job_id, old in previous.items():
        if job_id in states:
            states[job_id].starts = int(old.get("starts", 0))
    queue = [p for p in plan if p.action != "skip"]
    running: set[str] = set()
    target = job_target(spec)
    root = str(store.root.resolve())  # workers may run elsewhere (another cwd, another node)
    logs = sweep_state_path(store, spec.name).with_suffix("").resolve()

    def record(final: bool = False) -> None:
        _write_state(store, spec, list(states.values()), final=final)
        if on_update is not None:
            on_update(list(states.values()))

    # group -> the job that builds its first stage; a complete run means it was built already
    leaders = {p.job.group: p.job.job_id for p in plan if p.job.group and p.action == "skip"}

    def ready(planned: PlannedJob) -> bool:
        leader = leaders.get(planned.job.group)
        return leader is None or states[leader].state not in ("pending", "running")

    if hasattr(executor, "expect"):
        executor.expect(len(queue))
    record()
    try:
        while queue or running:
            while len(running) < executor.capacity:
                i = next((i for i, p in enumerate(queue) if ready(p)), None)
                if i is None:
                    break
                planned = queue.pop(i)
                if planned.job.group:
                    leaders.setdefault(planned.job.group, planned.job.job_id)
                job_id = planned.job.job_id
                resume_it = planned.action == "resume" or store.has_run(job_id)
                executor.start(Task(job_id, target, planned.job.config, root,
                                    resume=resume_it, num_cpus=spec.num_cpus,
                                    num_gpus=spec.num_gpus, log=str(logs / f"{job_id}.log")))
                state = states[job_id]
                state.state, state.resumed, state.starts = "running", resume_it, state.starts + 1
                running.add(job_id)
                record()
            outcomes = executor.poll(refresh_s)
            for outcome in outcomes:
                _finish(states[outcome.job_id], outcome)
                running.discard(outcome.job_id)
            record()
    except BaseException:
        executor.close(cancel=True)
        for job_id in running:
            states[job_id].state = "pending"  # killed with the sweep; resumed next time
        _write_state(store, spec, list(states.values()), final=True)
        raise
    executor.close()
    record(final=True)
    return SweepResult(spec.name, list(states.values()))


def _finish(state: JobState, outcome: Outcome) -> None:
    state.state = "complete" if outcome.ok else "failed"
    state.error, state.traceback = outcome.error, outcome.traceback
    state.wall_s, state.host = round(outcome.wall_s, 3), outcome.host


def _claim(store: Store, name: str) -> None:
    """Refuse to run a sweep that a live process on this host is already running."""
    old = read_sweep_state(store, name) or {}
    driver = old.get("driver") or {}
    pid, host = driver.get("pid"), driver.get("host")
    if pid and host == socket.gethostname() and pid != os.getpid() and _alive(pid):
        msg = (f"sweep {name!r} is already being run by process {pid} on this host; wait for it "
               f"to finish or stop it (kill {pid}) before restarting")
        raise StoreError(msg)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_state(store: Store, spec: SweepSpec, states: list[JobState], *, final: bool) -> None:
    path = sweep_state_path(store, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": spec.name,
        "spec": spec.path,
        "job": job_target(spec),
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "driver": None if final else {"host": socket.gethostname(), "pid": os.getpid()},
        "jobs": {s.job_id: asdict(s) for s in states},
    }
    write_json(path, data)
