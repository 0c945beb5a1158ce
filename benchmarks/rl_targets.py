"""Check the RL job targets: pretraining time, default-run time, reward gain, bend, ceilings.

For each pretraining setting (default: the default base and two others), run the default RL job
from that base into a store, then fit the ScaleRL sigmoid
R(C) = R0 + (A - R0) / (1 + (C_mid / C)**B) to held-out eval/mean@k against RL FLOPs with
rlscale's own fitter (rlscale.fit.fit, R0 fixed to the reward before RL), and print:
pretraining wall time (or 'cached'), RL wall time, reward before/after, the fitted A (with its
95% interval), B, C_mid, whether C_mid lies inside the run, and the fitter's warnings.

    python benchmarks/rl_targets.py --store /tmp/rl-targets \\
        --setting "pretrain.tokens=4e6" --setting "pretrain.tokens=8e6" \\
        --setting "pretrain.tokens=12e6" --setting ""
"""

from __future__ import annotations

import argparse
import json
import time

from rlscale.fit import fit
from rlscale.rl.config import JobConfig
from rlscale.store import Store, load_points


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
        metric = f"eval/mean@{config.eval.samples}"
        pts = load_points(st, metric=metric, runs=[config.run_id], with_meta=True)
        res = fit(pts, metric=metric, x="flops", by=None, r0="first")  # one group: one FitResult
        y = pts.sort_values("step")["value"].to_numpy()
        c_max = float(pts["flops"].max())
        par = {k: v.value for k, v in res.params.items()}
        first_step = float(pts.loc[pts["step"] > 0, "flops"].min())
        inside = first_step <= par["C_mid"] <= c_max
        print(json.dumps({
            "setting": setting or "default", "pretrain": pre,
            "pretrain_wall_s (when trained)": round(info["wall_s"], 1),
            "rl_wall_s (incl. eval; 0 if stored)": round(rl_wall, 1),
            "rl_step_wall_s (stored)": round(float(pts["wall_s"].max()), 1), "reward_before": round(y[0], 3),
            "reward_after": round(y[-1], 3), "gain": round(y[-1] - y[0], 3),
            **{k: float(f"{v:.4g}") for k, v in par.items()},
            "A_interval": [round(res.params["A"].lower, 3), round(res.params["A"].upper, 3)],
            "C_mid_inside_run": bool(inside), "run_flops": float(f"{c_max:.4g}"),
            "warnings": [w["code"] for w in res.summary()["warnings"]],
        }), flush=True)


if __name__ == "__main__":
    main()
