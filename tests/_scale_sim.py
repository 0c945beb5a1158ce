"""Simulated multi-size stores for the scale-law tests: one recipe run at several model sizes.

The truth (ScaleRL-like, ``model_params`` N, ``z = N / 1e9``)::

    A(N)     = 0.85 - 0.25 * z**-0.35          C_mid(N) = 2000 * z**0.5 GPU-hours
    B        = 1.5                               R0(N)    = 0.2 + 0.04 * log10(z)

Each run covers compute C_mid/10 .. 10 C_mid, so every scale sees its own bend.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from rlscale.store import RunMeta, Store

SIZES = (5e8, 1.5e9, 3e9, 7e9, 1.4e10)
TRUTH = {"A_max": 0.85, "D": 0.25, "alpha": 0.35, "c0": 2000.0, "gamma": 0.5, "B": 1.5,
         "r0": 0.2, "r0_slope": 0.04}


def true_params(n: float) -> dict[str, float]:
    z = n / 1e9
    return {"A": TRUTH["A_max"] - TRUTH["D"] * z ** -TRUTH["alpha"],
            "C_mid": TRUTH["c0"] * z ** TRUTH["gamma"], "B": TRUTH["B"],
            "R0": TRUTH["r0"] + TRUTH["r0_slope"] * np.log10(z)}


def sigmoid(c, *, A, B, C_mid, R0):
    return R0 + (A - R0) / (1 + (C_mid / c) ** B)


def make_scale_store(root, *, sizes=SIZES, seeds=(0, 1), n=40, noise=0.01, seed=0,
                     plateau_after: float | None = None, params_of=true_params,
                     zero_start: bool = False) -> Store:
    """Write one run per (size, seed). ``plateau_after``: sizes above it get that size's
    parameters (the law stops holding: the largest model gains nothing); ``params_of``: size ->
    sigmoid parameters (default the truth above); ``zero_start``: the first point is logged at
    compute 0 (as an RL job's evaluation before its first step)."""
    rng = np.random.default_rng(seed)
    st = Store(root)
    for size in sizes:
        p = params_of(min(size, plateau_after) if plateau_after else size)
        for s in seeds:
            c = np.geomspace(p["C_mid"] / 10, p["C_mid"] * 10, n)
            y = sigmoid(c, **p) + rng.normal(0, noise, n)
            if zero_start:
                c[0] = 0.0
            pts = pd.DataFrame({"step": np.arange(n) * 10, "metric": "reward", "value": y,
                                "gpu_hours": c})
            run = f"m{size:.2g}-s{s}".replace("+", "")
            meta = RunMeta(run_id=run, recipe="grpo", seed=s, metadata={"model_params": size},
                           source={"path": f"sim/{run}.csv", "format": "csv",
                                   "sha256": hashlib.sha256(run.encode()).hexdigest()})
            st.write_run(meta, pts)
    return st
