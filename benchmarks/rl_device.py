"""Tokens/s and model FLOP utilisation (MFU) of pretraining and RL steps on one device.

For each model size (default ~10M and ~50M parameters), times ``--steps`` pretraining steps and
``--steps`` GRPO steps (after one warm-up step each) from a random init, at ``--precision``
(default bf16 autocast), and prints:

* pretraining: tokens/s (prompt + solution tokens fed) and MFU = 3 x forward FLOPs per token
  (rlscale.rl.flops, matrix products only) x tokens/s / peak;
* RL: generated tokens/s, steps/s, and MFU = the step's counted FLOPs (generation, reference
  log-probs, training forward + backward) / wall / peak.

Peak is the device's dense bf16 (or fp32 with --precision fp32) rate: known for H100/H200 (989
TFLOP/s bf16, 67 fp32; SXM) and A100 (312 / 19.5), else give ``--peak-tflops``. A random-init
model rarely stops early, so RL steps generate close to ``--new-tokens`` per sample.

    python benchmarks/rl_device.py                       # GPU if present, sizes 10M and 50M
    python benchmarks/rl_device.py --device cpu --sizes tiny --peak-tflops 1   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rlscale.rl.config import JobConfig

SIZES = {  # name -> model overrides
    "tiny": ["model.d_model=32", "model.n_layers=2", "model.n_heads=2"],
    "10M": ["model.d_model=320", "model.n_layers=8", "model.n_heads=5"],
    "50M": ["model.d_model=512", "model.n_layers=16", "model.n_heads=8"],
}
PEAK_TFLOPS = {"H100": {"bf16": 989.0, "fp32": 67.0}, "H200": {"bf16": 989.0, "fp32": 67.0},
               "A100": {"bf16": 312.0, "fp32": 19.5}}


def peak_flops(device: str, precision: str, given: float | None) -> float | None:
    if given:
        return given * 1e12
    if device == "cuda":
        name = torch.cuda.get_device_name()
        for key, table in PEAK_TFLOPS.items():
            if key in name:
                return table["fp32" if precision == "fp32" else "bf16"] * 1e12
    return None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench_pretrain(config: JobConfig, device: str, steps: int) -> dict[str, float]:
    from rlscale.rl.flops import forward_flops
    from rlscale.rl.model import Transformer
    from rlscale.rl.pretrain import batches, train_step
    from rlscale.rl.tasks import PAD

    torch.manual_seed(0)
    model = Transformer(config.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = batches(config)
    tokens = flops = 0
    wall = 0.0
    for i in range(steps + 1):  # the first step is the warm-up
        batch, mask, n_real = next(data)
        batch, mask = batch.to(device), mask.to(device)
        _sync(device)
        t0 = time.perf_counter()
        train_step(model, opt, batch, mask, device=device, precision=config.pretrain.precision)
        _sync(device)
        if i:
            wall += time.perf_counter() - t0
            tokens += n_real
            flops += 3 * sum(forward_flops(config.model, int(n)) for n in (batch != PAD).sum(1) - 1)
    return {"params": model.n_params(), "tokens_per_s": tokens / wall, "flops_per_s": flops / wall}


def bench_rl(config: JobConfig, device: str, steps: int) -> dict[str, float]:
    from rlscale.rl.model import Transformer
    from rlscale.rl.recipes import resolve
    from rlscale.rl.step import rl_step

    torch.manual_seed(0)
    policy = Transformer(config.model).to(device)
    ref = Transformer(config.model).to(device).eval()
    ref.load_state_dict(policy.state_dict())
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-5)
    rl = resolve(config.rl)
    tokens = flops = 0
    wall = 0.0
    for step in range(steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        result = rl_step(policy, ref, opt, rl, config.task, seed=0, step=step)
        _sync(device)
        if step:
            wall += time.perf_counter() - t0
            tokens += result.tokens
            flops += result.flops
    return {"tokens_per_s": tokens / wall, "steps_per_s": steps / wall, "flops_per_s": flops / wall}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--sizes", default="10M,50M", help=f"comma-separated, of {sorted(SIZES)}")
    ap.add_argument("--steps", type=int, default=3, help="timed steps of each kind (after 1 warm-up)")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--prompts", type=int, default=64, help="RL prompts per step (x 8 samples)")
    ap.add_argument("--new-tokens", type=int, default=128, help="RL max new tokens")
    ap.add_argument("--batch", type=int, default=128, help="pretraining sequences per step")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak, for MFU")
    a = ap.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    peak = peak_flops(device, a.precision, a.peak_tflops)
    where = torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    rows = []
    for size in a.sizes.split(","):
        config = JobConfig().with_overrides(SIZES[size] + [
            f"pretrain.precision={a.precision}", f"rl.precision={a.precision}",
            f"pretrain.batch_size={a.batch}", f"rl.prompts_per_step={a.prompts}", "rl.group_size=8",
            f"rl.max_new_tokens={a.new_tokens}", "rl.recipe=grpo"])
        pre = bench_pretrain(config, device, a.steps)
        rl = bench_rl(config, device, a.steps)
        row = {"size": size, "params": pre["params"], "device": where, "precision": a.precision,
               "pretrain_tokens_per_s": round(pre["tokens_per_s"]),
               "rl_tokens_per_s": round(rl["tokens_per_s"]), "rl_steps_per_s": round(rl["steps_per_s"], 3),
               "pretrain_mfu": None if peak is None else round(pre["flops_per_s"] / peak, 4),
               "rl_mfu": None if peak is None else round(rl["flops_per_s"] / peak, 4),
               "peak_tflops": None if peak is None else peak / 1e12}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
