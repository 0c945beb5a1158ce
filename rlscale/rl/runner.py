"""Run an RL job end to end: base -> RL steps -> points in the store, checkpointed, resumable.

Points (see docs/rl.md): ``train/...`` every step, ``eval/...`` every ``eval.every`` steps and at
the end, each with the cumulative compute axes at that step: ``flops`` (RL generation + log-prob
passes + training forward/backward; evaluation and pretraining excluded), ``tokens`` (sampled
response tokens), ``wall_s`` (seconds spent in RL steps, evaluation excluded) and ``gpu_hours``
(device-hours = wall_s / 3600 on one device; on CPU that device is the process and its torch
threads, so it is CPU wall-hours, not core-hours).

Points are appended and a checkpoint saved at every evaluation, in that order, so a crash loses
at most one evaluation interval; ``resume=True`` rewinds the store to the checkpoint's step and
continues. Each step's randomness is seeded by (seed, step), so a resumed run retraces the run
that was never killed.
"""

from __future__ import annotations

import copy
import math
import os
import pickle
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from rlscale.errors import RLScaleError, StoreError
from rlscale.rl.config import JobConfig, base_hash
from rlscale.rl.evaluate import eval_problems, evaluate
from rlscale.rl.pretrain import get_base
from rlscale.rl.recipes import resolve
from rlscale.rl.step import rl_step
from rlscale.store import RunMeta, RunWriter, Store, as_store, layout
from rlscale.store.liveness import writer_info


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        msg = "device='cuda' was asked for but torch sees no CUDA device; use --device cpu"
        raise RLScaleError(msg)
    return device


def default_run_id(config: JobConfig) -> str:
    return f"rl-{config.rl.recipe}-{config.model.name}-{config.hash()[:8]}-s{config.seed}"


def load_checkpoint(path: Path, *, device: str = "cpu") -> dict[str, Any]:
    """Read a run's checkpoint with ``weights_only=True``: tensors and plain values, never code.

    A store may be shared between people and machines, so a checkpoint is data, not a program:
    a pickle that would build an arbitrary object (run a command) is refused with a
    :class:`StoreError` naming the file, as is a truncated or foreign file.
    """
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text suggests weights_only=False, the one thing never to do with it.
        what = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
        what = f" ({what[0][:160]})" if what else ""
        msg = (f"{path}: refused, the checkpoint holds Python objects other than tensors and plain "
               f"values{what}; loading it could run code. "
               f"rlscale never writes such a file: delete it to rerun from step 0")
        raise StoreError(msg) from exc
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        msg = (f"{path}: cannot read the checkpoint ({type(exc).__name__}: {first}); it is "
               f"damaged or truncated: delete it to rerun from step 0, or restore it from a copy")
        raise StoreError(msg) from exc
    if not isinstance(ck, dict) or not {"policy", "opt", "state"} <= set(ck):
        msg = f"{path}: not an rlscale checkpoint (expected a dict with policy, opt, ref, state)"
        raise StoreError(msg)
    return ck


