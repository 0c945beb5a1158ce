"""One RL step: sample prompts, roll out groups, filter, compute advantages, update.

Reads top to bottom as the recipe composes the pure functions of grpo.py; returns the step's
``train/...`` metrics and the FLOPs and tokens it spent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from rlscale.rl import grpo
from rlscale.rl.config import RLConfig, TaskConfig
from rlscale.rl.decode import pad_left
from rlscale.rl.model import Transformer
from rlscale.rl.rollout import Rollout, forward_flops, rollout, sequence_logprobs
from rlscale.rl.tasks import BOS, EOS, FORMATS, PAD, Problem, encode, sample_problems

MAX_EDGE_DRAWS = 4  # dynamic sampling gives up after this many draws per step


@dataclass
class StepResult:
    metrics: dict[str, float]
    flops: int  # generation + old/ref log-probs + training forward and backward
    tokens: int  # sampled response tokens


def draw(policy: Transformer, rl: RLConfig, task: TaskConfig, *, seed: int, step: int,
         generator: torch.Generator) -> tuple[Rollout, list[Rollout]]:
    """The step's rollout (edge-of-competence filtered if asked) and every rollout drawn."""
    drawn, kept = [], []
    for attempt in range(MAX_EDGE_DRAWS if rl.edge_filter else 1):
        problems = sample_problems(f"rl/{seed}/{step}/{attempt}", rl.prompts_per_step,
                                   ops_min=rl.ops_min, ops_max=rl.ops_max, split="train",
                                   **task.problem_kwargs())
        ro = rollout(policy, problems, group_size=rl.group_size, max_new_tokens=rl.max_new_tokens,
                     generator=generator, precision=rl.precision,
                     verified_only=task.verified_only)
        drawn.append(ro)
        if not rl.edge_filter:
            return ro, drawn
        rate = ro.rewards.mean(1)
        kept.append(ro.select((rate > 0) & (rate < 1)))
        if sum(len(k.problems) for k in kept) >= rl.prompts_per_step:
            break
    return _concat(kept, rl.prompts_per_step), drawn


def _concat(parts: list[Rollout], limit: int) -> Rollout:
    keep_rows: list[Rollout] = []
    n = 0
    for part in parts:
        if n >= limit or not part.problems:
            continue
        take = min(limit - n, len(part.problems))
        mask = torch.zeros(len(part.problems), dtype=torch.bool)
        mask[:take] = True
        keep_rows.append(part.select(mask))
        n += take
    if not keep_rows:
        return parts[0]  # empty selection; has no problems
    Lp = max(r.prompt_ids.shape[1] for r in keep_rows)
    R = max(r.response_ids.shape[1] for r in keep_rows)

    def lpad(t: torch.Tensor, width: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (width - t.shape[1], 0))

    def rpad(t: torch.Tensor, width: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]))

    return Rollout(
        [p for r in keep_rows for p in r.problems], keep_rows[0].group_size,
        torch.cat([lpad(r.prompt_ids, Lp) for r in keep_rows]),
        torch.cat([lpad(r.prompt_valid, Lp) for r in keep_rows]),
        torch.cat([rpad(r.response_ids, R) for r in keep_rows]),
        torch.cat([rpad(r.response_mask, R) for r in keep_rows]),
        [t for r in keep_rows for t in r.texts], torch.cat([r.rewards for r in keep_rows]),
        [f for r in keep_rows for f in r.formats], keep_rows[0].gen_flops,
        [x for r in keep_rows for x in r.prompt_lens], [x for r in keep_rows for x in r.response_lens])


