"""Held-out evaluation: mean@k and unbiased pass@k per difficulty.

mean@k (ScaleRL's validation metric) is the mean reward over k samples per problem, averaged
over problems. pass@k is the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374, Eq. 1)
from n >= k samples with c correct: 1 - C(n-c, k) / C(n, k).
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from rlscale.rl.config import JobConfig
from rlscale.rl.model import Transformer
from rlscale.rl.rollout import rollout
from rlscale.rl.tasks import FORMATS, Problem, sample_problems


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (1 <= k <= n)."""
    if not 1 <= k <= n or not 0 <= c <= n:
        msg = f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}"
        raise ValueError(msg)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def ks_for(samples: int) -> list[int]:
    """k values reported: powers of two below ``samples``, and ``samples`` itself."""
    ks = [1 << i for i in range(samples.bit_length()) if 1 << i < samples]
    return ks + [samples]


def eval_problems(config: JobConfig) -> dict[int, list[Problem]]:
    """The held-out problems per difficulty (the same for every run with this task config)."""
    t, e = config.task, config.eval
    return {
        ops: sample_problems(f"eval/{t.eval_seed}/ops={ops}", e.problems, ops_min=ops, ops_max=ops,
                             split="eval", **t.problem_kwargs())
        for ops in range(e.ops_min, e.ops_max + 1)
    }


def evaluate(model: Transformer, problems: dict[int, list[Problem]], *, samples: int,
             max_new_tokens: int, generator: torch.Generator, temperature: float = 1.0,
             precision: str = "auto", verified_only: bool = False
             ) -> tuple[dict[str, float], int]:
    """Metrics ``eval/...`` (overall and ``eval/ops=D/...``) and the FLOPs the sampling took.
    Rewards as the task gives them (``verified_only``: checked work only)."""
    metrics: dict[str, float] = {}
    flat = [p for ops in sorted(problems) for p in problems[ops]]
    ro = rollout(model, flat, group_size=samples, max_new_tokens=max_new_tokens,
                 generator=generator, temperature=temperature, precision=precision,
                 verified_only=verified_only)
    correct = ro.rewards.sum(1).round().long().tolist()
    ks = ks_for(samples)
    start = 0
    for ops in sorted(problems):
        c = correct[start:start + len(problems[ops])]
        start += len(problems[ops])
        metrics[f"eval/ops={ops}/mean@{samples}"] = sum(c) / (len(c) * samples)
        for k in ks:
            metrics[f"eval/ops={ops}/pass@{k}"] = sum(pass_at_k(samples, x, k) for x in c) / len(c)
    metrics[f"eval/mean@{samples}"] = sum(correct) / (len(correct) * samples)
    for k in ks:
        metrics[f"eval/pass@{k}"] = sum(pass_at_k(samples, x, k) for x in correct) / len(correct)
    counts = Counter(ro.formats)
    for fmt in (*FORMATS, "other"):
        metrics[f"eval/format_share/{fmt}"] = counts[fmt] / len(ro.formats)
    return metrics, sum(ro.gen_flops.values())