def run_job(config: JobConfig, *, store: Store | str | os.PathLike[str], resume: bool = False,
            progress: bool = True) -> str:
    """Run (or with ``resume`` continue) the RL job ``config`` into ``store``; return its run_id."""
    store = as_store(store)
    config = replace(config, rl=resolve(config.rl))  # run.json and the run id say what ran
    run_id = config.run_id or default_run_id(config)
    config = replace(config, run_id=run_id)
    device = pick_device(config.device)
    ckpt_path = layout.checkpoint_file(store.root, run_id)
    if resume and not store.has_run(run_id):
        msg = f"cannot resume: no run {run_id!r} in store {str(store.root)!r}"
        raise StoreError(msg)
    if not resume and store.has_run(run_id):
        msg = (f"run {run_id!r} already exists in {str(store.root)!r}; continue it with "
               f"`rlscale run --resume {run_id}` or pick another run_id (--set run_id=...)")
        raise StoreError(msg)

    # Before the base, which may take minutes to pretrain: a bad checkpoint fails at once.
    ck = load_checkpoint(ckpt_path, device=device) if resume and ckpt_path.is_file() else None
    base, base_info = get_base(config, device=device, progress=progress)
    policy = base
    # the frozen base for eval/kl_base, copied before a resumed policy is loaded into ``base``
    base0 = copy.deepcopy(base).eval() if config.eval.kl_base else None
    ref = copy.deepcopy(base).eval() if config.rl.kl_coef and config.rl.trainer == "rl" else None
    opt = torch.optim.AdamW(policy.parameters(), lr=config.rl.lr, betas=(0.9, 0.95),
                            weight_decay=0.0)
    state = {"step": 0, "flops": 0, "tokens": 0, "wall_s": 0.0}
    if resume:
        writer = RunWriter.resume(store, run_id)
        if ck is not None:
            policy.load_state_dict(ck["policy"])
            opt.load_state_dict(ck["opt"])
            if ref is not None:
                ref.load_state_dict(ck["ref"])
            state = ck["state"]
        writer.truncate_after(state["step"] - 1 if state["step"] == 0 else state["step"])
        writer.update_meta(status="running", writer=writer_info())
    else:
        writer = RunWriter.open(store, _meta(config, base_info, device))

    print(f"run {run_id}: {config.model.name} ({base_info['n_params']:,} params), recipe "
          f"{config.rl.recipe}, device {device}, from step {state['step']}", flush=True)
    problems = eval_problems(config)
    buffer: list[dict[str, Any]] = []
    if state["step"] == 0:
        buffer += _eval_rows(policy, config, problems, state, base0)
        _flush(writer, buffer, policy, opt, ref, state, ckpt_path, config)
    bar = _bar(config.rl.steps, state["step"], progress)
    while state["step"] < config.rl.steps and not budget_spent(config.rl, state):
        t0 = time.perf_counter()
        for g in opt.param_groups:  # linear warm-up (resumes exactly: it reads only the step)
            g["lr"] = warmup_lr(config.rl, state["step"])
        result = rl_step(policy, ref, opt, config.rl, config.task, seed=config.seed,
                         step=state["step"])
        state["step"] += 1
        step = state["step"]
        if ref is not None and config.rl.ref_reset_every and step % config.rl.ref_reset_every == 0:
            ref.load_state_dict(policy.state_dict())
        state["wall_s"] += time.perf_counter() - t0
        state["flops"] += result.flops
        state["tokens"] += result.tokens
        buffer += [_row(step, k, v, state) for k, v in result.metrics.items()]
        if bar is not None:
            bar.update(1)
            name = "reward" if "train/reward" in result.metrics else "loss"  # sft samples nothing
            bar.set_postfix({name: f"{result.metrics.get(f'train/{name}', math.nan):.3f}"},
                            refresh=False)
        last = step == config.rl.steps or budget_spent(config.rl, state)
        if step % config.eval.every == 0 or last:
            buffer += _eval_rows(policy, config, problems, state, base0)
            if bar is not None:
                key = f"eval/mean@{config.eval.samples}"
                bar.set_postfix(eval=f"{[r for r in buffer if r['metric'] == key][-1]['value']:.3f}")
            _flush(writer, buffer, policy, opt, ref, state, ckpt_path, config)
    if bar is not None:
        bar.close()
    writer.close("complete")
    return run_id


# Run metadata (run.json's flat ``metadata``, which fits, plots and the demo group by) is every
# config field named ``<section>_<key>``, except that model and rl keys go bare (d_model, lr,
# kl_coef: what analyses compare runs by); the rl keys below keep ``rl_``, since bare they would
# read as another stage's or the whole job's. RunMeta's own fields (recipe, the task's name) are
# left out, and what the run measured is added (pretrain_flops, model_params, device, ...).
META_PREFIX = {"task": "task_", "model": "", "pretrain": "pretrain_", "rl": "", "eval": "eval_"}
META_RL_PREFIXED = ("steps", "ops_min", "ops_max", "precision")
META_SKIPPED = ("task.name", "rl.recipe")


def metadata_name(section: str, key: str) -> str:
    """The metadata key of config field ``section.key``, e.g. ``pretrain_tokens``."""
    prefix = "rl_" if section == "rl" and key in META_RL_PREFIXED else META_PREFIX[section]
    return prefix + key


def config_metadata(config: JobConfig) -> dict[str, Any]:
    """The config's fields as run metadata (:func:`metadata_name`), the recipe's knobs resolved."""
    data = replace(config, rl=resolve(config.rl)).to_dict()
    return {metadata_name(section, key): value for section in META_PREFIX
            for key, value in data[section].items() if f"{section}.{key}" not in META_SKIPPED}


def _meta(config: JobConfig, base_info: dict[str, Any], device: str) -> RunMeta:
    measured = {
        "pretrain_flops": float(base_info["flops"]), "pretrain_wall_s": base_info["wall_s"],
        "base_hash": base_hash(config), "model_params": base_info["n_params"], "device": device,
        "threads": torch.get_num_threads(), "gpu_hours_means": "device wall-hours",
    }
    return RunMeta(run_id=config.run_id, recipe=config.rl.recipe, seed=config.seed,
                   task=config.task.name, model=config.model.name,
                   metadata={**config_metadata(config), **measured}, config=config.to_dict())


