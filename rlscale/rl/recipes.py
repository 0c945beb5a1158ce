"""Named RL recipes: presets for the knobs of :class:`~rlscale.rl.config.RLConfig`.

A knob set explicitly in the config wins over the preset; :func:`resolve` fills the rest.
Every preset here departs from its paper in the same ways, listed once: tiny models trained from
scratch on arith-graph, a 0/1 reward for a fully verified solution, fresh synthetic prompts
every step (no epochs over a fixed prompt set), synchronous on-policy generation (no inference
engine, no asynchrony), a constant learning rate, and no entropy bonus.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rlscale.rl.config import RLConfig

KNOBS = ("edge_filter", "zero_var_filter", "adv_norm", "loss_agg", "objective", "clip_low",
         "clip_high", "kl_coef", "fp32_logits")


def grpo() -> dict[str, Any]:
    """GRPO as in DeepSeekMath (Shao et al. 2024, arXiv 2402.03300).

    Group-std advantages, per-sequence mean then batch mean, symmetric PPO clip 0.2, k3 KL to the
    reference with beta 0.04. Departures: outcome reward only (no process supervision), the
    reference is the pretrained base (optionally reset with ``ref_reset_every``), no iterative
    reward-model updates.
    """
    return dict(edge_filter=False, zero_var_filter=False, adv_norm="group", loss_agg="seq-mean",
                objective="ppo", clip_low=0.2, clip_high=0.2, kl_coef=0.04, fp32_logits=False)


def dapo() -> dict[str, Any]:
    """DAPO (Yu et al. 2025, arXiv 2503.14476).

    Clip-higher (eps_low 0.2, eps_high 0.28), token-level loss, no KL, dynamic sampling (keep
    only groups whose pass rate is strictly between 0 and 1, resampling to refill the batch).
    Departures: no overlong reward shaping (responses are short and cut at ``max_new_tokens``);
    dynamic sampling gives up after 4 draws and keeps a smaller batch instead of waiting.
    """
    return dict(edge_filter=True, zero_var_filter=True, adv_norm="group", loss_agg="token-mean",
                objective="ppo", clip_low=0.2, clip_high=0.28, kl_coef=0.0, fp32_logits=False)


def cispo() -> dict[str, Any]:
    """CISPO (MiniMax-M1, MiniMax 2025, arXiv 2506.13585).

    Truncated, detached importance weights (no token's gradient is clipped away), token-level
    loss, group-normalised advantages, no KL. Departures: upper truncation eps_high = 0.28 (the
    paper tunes it; it sets no lower bound, nor do we).
    """
    return dict(edge_filter=False, zero_var_filter=False, adv_norm="group", loss_agg="token-mean",
                objective="cispo", clip_low=0.2, clip_high=0.28, kl_coef=0.0, fp32_logits=False)


def scalerl() -> dict[str, Any]:
    """ScaleRL (Khatri et al. 2025, "The Art of Scaling RL Compute", arXiv 2510.13786).

    CISPO loss, prompt-level loss averaging, batch-level advantage normalisation, FP32 logits at
    the LM head, zero-variance filtering, no KL. Departures: no PipelineRL asynchrony
    (generation is synchronous), no forced length interruptions, and no-positive-resampling is
    replaced by nothing (prompts are fresh each step, so there is no history to filter on).
    """
    return dict(edge_filter=False, zero_var_filter=True, adv_norm="batch", loss_agg="prompt-mean",
                objective="cispo", clip_low=0.2, clip_high=0.28, kl_coef=0.0, fp32_logits=True)


def drgrpo() -> dict[str, Any]:
    """Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training", arXiv 2503.20783).

    No std normalisation, a constant normaliser (sum / (N * max_new_tokens)), PPO clip 0.2, no
    KL. Departures: none beyond the shared ones.
    """
    return dict(edge_filter=False, zero_var_filter=False, adv_norm="none", loss_agg="constant",
                objective="ppo", clip_low=0.2, clip_high=0.2, kl_coef=0.0, fp32_logits=False)


RECIPES = {"grpo": grpo, "dapo": dapo, "cispo": cispo, "scalerl": scalerl, "drgrpo": drgrpo}


def resolve(rl: RLConfig) -> RLConfig:
    """A copy of ``rl`` with every knob left as None filled from its recipe's preset."""
    preset = RECIPES[rl.recipe]()
    return replace(rl, **{k: v for k, v in preset.items() if getattr(rl, k) is None})
