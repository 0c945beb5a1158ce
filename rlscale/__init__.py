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
    "ingest_path": "rlscale.ingest.api",
    "ingest_paths": "rlscale.ingest.api",
    "read_source": "rlscale.ingest.api",
    "IngestResult": "rlscale.ingest.api",
    "InputError": "rlscale.errors",
    "RLScaleError": "rlscale.errors",
    "StoreError": "rlscale.errors",
    "fit": "rlscale.fit",
    "FitResult": "rlscale.fit",
    "load_fits": "rlscale.fit",
    "save_fits": "rlscale.fit",
    "get_law": "rlscale.laws",
    "raw_curves_chart": "rlscale.plot",
    "curves_chart": "rlscale.plot",
    "params_chart": "rlscale.plot",
    "residuals_chart": "rlscale.plot",
    "backtest_chart": "rlscale.plot",
    "save_chart": "rlscale.plot",
    "build_report": "rlscale.report",
    "write_report": "rlscale.report",
    "reward_at": "rlscale.forecast",
    "compute_for_reward": "rlscale.forecast",
    "compute_for_fraction": "rlscale.forecast",
    "rank_at": "rlscale.ranking",
    "crossovers": "rlscale.ranking",
    "Ranking": "rlscale.ranking",
    "backtest": "rlscale.backtesting",
    "BacktestResult": "rlscale.backtesting",
    "Pricing": "rlscale.units",
    "flops_per_gpu_hour": "rlscale.units",
    "flops_to_gpu_hours": "rlscale.units",
    "gpu_hours_to_flops": "rlscale.units",
    "JobConfig": "rlscale.rl.config",
    "run_job": "rlscale.rl.runner",
    "estimate_job": "rlscale.rl.flops",
    "SweepSpec": "rlscale.sweep_spec",
    "load_spec": "rlscale.sweep_spec",
    "run_sweep": "rlscale.sweep",
    "make_executor": "rlscale.executors",
    "compare_passk": "rlscale.analysis.passk",
    "passk_curves": "rlscale.analysis.passk",
    "pass_at_k_curve": "rlscale.analysis.passk",
    "update_sparsity": "rlscale.analysis.sparsity",
    "headroom": "rlscale.analysis.headroom",
    "headroom_from_levels": "rlscale.analysis.headroom",
    "run_demo": "rlscale.demo",
    "level_params_chart": "rlscale.plot_levels",
    "level_params_frame": "rlscale.plot_levels",
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
