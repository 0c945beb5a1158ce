"""Pretraining a base model on arith-graph, and the cache of pretrained bases.

The dials: how much (``pretrain.tokens``, counted as non-pad tokens fed to the model), which
difficulties (``ops_min``..``ops_max``, uniform), how dense the problems beyond that range are
(``hard_share`` of them from ``ops_max+1``..``ops_max+hard_ops``, uniform: the density dial that
leaves an edge of competence) and which solution formats in what mix
(``mix_worked`` / ``mix_compact`` / ``mix_direct``). The loss is next-token cross-entropy on
solution tokens only (the prompt is context). AdamW, linear warm-up, cosine decay to 10%.

A base is identified by :func:`~rlscale.rl.config.base_hash` (task + model + pretrain config)
and looked up, in order, in the bases shipped with the package (``rlscale/data/bases/``) and in
the cache (``$RLSCALE_CACHE/bases/``, default ``~/.cache/rlscale/bases/``). Each base directory
holds ``model.pt`` (state dict) and ``base.json`` (config, tokens, FLOPs, wall time, sha256).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rlscale.errors import RLScaleError
from rlscale.rl.config import JobConfig, base_hash
from rlscale.rl.flops import forward_flops
from rlscale.rl.model import Transformer, autocast
from rlscale.rl.tasks import BOS, EOS, FORMATS, PAD, encode, sample_problems

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "bases"


def cache_root() -> Path:
    """``$RLSCALE_CACHE/bases`` (default ``~/.cache/rlscale/bases``)."""
    root = os.environ.get("RLSCALE_CACHE") or Path.home() / ".cache" / "rlscale"
    return Path(root) / "bases"


def find_base(config: JobConfig) -> Path | None:
    """Directory of the cached or shipped base for ``config``, or None."""
    h = base_hash(config)
    for root in (SHIPPED, cache_root()):
        d = root / h
        if (d / "base.json").is_file() and (d / "model.pt").is_file():
            return d
    return None


def load_base(path: Path, config: JobConfig, device: str = "cpu") -> tuple[Transformer, dict]:
    """Load a base model and its ``base.json``; check the weights' sha256."""
    info = json.loads((path / "base.json").read_text())
    digest = hashlib.sha256((path / "model.pt").read_bytes()).hexdigest()
    if digest != info["sha256"]:
        msg = f"base {path} is corrupt: model.pt sha256 {digest[:12]} != {info['sha256'][:12]}"
        raise RLScaleError(msg)
    model = Transformer(config.model)
    model.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
    return model.to(device), info


def get_base(config: JobConfig, *, device: str = "cpu", progress: bool = True,
             force: bool = False) -> tuple[Transformer, dict]:
    """The pretrained base for ``config``: from a shipped/cached copy, else trained and cached.

    Training holds a lock file per base (``$RLSCALE_CACHE/locks/<hash>.lock``), so two
    processes that need the same new base (two sweeps, or a sweep and ``rlscale pretrain``)
    train it once: the second waits, then finds the first one's copy."""
    found = None if force else find_base(config)
    if found is None:
        from filelock import FileLock

        locks = cache_root().parent / "locks"  # beside bases/, which holds only bases
        locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(locks / f"{base_hash(config)}.lock")):
            found = None if force else find_base(config)  # trained while this one waited?
            if found is None:
                found = pretrain(config, device=device, progress=progress)
    return load_base(found, config, device)


def encode_example(prompt: str, response: str) -> tuple[list[int], int]:
    """Token ids ``BOS prompt response EOS`` and the index where the response starts."""
    p = [BOS, *encode(prompt)]
    return p + encode(response) + [EOS], len(p)


def pretrain_problems(config: JobConfig, chunk: int, n: int, hard_rng: random.Random) -> list:
    """The ``chunk``-th pool of ``n`` pretraining problems: difficulties uniform in
    ``ops_min..ops_max``, each replaced with chance ``hard_share`` (drawn from ``hard_rng``, a
    stream of its own, so a share of 0 leaves the pools as they were) by one from
    ``ops_max+1..ops_max+hard_ops``."""
    pc, tc = config.pretrain, config.task
    problems = sample_problems(f"pretrain/{pc.seed}/{chunk}", n, ops_min=pc.ops_min,
                               ops_max=pc.ops_max, split="train", **tc.problem_kwargs())
    if pc.hard_share > 0:
        slots = [i for i in range(n) if hard_rng.random() < pc.hard_share]
        hard = sample_problems(f"pretrain/{pc.seed}/{chunk}/hard", len(slots),
                               ops_min=pc.ops_max + 1, ops_max=pc.ops_max + pc.hard_ops,
                               split="train", **tc.problem_kwargs())
        for i, p in zip(slots, hard):
            problems[i] = p
    return problems


