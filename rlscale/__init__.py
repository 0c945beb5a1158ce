"""rlscale: the science of RL compute.

Run small RL jobs, store reward curves as Parquet, fit sigmoidal compute-performance laws per
recipe (ScaleRL, arXiv 2510.13786, Eq. 1), forecast, and plot. The public API is re-exported here
lazily, so ``import rlscale`` stays cheap and never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it. Import happens on first attribute access.
_EXPORTS: dict[str, str] = {
    "Store": "rlscale.store",
    "RunMeta": "rlscale.store",
    "RunWriter": "rlscale.store",
    "load_points": "rlscale.store",
    "load_runs": "rlscale.store",
    "InputError": "rlscale.errors",
    "RLScaleError": "rlscale.errors",
    "StoreError": "rlscale.errors",
    "JobConfig": "rlscale.rl.config",
    "run_job": "rlscale.rl.runner",
    "estimate_job": "rlscale.rl.flops",
    "SweepSpec": "rlscale.sweep_spec",
    "load_spec": "rlscale.sweep_spec",
    "run_sweep": "rlscale.sweep",
    "make_executor": "rlscale.executors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'rlscale' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
