"""Where jobs run: in this process, in a local process pool, or as tasks on a Ray cluster.

A job is plain data: a :class:`Task` names a callable by import path (``"package.module:function"``)
and carries its config dict. Every executor runs it the same way, through :func:`execute_task`::

    function(config, store=STORE_DIR, resume=RESUME)

so the sweep layer never knows what a job does, and a job never knows where it runs. A job that
raises becomes a failed :class:`Outcome` (error text and traceback); it never stops the others.

Executors share one small interface: ``capacity`` (how many tasks to keep in flight), ``start(task)``,
``poll(timeout) -> finished outcomes``, and ``close()``. Each task writes its own run directory, so
workers never coordinate through anything but the store.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from rlscale.errors import RLScaleError

EXECUTORS: tuple[str, ...] = ("inprocess", "local", "ray")
RAY_INSTALL_HINT = "pip install 'rlscale[ray]'  (or: pip install 'ray[default]>=2.9')"
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Task:
    """One job to run: ``target(config, store=store, resume=resume)``.

    ``num_cpus``/``num_gpus`` are the resource request (Ray schedules on them); ``threads`` is the
    number of CPU threads the job may use (``None``: leave the process default); ``log`` is a file
    that gets the job's printed output (appended; ``None``: the worker's own stdout/stderr).
    """

    job_id: str
    target: str
    config: dict[str, Any]
    store: str
    resume: bool = False
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    threads: int | None = None
    log: str | None = None


@dataclass
class Outcome:
    """What became of one task. ``error`` is ``"Type: message"`` when it failed, else ``None``."""

    job_id: str
    ok: bool
    wall_s: float
    error: str | None = None
    traceback: str | None = None
    result: Any = None
    host: str = field(default_factory=lambda: os.uname().nodename)


def resolve_target(target: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (``function`` may be dotted) and return it."""
    module_name, sep, qualname = target.partition(":")
    if not sep or not module_name or not qualname:
        msg = f"job target {target!r} is not an import path (expected 'package.module:function')"
        raise RLScaleError(msg)
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        msg = f"job target {target!r} is a {type(obj).__name__}, not a callable"
        raise RLScaleError(msg)
    return obj


def execute_task(task: Task) -> Outcome:
    """Run one task here and now; never raises for a failing job (the outcome says it failed)."""
    t0 = time.perf_counter()
    with _output_to(task.log):
        try:
            if task.threads is not None:
                _limit_threads(task.threads)
            fn = resolve_target(task.target)
            if task.threads is not None and "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(task.threads)
            result = fn(task.config, store=task.store, resume=task.resume)
        except (Exception, SystemExit) as exc:  # a failed job is data, reported by the sweep
            tb = traceback.format_exc()
            print(tb, file=sys.stderr)
            return Outcome(task.job_id, False, time.perf_counter() - t0,
                           error=f"{type(exc).__name__}: {exc}", traceback=tb)
    return Outcome(task.job_id, True, time.perf_counter() - t0, result=_plain(result))


@contextlib.contextmanager
def _output_to(log: str | None) -> Iterator[None]:
    if log is None:
        yield
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", buffering=1) as fh:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        fh.write(f"--- {stamp} pid {os.getpid()} on {os.uname().nodename}\n")
        with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            yield


