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
    "ingest_path": "rlscale.ingest.pipeline",
    "ingest_paths": "rlscale.ingest.pipeline",
    "read_source": "rlscale.ingest.pipeline",
    "IngestResult": "rlscale.ingest.pipeline",
    "InputError": "rlscale.errors",
    "RLScaleError": "rlscale.errors",
    "StoreError": "rlscale.errors",
    "fit": "rlscale.fit",
    "FitResult": "rlscale.fit",
    "load_fits": "rlscale.fit",
    "save_fits": "rlscale.fit",
    "get_law": "rlscale.fit.laws",
    "raw_curves_chart": "rlscale.plot.charts",
    "curves_chart": "rlscale.plot.charts",
    "params_chart": "rlscale.plot.charts",
    "residuals_chart": "rlscale.plot.charts",
    "backtest_chart": "rlscale.plot.charts",
    "save_chart": "rlscale.plot.charts",
    "build_report": "rlscale.plot.report",
    "write_report": "rlscale.plot.report",
    "reward_at": "rlscale.forecast.budgets",
    "compute_for_reward": "rlscale.forecast.budgets",
    "compute_for_fraction": "rlscale.forecast.budgets",
    "rank_at": "rlscale.forecast.ranking",
    "crossovers": "rlscale.forecast.ranking",
    "Ranking": "rlscale.forecast.ranking",
    "backtest": "rlscale.forecast.backtest",
    "BacktestResult": "rlscale.forecast.backtest",
    "Pricing": "rlscale.forecast.pricing",
    "flops_per_gpu_hour": "rlscale.forecast.pricing",
    "flops_to_gpu_hours": "rlscale.forecast.pricing",
    "gpu_hours_to_flops": "rlscale.forecast.pricing",
    "JobConfig": "rlscale.rl.config",
    "run_job": "rlscale.rl.runner",
    "estimate_job": "rlscale.rl.flops",
    "SweepSpec": "rlscale.sweep.spec",
    "load_spec": "rlscale.sweep.spec",
    "run_sweep": "rlscale.sweep.run",
    "make_executor": "rlscale.sweep.executors",
    "compare_passk": "rlscale.analysis.passk",
    "passk_curves": "rlscale.analysis.passk",
    "pass_at_k_curve": "rlscale.analysis.passk",
    "update_sparsity": "rlscale.analysis.sparsity",
    "headroom": "rlscale.analysis.headroom",
    "headroom_from_levels": "rlscale.analysis.headroom",
    "run_demo": "rlscale.demo",
    "level_params_chart": "rlscale.plot.levels",
    "level_params_frame": "rlscale.plot.levels",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Any, Any]:
    """``__getattr__`` and ``__dir__`` for a package that re-exports ``exports`` (name -> module)
    and imports each module on first use, so importing the package stays cheap."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


__getattr__, _ = lazy_exports("rlscale", _EXPORTS)


def __dir__() -> list[str]:
    return __all__
