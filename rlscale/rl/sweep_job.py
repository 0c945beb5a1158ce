"""The RL job as a sweep job: configs go through :class:`rlscale.rl.config.JobConfig`.

Imported only when a spec says ``job = "rl"`` (it pulls in torch through :mod:`rlscale.rl`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from rlscale.errors import input_error
from rlscale.rl.config import JobConfig, base_hash
from rlscale.rl.flops import estimate_job
from rlscale.rl.recipes import resolve
from rlscale.store import Store
from rlscale.sweep.spec import SweepSpec


def load_base(spec: SweepSpec) -> dict[str, Any]:
    """The spec's base config with every default filled in, as a nested dict."""

    if spec.base_path:
        return JobConfig.from_toml(spec.base_path).to_dict()
    return JobConfig.from_dict(spec.base, source=spec.path).to_dict()


def normalize(config: dict[str, Any], *, spec: SweepSpec) -> dict[str, Any]:
    """Validate one job's config by building a JobConfig from it; errors name the spec.

    The recipe's knobs are pinned at their values (:func:`rlscale.rl.recipes.resolve`), so the
    config is the one the run records and a restarted sweep can compare the two."""

    try:
        job = JobConfig.from_dict(config, source=spec.path)
        return replace(job, rl=resolve(job.rl)).to_dict()
    except TypeError as exc:  # InputErrors already name the spec and the key
        raise input_error(f"job {config.get('run_id')!r} has a bad config: {exc}",
                          path=spec.path) from exc


def group(config: dict[str, Any]) -> str:
    """Jobs with the same pretrained base (task, model, pretraining) form a group."""

    return base_hash(JobConfig.from_dict(config))


def estimate(config: dict[str, Any]) -> dict[str, float]:
    """``flops`` and ``device_hours`` of one job, from :func:`rlscale.rl.flops.estimate_job`.

    Pretraining is counted unless the base is already cached; ``shared_flops`` is the
    pretraining part, which jobs of one group share (the sweep builds each base once).
    """
    from rlscale.rl.pretrain import find_base

    cfg = JobConfig.from_dict(config)
    est = estimate_job(cfg, include_pretrain=find_base(cfg) is None)
    return {"flops": float(est["flops"]), "device_hours": float(est["device_hours"]),
            "shared_flops": float(est["pretrain_flops"])}


def run_rl_job(config: dict[str, Any], *, store: str, resume: bool) -> str:
    """Run one RL job into ``store`` (the executors call this in their workers)."""
    import torch

    from rlscale.rl.runner import run_job

    threads = os.environ.get("RLSCALE_THREADS")
    if threads:  # the executor's share of the cores (torch may not have been imported before)
        torch.set_num_threads(int(threads))
    return run_job(JobConfig.from_dict(config), store=Store(store), resume=resume, progress=False)
