"""Shared fixtures: tiny, seeded, no network."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# Never let a test reach the network or a real accelerator by accident.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture
def store_dir(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def sigmoid_points():
    """A noisy ScaleRL-style curve (A=0.61, B=1.92, C_mid=2542 GPU-h, R0=0.45), 75 points."""
    rng = np.random.default_rng(0)
    c = np.geomspace(50, 20000, 75)
    y = 0.45 + (0.61 - 0.45) / (1 + (2542 / c) ** 1.92) + rng.normal(0, 0.01, c.size)
    return pd.DataFrame(
        {"step": np.arange(c.size) * 10, "metric": "reward", "value": y, "gpu_hours": c}
    )

# Property-based tests are deterministic too: the same examples on every run and machine.
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("rlscale", derandomize=True, deadline=None)
_hyp_settings.load_profile("rlscale")


@pytest.fixture
def benchmark_script():
    """Load ``benchmarks/<name>.py`` as a module (the scripts are not a package)."""

    def load(name: str):
        path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