def rl_step(policy: Transformer, ref: Transformer | None, opt: torch.optim.Optimizer,
            rl: RLConfig, task: TaskConfig, *, seed: int, step: int) -> StepResult:
    """One GRPO-family step; ``rl``'s knobs are its recipe's, overridden where it says so.
    ``rl.trainer`` sft / rft: a supervised control step instead (:func:`nll_step`)."""
    if rl.trainer != "rl":
        return nll_step(policy, opt, rl, task, seed=seed, step=step)
    cfg = policy.cfg
    policy.fp32_logits = rl.fp32_logits
    if ref is not None:  # the same head precision, or the KL would be non-zero at equal weights
        ref.fp32_logits = policy.fp32_logits
    gen = torch.Generator(device=next(policy.parameters()).device).manual_seed(
        (seed * 1_000_003 + step) % 2**63)
    batch, drawn = draw(policy, rl, task, seed=seed, step=step, generator=gen)
    flops = sum(sum(d.gen_flops.values()) for d in drawn)
    tokens = sum(d.n_tokens for d in drawn)
    first = drawn[0]
    m: dict[str, float] = {
        "train/reward": first.rewards.mean().item(),
        "train/zero_var_frac": grpo.zero_variance(first.rewards).float().mean().item(),
        "train/response_len": sum(first.response_lens) / len(first.response_lens),
    }
    counts = Counter(first.formats)
    for fmt in (*FORMATS, "other"):
        m[f"train/format_share/{fmt}"] = counts[fmt] / len(first.formats)
    if rl.edge_filter:
        m["train/kept_prompts"] = float(len(batch.problems))
    if rl.zero_var_filter and batch.problems:
        batch = batch.select(~grpo.zero_variance(batch.rewards))
    m["train/trained_prompts"] = float(len(batch.problems))
    if not batch.problems:
        return StepResult(m, flops, tokens)
    adv = grpo.group_advantages(batch.rewards, norm=rl.adv_norm).reshape(-1, 1)
    fwd = forward_flops(cfg, batch)
    with torch.inference_mode():  # no autograd bookkeeping at all
        old_logp = (sequence_logprobs(policy, batch, precision=rl.precision)[0]
                    if rl.minibatches > 1 else None)
        ref_logp = (sequence_logprobs(ref, batch, precision=rl.precision)[0]
                    if (rl.kl_coef and ref is not None) else None)
    # clone() outside inference mode gives normal tensors (the loss may save them for backward)
    old_logp, ref_logp = (None if t is None else t.clone() for t in (old_logp, ref_logp))
    flops += fwd * ((old_logp is not None) + (ref_logp is not None))
    sums: Counter[str] = Counter()
    P = len(batch.problems)
    chunks = [c for c in torch.arange(P).chunk(rl.minibatches) if len(c)]
    for idx in chunks:
        rows = (idx[:, None] * rl.group_size + torch.arange(rl.group_size)).reshape(-1)
        keep = torch.zeros(P, dtype=torch.bool)
        keep[idx] = True
        mb = batch.select(keep)
        logp, ent = sequence_logprobs(policy, mb, with_entropy=True, precision=rl.precision)
        old = logp.detach() if old_logp is None else old_logp[rows]
        a = adv[rows.to(adv.device)]
        if rl.objective == "ppo":
            tok, clipped = grpo.ppo_token_loss(logp, old, a, clip_low=rl.clip_low, clip_high=rl.clip_high)
        else:
            tok, clipped = grpo.cispo_token_loss(logp, old, a, clip_high=rl.clip_high)
        mask = mb.response_mask
        agg = dict(mode=rl.loss_agg, group_size=rl.group_size, max_len=rl.max_new_tokens)
        loss = grpo.aggregate(tok, mask, **agg)
        if ref_logp is not None:
            kl = grpo.kl_k3(logp, ref_logp[rows])
            loss = loss + rl.kl_coef * grpo.aggregate(kl, mask, **agg)
            sums["kl"] += (kl.detach() * mask).sum().item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        flops += 3 * forward_flops(cfg, mb)
        n_tok = mask.sum().item()
        sums["tokens"] += n_tok
        sums["loss"] += loss.item() * n_tok
        sums["entropy"] += (ent * mask).sum().item()
        sums["clip"] += (clipped.float() * mask).sum().item()
        sums["ratio_dev"] += (((logp.detach() - old).exp() - 1).abs() * mask).sum().item()
        for role in ("plan", "exec"):
            rmask = torch.tensor([[r == role for r in row] for row in mb.roles()],
                                 dtype=mask.dtype, device=mask.device) * mask
            sums[f"{role}_tokens"] += rmask.sum().item()
            sums[f"{role}_entropy"] += (ent * rmask).sum().item()
    n = max(sums["tokens"], 1)
    m["train/loss"] = sums["loss"] / n
    m["train/entropy"] = sums["entropy"] / n
    m["train/clip_frac"] = sums["clip"] / n  # ppo: clipped share; cispo: truncated share
    m["train/ratio_dev"] = sums["ratio_dev"] / n  # token mean of |ratio - 1|; 0 when on-policy
    if ref_logp is not None:
        m["train/kl"] = sums["kl"] / n
    for role in ("plan", "exec"):
        if sums[f"{role}_tokens"]:
            m[f"train/entropy/{role}"] = sums[f"{role}_entropy"] / sums[f"{role}_tokens"]
    return StepResult(m, flops, tokens)


