"""Fuzz every ingest reader longer than CI does, and print the inputs and outcomes per format.

    python benchmarks/fuzz.py --examples 500

Each format's small real log (tests/_fuzz.py) is mutated by hypothesis (byte flips, truncation,
inserted junk, huge numbers) and ingested into a store. An outcome is ``ok``, ``InputError`` or
``StoreError``; anything else (a traceback) or a failure that changed the store stops the run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import _fuzz  # noqa: E402


def _run_format(harness: _fuzz.Harness, fmt: str, examples: int) -> Counter[str]:
    counts: Counter[str] = Counter()

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_fuzz.mutated(harness.samples[fmt][1]))
    def run(data):
        counts[harness.attempt(fmt, data)] += 1

    run()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per format")
    parser.add_argument("--formats", nargs="*", default=list(_fuzz.FORMATS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        harness = _fuzz.Harness(Path(tmp))
        total: Counter[str] = Counter()
        print(f"{'format':12} {'inputs':>7} {'ok':>6} {'InputError':>11} {'StoreError':>11}")
        for fmt in args.formats:
            counts = _run_format(harness, fmt, args.examples)
            n = sum(counts.values())
            total.update(counts)
            total["inputs"] += n
            print(f"{fmt:12} {n:7d} {counts['ok']:6d} {counts['InputError']:11d} "
                  f"{counts['StoreError']:11d}", flush=True)
        print(f"{'all':12} {total['inputs']:7d} {total['ok']:6d} {total['InputError']:11d} "
              f"{total['StoreError']:11d}")


if __name__ == "__main__":
    main()
