"""Make the small example logs in this directory (seeded; rerun to regenerate).

    python examples/make_examples.py

Writes ScaleRL-like reward curves, R(C) = R0 + (A - R0) / (1 + (C_mid / C)**B) plus Gaussian noise
(arXiv 2510.13786, Eq. 1), against GPU-hours, for two recipes x two seeds:

    <recipe>_seed<k>.csv          wide CSV: step, gpu_hours, reward, response_length
    trl_grpo/trainer_state.json   written by transformers' TrainerState.save_to_json, with the
                                  keys TRL's GRPOTrainer logs (reward, rewards/<func>/mean,
                                  completions/mean_length, kl, num_tokens, eval_*, total_flos)
    tensorboard/scalerl_seed2/    event file written by torch.utils.tensorboard.SummaryWriter

The curves are synthetic (known parameters below), so a fit can be checked against them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# recipe -> (A, B, C_mid GPU-hours, R0): "scalerl" has the higher ceiling and the better exponent.
RECIPES = {"scalerl": (0.61, 1.92, 2542.0, 0.40), "baseline": (0.52, 1.60, 2000.0, 0.40)}
N_LOGS, STEPS_PER_LOG, GPU_HOURS_PER_LOG = 160, 10, 100.0


def sigmoid(c: np.ndarray, a: float, b: float, c_mid: float, r0: float) -> np.ndarray:
    return r0 + (a - r0) / (1 + (c_mid / c) ** b)


def curve(recipe: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000 * seed + len(recipe))
    i = np.arange(1, N_LOGS + 1)
    gpu_hours = i * GPU_HOURS_PER_LOG
    reward = sigmoid(gpu_hours, *RECIPES[recipe]) + rng.normal(0, 0.01, i.size)
    length = 400 + 600 * (1 - np.exp(-gpu_hours / 6000)) + rng.normal(0, 15, i.size)
    return {"step": i * STEPS_PER_LOG, "gpu_hours": gpu_hours, "reward": reward,
            "response_length": length}


def write_csvs() -> None:
    for recipe in RECIPES:
        for seed in (0, 1):
            c = curve(recipe, seed)
            lines = ["step,gpu_hours,reward,response_length"]
            lines += [f"{s},{g:.1f},{r:.5f},{n:.1f}" for s, g, r, n in
                      zip(c["step"], c["gpu_hours"], c["reward"], c["response_length"])]
            (HERE / f"{recipe}_seed{seed}.csv").write_text("\n".join(lines) + "\n")


def write_trainer_state() -> None:
    from transformers.trainer_callback import TrainerState

    c = curve("scalerl", 3)
    tokens_per_step, history = 2048 * 64, []
    for k, step in enumerate(c["step"][:60]):
        history.append({
            "completions/mean_length": round(float(c["response_length"][k]), 2),
            "epoch": round(float(step) / 600, 4), "grad_norm": 0.3, "kl": round(0.001 * k, 5),
            "learning_rate": 1e-6, "loss": round(0.01 / (1 + k), 6),
            "num_tokens": float(tokens_per_step * step), "reward": round(float(c["reward"][k]), 5),
            "reward_std": 0.2, "rewards/accuracy_reward/mean": round(float(c["reward"][k]), 5),
            "step": int(step),
        })
        if (k + 1) % 20 == 0:
            history.append({"epoch": round(float(step) / 600, 4), "eval_loss": 0.01,
                            "eval_reward": round(float(c["reward"][k]) - 0.02, 5),
                            "step": int(step)})
    last = int(c["step"][59])  # total_flos as the HF Trainer estimates it: 6 * params * tokens
    history.append({"epoch": 1.0, "step": last, "total_flos": 6 * 0.5e9 * tokens_per_step * last, "train_loss": 0.002,
                    "train_runtime": 5400.0, "train_samples_per_second": 7.1,
                    "train_steps_per_second": 0.111})
    out = HERE / "trl_grpo"
    out.mkdir(exist_ok=True)
    TrainerState(epoch=1.0, global_step=last, max_steps=last, logging_steps=10, eval_steps=200,
                 log_history=history).save_to_json(str(out / "trainer_state.json"))


def write_tensorboard() -> None:
    from torch.utils.tensorboard import SummaryWriter

    out = HERE / "tensorboard" / "scalerl_seed2"
    shutil.rmtree(out, ignore_errors=True)
    c = curve("scalerl", 2)
    with SummaryWriter(log_dir=str(out)) as writer:
        for k, step in enumerate(c["step"]):
            writer.add_scalar("reward", float(c["reward"][k]), int(step))
            writer.add_scalar("gpu_hours", float(c["gpu_hours"][k]), int(step))
            writer.add_scalar("response_length", float(c["response_length"][k]), int(step))


if __name__ == "__main__":
    write_csvs()
    write_trainer_state()
    write_tensorboard()
    print("\n".join(str(p.relative_to(HERE)) for p in sorted(HERE.rglob("*")) if p.is_file()
                    and p.name != Path(__file__).name))