def _plain(value: Any) -> Any:
    """Keep results that serialise as JSON scalars; drop anything else (it stays in the store)."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else None


def _limit_threads(threads: int) -> None:
    for var in (*_THREAD_VARS, "RLSCALE_THREADS"):  # jobs that import torch later read the last
        os.environ[var] = str(threads)


class InProcessExecutor:
    """Runs tasks one at a time in this process (debugging, tests, a single small job)."""

    capacity = 1

    def __init__(self) -> None:
        self._queue: list[Task] = []

    def start(self, task: Task) -> None:
        self._queue.append(task)

    def poll(self, timeout: float) -> list[Outcome]:
        return [execute_task(self._queue.pop(0))] if self._queue else []

    def close(self, *, cancel: bool = False) -> None:
        self._queue.clear()


class LocalExecutor:
    """A pool of ``workers`` processes on this machine (default: one per core).

    Each worker gets ``cores // workers`` CPU threads (OpenMP/MKL env vars and
    ``torch.set_num_threads``), so N jobs never oversubscribe the cores. Workers are started with
    ``spawn`` (a fresh interpreter: forking a process that already runs torch threads can hang) and
    exit on their own if the sweep process dies, so a killed sweep leaves no job running behind it.
    """

    def __init__(self, *, workers: int | None = None, cores: int | None = None) -> None:
        self._cores = cores or os.cpu_count() or 1
        self._fixed = workers is not None
        self._size(max(1, workers or self._cores))
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future[Outcome], Task] = {}

    def _size(self, workers: int) -> None:
        self.capacity = workers
        self.threads = max(1, self._cores // workers)

    def expect(self, n_tasks: int) -> None:
        """Fewer tasks than cores (and no explicit ``workers``): fewer workers, more threads each."""
        if not self._fixed and self._pool is None and 0 < n_tasks < self.capacity:
            self._size(n_tasks)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.capacity,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads, os.getpid()),
        )

    def start(self, task: Task) -> None:
        if self._pool is None:
            self._pool = self._new_pool()
        task = replace(task, threads=self.threads)
        self._futures[self._pool.submit(execute_task, task)] = task

    def poll(self, timeout: float) -> list[Outcome]:
        if not self._futures:
            return []
        done, _ = cf.wait(list(self._futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        outcomes = []
        broken = False
        for fut in done:
            task = self._futures.pop(fut)
            try:
                outcomes.append(fut.result())
            except BrokenProcessPool as exc:  # the worker died (killed, out of memory, segfault)
                broken = True
                outcomes.append(Outcome(task.job_id, False, 0.0,
                                        error=f"worker process died: {type(exc).__name__}: {exc}"))
            except Exception as exc:  # e.g. a result that would not pickle
                outcomes.append(Outcome(task.job_id, False, 0.0,
                                        error=f"{type(exc).__name__}: {exc}"))
        if broken and self._pool is not None:  # a broken pool fails all its tasks; the rest
            for fut, task in list(self._futures.items()):  # go to a fresh pool
                outcomes.append(Outcome(task.job_id, False, 0.0,
                                        error="worker pool broke while this job ran"))
                del self._futures[fut]
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return outcomes

    def close(self, *, cancel: bool = False) -> None:
        if self._pool is None:
            return
        if cancel:
            for proc in list((self._pool._processes or {}).values()):
                proc.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._pool = None


def _init_worker(threads: int, parent_pid: int) -> None:
    _limit_threads(threads)

    def watch() -> None:  # the pool's own machinery does not stop a running job when we die
        while os.getppid() == parent_pid:
            time.sleep(0.2)
        os._exit(70)

    threading.Thread(target=watch, name="rlscale-parent-watch", daemon=True).start()


def import_ray() -> Any:
    """Import ray, or raise an error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        msg = f"--executor ray needs the ray extra, which is not installed: {RAY_INSTALL_HINT}"
        raise RLScaleError(msg) from exc
    return ray


class RayExecutor:
    """Each task a Ray task with its ``num_cpus``/``num_gpus`` request.

    Connects to ``address`` (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``), or uses the Ray
    instance this process already started, or starts a local one. Jobs must be importable on every
    node (install rlscale there); with a local instance, the driver's ``sys.path`` is passed on to
    the workers so that jobs defined outside the installed package (tests, scripts) import too.
    Worker output (job logs) streams back to this terminal through Ray's log forwarding.
    """

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None,
                 ship_sys_path: bool | None = None) -> None:
        self._ray = ray = import_ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            ray.init(address=address, num_cpus=num_cpus if address is None else None,
                     include_dashboard=False, log_to_driver=True)
        ship = address is None if ship_sys_path is None else ship_sys_path
        self._runtime_env = (
            {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}} if ship else None
        )
        self._remote = ray.remote(max_retries=0)(execute_task)
        self.capacity = 1 << 30  # Ray queues what does not fit; the cluster schedules
        self._refs: dict[Any, Task] = {}

    def start(self, task: Task) -> None:
        threads = max(1, int(task.num_cpus)) if task.num_cpus else None
        task = replace(task, threads=threads)
        opts: dict[str, Any] = {"num_cpus": task.num_cpus, "num_gpus": task.num_gpus,
                                "name": f"rlscale:{task.job_id}"}
        if self._runtime_env:
            opts["runtime_env"] = self._runtime_env
        self._refs[self._remote.options(**opts).remote(task)] = task

    def poll(self, timeout: float) -> list[Outcome]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        outcomes = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                outcomes.append(self._ray.get(ref))
            except Exception as exc:  # worker crashed, node lost, task cancelled
                outcomes.append(Outcome(task.job_id, False, 0.0,
                                        error=f"ray task failed: {type(exc).__name__}: {exc}"))
        return outcomes

    def close(self, *, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owns:
            self._ray.shutdown()


def make_executor(name: str, *, workers: int | None = None, address: str | None = None,
                  cores: int | None = None) -> Any:
    """Build an executor by name (one of :data:`EXECUTORS`); ``cores``: the cores a local pool
    may use (default: all)."""
    if name == "inprocess":
        return InProcessExecutor()
    if name == "local":
        return LocalExecutor(workers=workers, cores=cores)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=workers)
    msg = f"unknown executor {name!r} (expected one of {', '.join(EXECUTORS)})"
    raise RLScaleError(msg)
