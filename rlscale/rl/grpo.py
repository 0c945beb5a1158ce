"""GRPO-family RL math as small pure functions over tensors.

Shapes: P prompts, G samples per prompt, N = P*G sequences, T response positions. ``mask``
(N, T) is 1.0 on real response tokens. A recipe (recipes.py) is a choice of one function or
value per slot; the runner composes them, so no function re-derives another's normaliser.

References: GRPO — Shao et al. 2024 (DeepSeekMath, arXiv 2402.03300); PPO clipping —
Schulman et al. 2017; clip-higher, token-mean, dynamic sampling — Yu et al. 2025 (DAPO, arXiv
2503.14476); CISPO — MiniMax 2025 (MiniMax-M1, arXiv 2506.13585); constant normaliser and no std
— Liu et al. 2025 (Dr. GRPO, arXiv 2503.20783); batch-level advantage normalisation,
prompt-level aggregation, zero-variance filtering, FP32 logits — Khatri et al. 2025 (ScaleRL,
arXiv 2510.13786); k3 KL estimator — Schulman 2020, "Approximating KL divergence".
"""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, *, norm: str, eps: float = 1e-6) -> torch.Tensor:
    """Advantages (P, G): reward minus its group mean, divided by a standard deviation.

    ``norm``: 'group' divides by each group's std (GRPO), 'batch' by the std of all centred
    advantages in the batch (ScaleRL), 'none' not at all (Dr. GRPO). Population std (ddof 0).
    """
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if norm == "group":
        return centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + eps)
    if norm == "batch":
        return centred / (centred.std(unbiased=False) + eps)
    if norm == "none":
        return centred
    msg = f"adv norm must be 'group', 'batch' or 'none', got {norm!r}"
    raise ValueError(msg)


def zero_variance(rewards: torch.Tensor) -> torch.Tensor:
    """(P,) bool: groups whose rewards are all equal (they carry no GRPO signal)."""
    return (rewards == rewards[:, :1]).all(dim=1)


def ppo_token_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, *,
                   clip_low: float, clip_high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped surrogate per token, to minimise: -min(r*A, clip(r, 1-lo, 1+hi)*A).

    ``adv`` is (N, 1) or (N, T). Asymmetric bounds give DAPO's clip-higher. Returns (loss (N, T),
    clipped (N, T) bool: tokens whose gradient the clip removed).
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped_ratio = ratio.clamp(1 - clip_low, 1 + clip_high)
    loss = -torch.minimum(unclipped, clipped_ratio * adv)
    was_clipped = (clipped_ratio * adv) < unclipped
    return loss, was_clipped


def cispo_token_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, *,
                     clip_high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """CISPO per token, to minimise: -sg(min(r, 1+hi)) * A * log pi.

    The importance weight is truncated and detached, so every token keeps a gradient (none is
    clipped away, unlike PPO). Returns (loss (N, T), truncated (N, T) bool).
    """
    ratio = torch.exp(logp - old_logp).detach()
    weight = ratio.clamp(max=1 + clip_high)
    return -(weight * adv * logp), ratio > 1 + clip_high


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || ref): exp(ref - logp) - (ref - logp) - 1, always >= 0."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def aggregate(token_loss: torch.Tensor, mask: torch.Tensor, *, mode: str, group_size: int,
              max_len: int) -> torch.Tensor:
    """Reduce (N, T) token losses to a scalar.

    'token-mean': sum / number of tokens in the batch (DAPO). 'seq-mean': mean over sequences of
    each sequence's token mean (GRPO). 'prompt-mean': mean over prompts of the token mean of the
    prompt's group (ScaleRL). 'constant': sum / (N * max_len), a length-free constant (Dr. GRPO).
    """
    masked = token_loss * mask
    if mode == "token-mean":
        return masked.sum() / mask.sum().clamp(min=1)
    if mode == "seq-mean":
        return (masked.sum(1) / mask.sum(1).clamp(min=1)).mean()
    if mode == "prompt-mean":
        per_prompt = masked.sum(1).view(-1, group_size).sum(1)
        tokens = mask.sum(1).view(-1, group_size).sum(1).clamp(min=1)
        return (per_prompt / tokens).mean()
    if mode == "constant":
        return masked.sum() / (mask.shape[0] * max_len)
    msg = f"loss aggregation must be token-mean, seq-mean, prompt-mean or constant, got {mode!r}"
    raise ValueError(msg)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log pi(target) per position: logits (N, T, V), targets (N, T) -> (N, T), in fp32."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None]).squeeze(-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the next-token distribution per position: (N, T, V) -> (N, T)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