def _row(step: int, metric: str, value: float, state: dict[str, Any]) -> dict[str, Any]:
    return {"step": step, "metric": metric, "value": float(value), "flops": float(state["flops"]),
            "tokens": int(state["tokens"]), "wall_s": state["wall_s"],
            "gpu_hours": state["wall_s"] / 3600}


def budget_spent(rl: Any, state: dict[str, Any]) -> bool:
    """True once the run's cumulative RL FLOPs reach ``rl.max_flops`` (never when it is 0): arms
    whose responses differ in length then stop at equal compute, not at equal steps."""
    return bool(rl.max_flops) and state["flops"] >= rl.max_flops


def warmup_lr(rl: Any, step: int) -> float:
    """The learning rate of RL step ``step`` (0-based): ``rl.lr`` after ``rl.warmup_steps``
    steps of linear warm-up from ``rl.lr / warmup_steps``. Adam's first update moves every
    weight by about the learning rate whatever its gradient; warm-up keeps that from knocking a
    sharply pretrained base off what it knew."""
    if rl.warmup_steps and step < rl.warmup_steps:
        return rl.lr * (step + 1) / rl.warmup_steps
    return rl.lr


def _eval_rows(policy, config: JobConfig, problems, state, base0=None) -> list[dict[str, Any]]:
    gen = torch.Generator(device=next(policy.parameters()).device).manual_seed(
        (config.seed * 1_000_003 + state["step"]) % 2**63 + 7)
    metrics, _ = evaluate(policy, problems, samples=config.eval.samples,
                          max_new_tokens=config.rl.max_new_tokens, generator=gen,
                          temperature=config.eval.temperature, precision=config.rl.precision,
                          verified_only=config.task.verified_only)
    if base0 is not None:
        metrics["eval/kl_base"] = kl_to_base(policy, base0, problems, config, step=state["step"])
    return [_row(state["step"], k, v, state) for k, v in metrics.items()]


KL_SAMPLES = 2  # responses per held-out problem for eval/kl_base


def kl_to_base(policy, base, problems, config: JobConfig, *, step: int) -> float:
    """Mean per-token KL(policy || base) on the policy's own responses to the held-out problems
    (``problems``: difficulty -> problems, as :func:`eval_problems` gives).

    ``KL_SAMPLES`` responses per problem (temperature 1, seeded by (seed, step)); per token the
    k3 estimate ``exp(r) - 1 - r`` with ``r = log base(tok) - log policy(tok)`` (unbiased for the
    token's KL given its prefix, never negative), averaged over every response token (EOS
    included). Log-probs in fp32; 0 exactly at equal weights."""
    from rlscale.rl.rollout import rollout, sequence_logprobs

    device = next(policy.parameters()).device
    gen = torch.Generator(device=device).manual_seed((config.seed * 1_000_003 + step) % 2**63 + 11)
    was = policy.training
    policy.eval()
    with torch.inference_mode():
        flat = [p for ops in sorted(problems) for p in problems[ops]]
        ro = rollout(policy, flat, group_size=KL_SAMPLES,
                     max_new_tokens=config.rl.max_new_tokens, generator=gen, precision="fp32",
                     verified_only=config.task.verified_only)
        lp, _ = sequence_logprobs(policy, ro, precision="fp32")
        lb, _ = sequence_logprobs(base, ro, precision="fp32")
    policy.train(was)
    r = (lb - lp).double()
    k3 = (torch.exp(r) - 1 - r) * ro.response_mask
    return float(k3.sum() / ro.response_mask.sum().clamp(min=1))


def kept_checkpoint(ckpt_path: Path, step: int) -> Path:
    """Where ``eval.keep_checkpoints`` keeps the policy of step ``step``: beside ckpt.pt."""
    return ckpt_path.parent / f"step-{step:06d}.pt"


def _flush(writer: RunWriter, buffer: list[dict[str, Any]], policy, opt, ref, state,
           ckpt_path: Path, config: JobConfig | None = None) -> None:
    """Append buffered points, then checkpoint (atomically), then clear the buffer. With
    ``eval.keep_checkpoints`` the policy alone is also kept as ``step-N.pt``."""
    writer.append(pd.DataFrame(buffer))
    buffer.clear()
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.temp_name(ckpt_path)
    torch.save({"policy": policy.state_dict(), "opt": opt.state_dict(),
                "ref": None if ref is None else ref.state_dict(), "state": dict(state)}, tmp)
    os.replace(tmp, ckpt_path)
    if config is not None and config.eval.keep_checkpoints:
        keep = kept_checkpoint(ckpt_path, state["step"])
        tmp = layout.temp_name(keep)
        torch.save({"policy": policy.state_dict(), "state": dict(state)}, tmp)
        os.replace(tmp, keep)


def _bar(total: int, start: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="rl", unit="step", dynamic_ncols=True)
