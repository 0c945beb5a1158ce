"""Start-up time of the ``rlscale`` command line, against ``python -c "import click"``.

Times, in one run and on one interpreter, the wall time of N fresh subprocesses each of:

* the baseline ``python -c "import click"`` (an interpreter that imports the CLI's one library);
* ``rlscale --version`` and ``rlscale --help`` (``python -m rlscale ...``);
* ``rlscale runs --store S``, S a temp store made by ingesting ``examples/*.csv`` first,

and prints for each the median and the fastest wall time and the median CPU time (user +
system of the child), each with its ratio to the baseline's. On a shared machine the fastest
wall time and the CPU time are the better estimates of a quiet core. It also runs ``--version``, ``--help``
and ``runs`` once under ``python -X importtime`` and prints which heavy libraries each imported
(scipy, pandas, lmfit, pyarrow, altair, numpy) and, for ``runs``, the slowest top-level imports.
Targets: ``--version`` and ``--help`` import neither scipy nor pandas; ``--version`` at most 3x
the baseline; ``runs`` under 1 s on a quiet core.

    python benchmarks/startup.py [--repeat 11]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "pandas", "lmfit", "pyarrow", "altair", "numpy")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("RLSCALE_STORE", None)
    return env


def _run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          check=check)


def times(argv: list[str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system, the child's own) of each of ``repeat`` runs."""
    _run(argv)  # warm the page cache and the .pyc files
    wall, cpu = [], []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        _run(argv)
        wall.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return wall, cpu


def imports(args: list[str]) -> list[tuple[int, int, str, list[tuple[int, str]]]]:
    """``python -X importtime -m rlscale ARGS``: (depth, cumulative us, module, children) of each
    imported module, in the order they finished; children are (cumulative us, module)."""
    proc = _run([sys.executable, "-X", "importtime", "-m", "rlscale", *args])
    out: list[tuple[int, int, str, list[tuple[int, str]]]] = []
    pending: dict[int, list[tuple[int, str]]] = {}  # depth -> finished modules awaiting a parent
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, field = line.split(":", 1)[1].split("|")
        name = field.strip()
        depth = (len(field) - len(field.lstrip()) - 1) // 2
        children = pending.pop(depth + 1, [])
        out.append((depth, int(cumulative), name, children))
        pending.setdefault(depth, []).append((int(cumulative), name))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=11, help="subprocess runs per command")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        csvs = sorted(str(p) for p in (ROOT / "examples").glob("*.csv"))
        _run([sys.executable, "-m", "rlscale", "ingest", *csvs, "--store", store])
        cli = [sys.executable, "-m", "rlscale"]
        cases = {
            'python -c "import click"': [sys.executable, "-c", "import click"],
            "rlscale --version": [*cli, "--version"],
            "rlscale --help": [*cli, "--help"],
            "rlscale runs --store S": [*cli, "runs", "--store", store],
        }
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.2f}; {args.repeat} runs each; S = {len(csvs)} "
              "examples/*.csv ingested")
        print(f"  {'':<28} {'wall median':>18} {'wall fastest':>18} {'CPU median':>18}")
        base = None
        for label, argv in cases.items():
            wall, cpu = times(argv, args.repeat)
            row = (statistics.median(wall), min(wall), statistics.median(cpu))
            base = base or row
            print(f"  {label:<28}" + "".join(f" {v * 1e3:8.0f} ms {v / b:5.2f}x"
                                             for v, b in zip(row, base)))
        print("heavy libraries imported (python -X importtime):")
        for label, sub in (("--version", ["--version"]), ("--help", ["--help"]),
                           ("runs", ["runs", "--store", store])):
            mods = imports(sub)
            names = {name for _, _, name, _ in mods}
            got = [h for h in HEAVY if h in names]
            print(f"  rlscale {label:<10} {', '.join(got) or 'none of ' + ', '.join(HEAVY)}")
        # the command's own module is imported by importlib.import_module, which -X importtime
        # does not log: its imports show up at the top level
        print("slowest top-level imports of `rlscale runs` (cumulative), with their slowest "
              "direct imports:")
        top = sorted((m for m in mods if m[0] == 0), key=lambda m: -m[1])[:6]
        for _depth, us, name, children in top:
            print(f"  {us / 1e3:7.1f} ms  {name}")
            for cus, cname in sorted(children, reverse=True)[:4]:
                if cus >= 0.05 * us and cus >= 5000:
                    print(f"    {cus / 1e3:7.1f} ms  {cname}")

if __name__ == "__main__":
    main()
