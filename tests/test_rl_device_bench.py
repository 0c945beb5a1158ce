"""benchmarks/rl_device.py (the GPU throughput/MFU script) runs on CPU: its CPU-tested twin."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_device_benchmark_runs_on_cpu_and_reports_mfu(benchmark_script):
    bench = benchmark_script("rl_device")
    torch.set_num_threads(1)
    rows = bench.main(["--device", "cpu", "--sizes", "tiny", "--steps", "1", "--prompts", "2",
                       "--new-tokens", "16", "--batch", "8", "--peak-tflops", "1"])
    (row,) = rows
    assert row["params"] == 26272 and row["precision"] == "bf16"
    assert row["pretrain_tokens_per_s"] > 0 and row["rl_tokens_per_s"] > 0
    assert 0 < row["pretrain_mfu"] < 1 and 0 < row["rl_mfu"] < 1


def test_peak_is_unknown_on_cpu_unless_given(benchmark_script):
    bench = benchmark_script("rl_device")
    assert bench.peak_flops("cpu", "bf16", None) is None
    assert bench.peak_flops("cpu", "bf16", 2.0) == 2e12