def batches(config: JobConfig, *, pool: int = 16):
    """Endless (tokens (B,T), loss_mask (B,T), n_real_tokens) batches, length-bucketed."""
    pc = config.pretrain
    weights = [pc.mix_worked, pc.mix_compact, pc.mix_direct]
    rng = random.Random(f"pretrain/{pc.seed}")
    hard_rng = random.Random(f"pretrain/{pc.seed}/hard")
    chunk = 0
    while True:
        problems = pretrain_problems(config, chunk, pool * pc.batch_size, hard_rng)
        chunk += 1
        examples = [encode_example(p.prompt(), p.solution(rng.choices(FORMATS, weights)[0]))
                    for p in problems]
        examples.sort(key=lambda e: len(e[0]))
        groups = [examples[i:i + pc.batch_size] for i in range(0, len(examples), pc.batch_size)]
        rng.shuffle(groups)
        for group in groups:
            T = max(len(ids) for ids, _ in group)
            tokens = torch.full((len(group), T), PAD, dtype=torch.long)
            mask = torch.zeros((len(group), T))
            for i, (ids, start) in enumerate(group):
                tokens[i, :len(ids)] = torch.tensor(ids)
                mask[i, start:len(ids)] = 1.0  # targets: response tokens and EOS
            yield tokens, mask, sum(len(ids) for ids, _ in group)


def train_step(model: Transformer, opt: torch.optim.Optimizer, tokens: torch.Tensor,
               mask: torch.Tensor, *, device: str, precision: str) -> torch.Tensor:
    """One optimiser step of next-token cross-entropy on the ``mask``-ed targets; the loss."""
    with autocast(device, precision):
        logits = model(tokens[:, :-1])  # the LM head stays fp32 (model.fp32_logits)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                         reduction="none").view_as(mask[:, 1:])
    loss = (ce * mask[:, 1:]).sum() / mask[:, 1:].sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.detach()


def pretrain(config: JobConfig, *, device: str = "cpu", progress: bool = True) -> Path:
    """Train the base for ``config`` and write it to the cache; return its directory."""
    pc = config.pretrain
    torch.manual_seed(pc.seed)
    model = Transformer(config.model).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": pc.weight_decay},
                             {"params": other, "weight_decay": 0.0}], lr=pc.lr, betas=(0.9, 0.95))
    bar = _bar(pc.tokens, progress, "pretrain")
    seen, flops, step, losses = 0, 0, 0, []
    t0 = time.perf_counter()
    for tokens, mask, n_real in batches(config):
        if seen >= pc.tokens:
            break
        frac = seen / pc.tokens
        lr = pc.lr * (min(1.0, frac / pc.warmup_frac) if frac < pc.warmup_frac
                      else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = train_step(model, opt, tokens.to(device), mask.to(device), device=device,
                          precision=pc.precision)
        seen += n_real
        flops += 3 * sum(forward_flops(config.model, int(n)) for n in (tokens != PAD).sum(1) - 1)
        losses.append(loss.item())
        step += 1
        if bar is not None:
            bar.update(n_real)
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}", refresh=False)
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0
    info = {"hash": base_hash(config), "task": asdict(config.task), "model": asdict(config.model),
            "pretrain": asdict(pc), "tokens": seen, "steps": step, "flops": flops,
            "wall_s": wall, "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])),
            "n_params": model.n_params(), "device": str(device), "threads": torch.get_num_threads()}
    return _save_base(model, info)


def _save_base(model: Transformer, info: dict[str, Any]) -> Path:
    final = cache_root() / info["hash"]
    tmp = cache_root() / f".tmp-{info['hash']}-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, tmp / "model.pt")
    info["sha256"] = hashlib.sha256((tmp / "model.pt").read_bytes()).hexdigest()
    (tmp / "base.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    if final.exists():  # another process finished the same base first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def _bar(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tok", unit_scale=True, dynamic_ncols=True)
