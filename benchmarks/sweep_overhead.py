"""Per-job overhead of the sweep executors, relative to running the jobs in this process.

Runs the same sweep of N trivial jobs (each writes a 3-point run with RunWriter) with the
in-process executor (the baseline), a local process pool, and, if ray is installed, a local Ray
instance, and prints seconds per job and the ratio to the baseline. Ray's start-up is timed apart
from its jobs. RL jobs take seconds to hours, so what matters is that the overhead stays far below
one job.

    python benchmarks/sweep_overhead.py [--jobs 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlscale.sweep.executors import InProcessExecutor, LocalExecutor  # noqa: E402
from rlscale.store import RunMeta, RunWriter  # noqa: E402
from rlscale.sweep.run import run_sweep  # noqa: E402
from rlscale.sweep.spec import parse_spec  # noqa: E402


def job(config: dict, *, store: str, resume: bool) -> str:
    writer = RunWriter.open(store, RunMeta(config["run_id"], seed=config["seed"], config=config))
    for step in range(3):
        writer.append(pd.DataFrame({"step": [step], "metric": ["reward"], "value": [0.1 * step]}))
    writer.close()
    return config["run_id"]


def timed(spec, executor) -> float:
    with tempfile.TemporaryDirectory() as store:
        t0 = time.perf_counter()
        result = run_sweep(spec, store=store, executor=executor, refresh_s=0.01)
        elapsed = time.perf_counter() - t0
    if result.failed:
        raise SystemExit(f"benchmark jobs failed: {result.failed[0].error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    spec = parse_spec({"name": "bench", "job": f"{Path(__file__).stem}:job",
                       "base": {"i": 0}, "grid": {"i": list(range(args.jobs))}})
    base = timed(spec, InProcessExecutor())
    rows = [("inprocess (baseline)", base)]
    rows.append((f"local pool, {args.workers} workers", timed(spec, LocalExecutor(workers=args.workers))))
    try:
        import ray
    except ImportError:
        ray = None
    if ray is not None:
        from rlscale.sweep.executors import RayExecutor

        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        rows.append(("ray start-up (once)", time.perf_counter() - t0))
        rows.append((f"ray, {args.workers} CPUs", timed(spec, RayExecutor())))
        ray.shutdown()
    print(f"{args.jobs} trivial jobs; machine may be shared, compare ratios within this run")
    print(f"{'executor':<28} {'total_s':>8} {'s/job':>8} {'vs baseline':>12}")
    for name, total in rows:
        per = "-" if "start-up" in name else f"{total / args.jobs:.3f}"
        ratio = "-" if "start-up" in name else f"{total / base:.2f}x"
        print(f"{name:<28} {total:>8.2f} {per:>8} {ratio:>12}")


if __name__ == "__main__":
    main()
