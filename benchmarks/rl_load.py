"""A short RL job alone and beside K CPU-bound processes, for several thread settings.

    python benchmarks/rl_load.py                       # rl.steps=6, eval.every=3, K=3, default/1/2
    python benchmarks/rl_load.py --competitors 1 --threads default,1 --steps 3
    python benchmarks/rl_load.py --threads torch,default   # torch's own default, as before

Each job is ``rlscale run --set rl.steps=S --set eval.every=E [--threads N]`` from the shipped base
into a fresh temporary store, timed end to end (start-up and evaluations included). "Loaded" runs
start K competitors first (``python`` busy loops, or ``--kind numpy`` matmul loops on one
thread each), wait ``--warmup`` seconds, run the job, then stop them. The fair-share expectation
is alone x (K+1) / cores: K+1 equal processes sharing the cores. A ratio near 1 means the job
slowed by its fair share; well above 1 means its threads fought for the cores. The load average
before each run is printed, since other processes on the machine count too.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = {
    "python": "while True: pass",
    "numpy": ("import os; os.environ['OMP_NUM_THREADS'] = '1'; import numpy as np; "
              "a = np.ones((256, 256));\nwhile True: a @ a"),
}


def job(store: Path, steps: int, every: int, threads: str) -> tuple[float, str]:
    args = ["run", "--set", f"rl.steps={steps}", "--set", f"eval.every={every}", "--store",
            str(store), "--no-progress"]
    if threads == "torch":  # the old default: torch loaded first (OpenMP's own waiting policy)
        cmd = [sys.executable, "-c", "import sys, torch; from rlscale.cli import main; "
               f"main({args!r} + "
               "['--threads', str(torch.get_num_threads())])"]
    else:
        cmd = [sys.executable, "-m", "rlscale", *args]
    if threads not in ("default", "torch"):
        cmd += ["--threads", threads]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if out.returncode:
        sys.exit(f"job failed ({' '.join(cmd)}):\n{out.stderr[-2000:]}")
    chosen = next((ln for ln in out.stdout.splitlines() if ln.startswith("threads:")), "?")
    return wall, chosen.removeprefix("threads: ")


def competitors(k: int, kind: str) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY[kind]], stdout=subprocess.DEVNULL)
            for _ in range(k)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--eval-every", type=int, default=3)
    ap.add_argument("--competitors", "-k", type=int, default=3)
    ap.add_argument("--threads", default="default,1,2",
                    help="comma-separated: default, N, or torch (torch imported first with its "
                         "default count: OpenMP keeps its own waiting policy, as before the fix)")
    ap.add_argument("--kind", choices=sorted(BUSY), default="python")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the job")
    a = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    k = a.competitors
    print(f"{cores} cores, K={k} {a.kind} competitors, rl.steps={a.steps} eval.every={a.eval_every}, "
          f"loadavg at start {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rl-load-") as tmp:
        for i, threads in enumerate(a.threads.split(",")):
            load0 = os.getloadavg()[0]
            alone, chose_alone = job(Path(tmp) / f"a{i}", a.steps, a.eval_every, threads)
            procs = competitors(k, a.kind)
            try:
                time.sleep(a.warmup)
                load1 = os.getloadavg()[0]
                loaded, chose_loaded = job(Path(tmp) / f"l{i}", a.steps, a.eval_every, threads)
            finally:
                stop(procs)
            fair = alone * (k + 1) / cores
            rows.append((threads, alone, loaded, fair, loaded / fair, load0, load1,
                         chose_alone, chose_loaded))
            print(f"  threads={threads}: alone {alone:.1f} s [{chose_alone}], loaded "
                  f"{loaded:.1f} s [{chose_loaded}]", flush=True)
    print()
    print(f"{'threads':>8} {'alone s':>8} {'loaded s':>9} {'fair s':>7} {'ratio':>6} "
          f"{'load0':>6} {'load1':>6}")
    for threads, alone, loaded, fair, ratio, load0, load1, *_ in rows:
        print(f"{threads:>8} {alone:>8.1f} {loaded:>9.1f} {fair:>7.1f} {ratio:>6.2f} "
              f"{load0:>6.2f} {load1:>6.2f}")
    print("fair = alone x (K+1) / cores; ratio = loaded / fair; load0/load1 = 1-min load average "
          "before the alone / loaded run (competitors already started for load1)")


if __name__ == "__main__":
    main()
