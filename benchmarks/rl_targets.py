"""Check the RL job targets: pretraining time, default-run time, reward gain, bend, ceilings.

For each pretraining setting (default: the default base and two others), run the default RL job
from that base into a store, then fit the ScaleRL sigmoid
R(C) = R0 + (A - R0) / (1 + (C_mid / C)**B) to held-out eval/mean@k against RL FLOPs with
scipy (R0 fixed to the reward before RL), and print: pretraining wall time (or 'cached'), RL
wall time, reward before/after, the fitted A, B, C_mid, and whether C_mid lies inside the run.

    python benchmarks/rl_targets.py --store /tmp/rl-targets \\
        --setting "" --setting "pretrain.tokens=1e6" --setting "pretrain.ops_max=2"
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.optimize import curve_fit

from rlscale.rl.config import JobConfig
from rlscale.store import Store


def sigmoid(c, a, b, c_mid, r0):
    return r0 + (a - r0) / (1 + (c_mid / c) ** b)


def fit(c: np.ndarray, y: np.ndarray, r0: float) -> dict[str, float]:
    best = None
    for c_mid0 in np.geomspace(c.min(), c.max(), 6):
        for b0 in (0.7, 1.5, 3.0):
            try:
                p, _ = curve_fit(lambda x, a, b, m: sigmoid(x, a, b, m, r0), c, y,
                                 p0=(y.max(), b0, c_mid0),
                                 bounds=([0, 0.1, c.min() / 100], [1, 20, c.max() * 100]),
                                 maxfev=20000)
            except RuntimeError:
                continue
            sse = float(((sigmoid(c, *p, r0) - y) ** 2).sum())
            if best is None or sse < best[0]:
                best = (sse, p)
    sse, (a, b, c_mid) = best
    return {"A": a, "B": b, "C_mid": c_mid, "R0": r0, "rmse": (sse / len(y)) ** 0.5}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--setting", action="append", default=None,
                    help="comma-separated --set overrides of one pretraining setting")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    import torch

    from rlscale.rl.pretrain import find_base, get_base
    from rlscale.rl.runner import run_job

    if a.threads:
        torch.set_num_threads(a.threads)
    settings = a.setting or [""]
    for setting in settings:
        overrides = [s for s in setting.split(",") if s]
        config = JobConfig().with_overrides(overrides + [f"run_id=target-{len(overrides)}-"
                                                         f"{JobConfig().with_overrides(overrides).hash()[:8]}"])
        cached = find_base(config) is not None
        t0 = time.perf_counter()
        _, info = get_base(config, progress=False)
        pre = "cached" if cached else f"{time.perf_counter() - t0:.0f} s"
        st = Store(a.store)
        t0 = time.perf_counter()
        if not st.has_run(config.run_id):
            run_job(config, store=st, progress=False)
        rl_wall = time.perf_counter() - t0
        df = st.read_points(runs=[config.run_id], metric=f"eval/mean@{config.eval.samples}")
        df = df.sort_values("step")
        y, c = df["value"].to_numpy(), df["flops"].to_numpy()
        f = fit(c[1:], y[1:], float(y[0]))
        inside = c[1] <= f["C_mid"] <= c[-1]
        print(json.dumps({
            "setting": setting or "default", "pretrain": pre,
            "pretrain_wall_s (when trained)": round(info["wall_s"], 1),
            "rl_wall_s (incl. eval)": round(rl_wall, 1), "reward_before": round(y[0], 3),
            "reward_after": round(y[-1], 3), "gain": round(y[-1] - y[0], 3),
            **{k: float(f"{v:.4g}") for k, v in f.items()}, "C_mid_inside_run": bool(inside),
            "run_flops": float(f"{c[-1]:.4g}"),
        }), flush=True)


if __name__ == "__main__":
    main()
