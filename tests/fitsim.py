"""Simulated ScaleRL curves for the fit tests (Khatri et al. 2025, Table 1 values)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# (A, B, C_mid GPU-h, R0): ScaleRL Table 1 fits, with R0 in the paper's 0.4-0.5 range.
TABLE1 = [(0.610, 1.92, 2542.0, 0.45), (0.645, 1.70, 10909.0, 0.42), (0.710, 1.65, 4242.0, 0.48)]


def sigmoid(c, A, B, C_mid, R0):
    return R0 + (A - R0) / (1 + (C_mid / c) ** B)


def curve(A, B, C_mid, R0, *, rng, n=75, sd=0.01, lo=1 / 30, hi=15.0, run_id="r0",
          recipe=None, noise=None):
    """One run: ``n`` evaluations log-spaced over [lo, hi] x C_mid, iid N(0, sd) noise."""
    c = np.geomspace(lo * C_mid, hi * C_mid, n)
    eps = rng.normal(0, sd, n) if noise is None else noise
    df = pd.DataFrame({"run_id": run_id, "step": np.arange(n) * 10, "metric": "reward",
                       "value": sigmoid(c, A, B, C_mid, R0) + eps, "gpu_hours": c,
                       "flops": c * 3.6e18})
    if recipe is not None:
        df["recipe"] = recipe
    return df


def ar1_noise(rng, n, rho, sd):
    """Stationary AR(1) noise with marginal sd ``sd``."""
    e = np.empty(n)
    e[0] = rng.normal(0, sd)
    for i in range(1, n):
        e[i] = rho * e[i - 1] + rng.normal(0, sd * np.sqrt(1 - rho**2))
    return e
