"""Exact FLOP counts of what the RL jobs run, from the model's shapes.

A FLOP here is one multiply or one add of a matrix product (a multiply-add counts 2), the
convention of Kaplan et al. 2020 and Chinchilla; norms, softmax, RoPE and the optimiser are left
out (each under 1% at these sizes). Counts are per real token: padding a batch does not add
FLOPs, so numbers do not depend on batch layout. For one token attending to ``n_ctx`` keys:

    linear    = 2 * (L * (3d^2 + d^2 + 2 * d * d_ff) + d * V)    (QKV, out-proj, MLP, LM head)
    attention = 2 * 2 * L * d * n_ctx                              (q.k scores and weights.v)

A forward pass over a sequence of T tokens (causal) costs ``T*linear + 4*L*d*T(T+1)/2``; the
backward pass costs twice the forward. The samples of a group share their prompt, and the jobs
compute it once per group: generation = one prefill over the prompt (LM head on its last
position only) plus one decode step per sampled token but the last; a log-prob pass = the same
prompt pass plus each response after it. This module does not import torch.
"""

from __future__ import annotations

import statistics

from rlscale.rl.config import JobConfig, ModelConfig
from rlscale.rl.tasks import VOCAB_SIZE, sample_problems

# Rough sustained rates, used only by estimate_job to guess device-hours before a run: on this
# project's 2-core CPU machines with the default bf16 precision, pretraining the default base ran
# at 2.2e11 counted FLOP/s and its RL job at 9.1e10 (8.3e12 counted FLOPs in 91 s of RL steps,
# prompts counted once per group), 8.3e10 with evaluation (125 s in all); a conservative figure
# for one datacenter GPU at these tiny sizes.
NOMINAL_FLOPS_PER_S = {"cpu": 8e10, "cuda": 5e12}


def linear_flops(cfg: ModelConfig, *, vocab_size: int = VOCAB_SIZE) -> int:
    """FLOPs of the weight matrices for one token (independent of context)."""
    d, L, ff = cfg.d_model, cfg.n_layers, cfg.ff_mult * cfg.d_model
    return 2 * (L * (4 * d * d + 2 * d * ff) + d * vocab_size)


def attention_flops(cfg: ModelConfig, n_ctx: int) -> int:
    """FLOPs of attention for one query over ``n_ctx`` keys (all layers)."""
    return 4 * cfg.n_layers * cfg.d_model * n_ctx


def forward_flops(cfg: ModelConfig, n_tokens: int, *, context: int = 0) -> int:
    """Forward over ``n_tokens`` new tokens that follow ``context`` cached ones (causal)."""
    T = n_tokens
    keys = T * context + T * (T + 1) // 2  # token i attends to context + i + 1 keys
    return T * linear_flops(cfg) + 4 * cfg.n_layers * cfg.d_model * keys


def head_flops(cfg: ModelConfig, *, vocab_size: int = VOCAB_SIZE) -> int:
    """FLOPs of the LM head for one token (part of :func:`linear_flops`)."""
    return 2 * cfg.d_model * vocab_size


def prefill_flops(cfg: ModelConfig, prompt_len: int) -> int:
    """A prompt's forward with the LM head on its last position only (the only logits used)."""
    return forward_flops(cfg, prompt_len) - (prompt_len - 1) * head_flops(cfg)


def group_generation_flops(cfg: ModelConfig, prompt_len: int, response_lens: list[int]) -> dict[str, int]:
    """{'prefill', 'decode'} FLOPs to sample a group of responses of ``response_lens`` tokens
    after one prompt: the prompt once (its cache is shared), then one decode step per sampled
    token but the last of each response, attending to the prompt and the tokens before it."""
    decode = sum(forward_flops(cfg, 1, context=prompt_len + j) for n in response_lens for j in range(n - 1))
    return {"prefill": prefill_flops(cfg, prompt_len), "decode": decode}


def generation_flops(cfg: ModelConfig, prompt_len: int, response_len: int) -> dict[str, int]:
    """{'prefill', 'decode'} FLOPs to sample ``response_len`` tokens after a prompt."""
    return group_generation_flops(cfg, prompt_len, [response_len])


def group_forward_flops(cfg: ModelConfig, prompt_len: int, response_lens: list[int]) -> int:
    """One log-prob forward over a group (rollout.sequence_logprobs): the prompt once, then
    each response minus its last token (whose next token is not scored) after it. A backward
    pass costs twice this."""
    return prefill_flops(cfg, prompt_len) + sum(forward_flops(cfg, n - 1, context=prompt_len)
                                                for n in response_lens)


def estimate_job(config: JobConfig, *, include_pretrain: bool = True) -> dict[str, float]:
    """Estimated FLOPs and device-hours of a job before running it (for ``--dry-run``).

    Uses mean prompt/solution lengths of RL problems (assuming worked solutions, the longest
    format) and :data:`NOMINAL_FLOPS_PER_S`. Returns ``flops`` (total), ``rl_flops``,
    ``eval_flops``, ``pretrain_flops`` (0 when ``include_pretrain`` is false) and
    ``device_hours``.
    """
    cfg = config.model
    rl = config.rl
    probs = sample_problems(0, 64, ops_min=rl.ops_min, ops_max=rl.ops_max, split="train",
                            **config.task.problem_kwargs())
    P = round(statistics.mean(len(p.prompt()) + 1 for p in probs))
    N = round(statistics.mean(len(p.solution("worked")) + 1 for p in probs))
    gen = sum(group_generation_flops(cfg, P, [N] * rl.group_size).values())
    fwd = group_forward_flops(cfg, P, [N] * rl.group_size)
    passes = 3 + (1 if rl.kl_coef > 0 else 0) + (1 if rl.minibatches > 1 else 0)
    per_group = gen + passes * fwd
    rl_flops = float(rl.steps * rl.prompts_per_step * per_group)
    ev = config.eval
    eval_problems = sample_problems(0, 64, ops_min=ev.ops_min, ops_max=ev.ops_max, split="train",
                                    **config.task.problem_kwargs())
    eP = round(statistics.mean(len(p.prompt()) + 1 for p in eval_problems))
    eN = round(statistics.mean(len(p.solution("worked")) + 1 for p in eval_problems))
    n_evals = rl.steps // ev.every + 1
    n_eval_problems = (ev.ops_max - ev.ops_min + 1) * ev.problems
    eval_flops = float(n_evals * n_eval_problems
                       * sum(group_generation_flops(cfg, eP, [eN] * ev.samples).values()))
    pre = 0.0
    if include_pretrain:
        # pretraining: forward + backward over every token, sequences ~ as long as RL ones
        pre = float(config.pretrain.tokens * 3 * forward_flops(cfg, P + N) / (P + N))
    total = rl_flops + eval_flops + pre
    device = "cuda" if config.device == "cuda" else "cpu"
    return {
        "flops": total,
        "rl_flops": rl_flops,
        "eval_flops": eval_flops,
        "pretrain_flops": pre,
        "device_hours": total / NOMINAL_FLOPS_PER_S[device] / 3600,
    }