def gold_rollout(problems: list[Problem], *, device: torch.device | str) -> Rollout:
    """A one-sample-per-prompt :class:`Rollout` whose responses are the gold worked solutions
    (``Problem.solution("worked")`` + EOS), reward 1: what the sft trainer fits."""
    prompts = [[BOS, *encode(p.prompt())] for p in problems]
    responses = [[*encode(p.solution("worked")), EOS] for p in problems]
    ids, valid = pad_left(prompts, device=device)
    R = max(len(r) for r in responses)
    resp = torch.full((len(problems), R), PAD, dtype=torch.long, device=device)
    mask = torch.zeros(len(problems), R, device=device)
    for i, r in enumerate(responses):
        resp[i, :len(r)] = torch.tensor(r, device=device)
        mask[i, :len(r)] = 1.0
    texts = [p.solution("worked") for p in problems]
    return Rollout(list(problems), 1, ids, valid, resp, mask, texts,
                   torch.ones(len(problems), 1, device=device), ["worked"] * len(problems),
                   {"prefill": 0, "decode": 0}, [len(p) for p in prompts],
                   [len(r) for r in responses])


def nll_step(policy: Transformer, opt: torch.optim.Optimizer, rl: RLConfig, task: TaskConfig, *,
             seed: int, step: int) -> StepResult:
    """One supervised control step on the RL step's own prompts (the same draw as :func:`draw`).

    ``sft``: token-mean NLL of each prompt's gold worked solution (no sampling).
    ``rft``: sample ``group_size`` responses per prompt as RL does, keep the verified-correct
    ones (reward 1) and take the token-mean NLL of those; a step with none makes no update.
    Gradient clipping at 1.0 and the optimiser are the RL step's."""
    cfg = policy.cfg
    device = next(policy.parameters()).device
    gen = torch.Generator(device=device).manual_seed((seed * 1_000_003 + step) % 2**63)
    m: dict[str, float] = {}
    if rl.trainer == "sft":
        problems = sample_problems(f"rl/{seed}/{step}/0", rl.prompts_per_step, ops_min=rl.ops_min,
                                   ops_max=rl.ops_max, split="train", **task.problem_kwargs())
        batch, flops, tokens = gold_rollout(problems, device=device), 0, 0
        weight = batch.response_mask
    else:
        batch, drawn = draw(policy, rl, task, seed=seed, step=step, generator=gen)
        flops, tokens = sum(sum(d.gen_flops.values()) for d in drawn), batch.n_tokens
        m["train/reward"] = batch.rewards.mean().item()
        m["train/response_len"] = sum(batch.response_lens) / len(batch.response_lens)
        weight = batch.response_mask * batch.rewards.reshape(-1, 1)
    n_tok = weight.sum().item()
    m["train/trained_tokens"] = float(n_tok)
    if n_tok == 0:
        return StepResult(m, flops, tokens)
    policy.fp32_logits = rl.fp32_logits
    logp, ent = sequence_logprobs(policy, batch, with_entropy=True, precision=rl.precision)
    loss = -(logp * weight).sum() / n_tok
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
    flops += 3 * forward_flops(cfg, batch)
    m["train/loss"] = loss.item()
    m["train/entropy"] = ((ent * weight).sum() / n_tok).item()
    return StepResult(m, flops, tokens)
