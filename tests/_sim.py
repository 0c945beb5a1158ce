"""A tiny simulated store for the plot and report tests: known sigmoid curves plus noise."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from rlscale.store import RunMeta, Store

# recipe -> (A, C_mid in GPU-hours); R0 = 0.3, B = 1.6 for all; pretraining adds 0.05 to A.
RECIPES = {"grpo": (0.61, 2500.0), "cispo": (0.70, 4000.0)}
FLOPS_PER_GPU_HOUR = 3.6e15


def make_store(root, *, pretrain=(1e9, 4e9), seeds=(0, 1), n=30, noise=0.006,
               seed=0) -> Store:
    """Write len(RECIPES) x len(pretrain) x len(seeds) runs of ``n`` points each."""
    rng = np.random.default_rng(seed)
    st = Store(root)
    for recipe, (a, cmid) in RECIPES.items():
        for pre in pretrain:
            for s in seeds:
                c = np.geomspace(50, 12000, n)
                top = a + (0.05 if pre > 2e9 else 0.0)
                y = 0.3 + (top - 0.3) / (1 + (cmid / c) ** 1.6) + rng.normal(0, noise, n)
                pts = pd.DataFrame({"step": np.arange(n) * 10, "metric": "reward", "value": y,
                                    "gpu_hours": c, "flops": c * FLOPS_PER_GPU_HOUR})
                meta = RunMeta(run_id=f"{recipe}-p{pre:.0e}-s{s}".replace("+", ""),
                               recipe=recipe, seed=s, metadata={"pretrain_tokens": pre},
                               source={"path": f"sim/{recipe}-{s}.csv", "format": "csv",
                                       "sha256": hashlib.sha256(f"{recipe}{pre}{s}".encode()).hexdigest()})
                st.write_run(meta, pts)
    return st
