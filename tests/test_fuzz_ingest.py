"""Fuzzing every reader: a mutated real log either ingests or fails with a one-line InputError or
StoreError, and a failure leaves the store's tree (paths and bytes) exactly as it was.

Bounded for CI (30 examples per format, derandomized: the same examples on every run);
``benchmarks/fuzz.py --examples N`` runs longer and prints the counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fuzz  # noqa: E402

EXAMPLES = 30


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    return _fuzz.Harness(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("fmt", _fuzz.FORMATS)
def test_the_unmutated_sample_ingests(harness, fmt):
    assert harness.attempt(fmt, harness.samples[fmt][1]) == "ok"


@pytest.mark.parametrize("fmt", _fuzz.FORMATS)
def test_mutated_logs_fail_in_one_line_and_leave_the_store_alone(harness, fmt):
    outcomes: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_fuzz.mutated(harness.samples[fmt][1]))
    def check(data):
        outcomes.append(harness.attempt(fmt, data))

    check()
    assert len(outcomes) >= EXAMPLES
    assert "InputError" in outcomes, outcomes  # the mutations do reach the readers' errors
