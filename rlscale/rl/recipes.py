"""Named RL recipes: each a :class:`Recipe`, the values of the ten knobs a recipe fixes.

A job names its recipe (``rl.recipe``) and may override any of its knobs (``rl.kl_coef``):
:attr:`rlscale.rl.config.RLConfig.knobs` is the recipe with the job's overrides applied, and
``config.rl.kl_coef`` reads the knob from there. Every preset here departs from its paper in the
same ways, listed once: tiny models trained from scratch on arith-graph, a 0/1 reward for a fully
verified solution, fresh synthetic prompts every step (no epochs over a fixed prompt set),
synchronous on-policy generation (no inference engine, no asynchrony), a constant learning rate,
and no entropy bonus. This module does not import torch.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields, replace

if typing.TYPE_CHECKING:
    from rlscale.rl.config import RLConfig


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """The knobs a recipe fixes; a job's config may override each (``--set rl.kl_coef=0.01``)."""

    edge_filter: bool  # resample until kept prompts have pass rate strictly in (0,1)
    zero_var_filter: bool  # drop groups whose rewards are all equal from the loss
    adv_norm: str  # advantage std normalisation: group | batch | none
    loss_agg: str  # token-mean | seq-mean | prompt-mean | constant
    objective: str  # ppo (clipped ratio) | cispo (truncated IS weight, stop-grad)
    clip_low: float  # ratio clip below 1 - clip_low (ppo)
    clip_high: float  # ratio clip above 1 + clip_high (ppo and cispo)
    kl_coef: float  # k3 KL penalty to the reference policy (0 = no reference)
    fp32_logits: bool  # compute the LM head in fp32 under bf16 autocast
    minibatches: int = 1  # optimiser steps per rollout batch (>1: off-policy, ratios and clips act)


KNOBS = tuple(f.name for f in fields(Recipe))

# GRPO as in DeepSeekMath (Shao et al. 2024, arXiv 2402.03300).
# Group-std advantages, per-sequence mean then batch mean, symmetric PPO clip 0.2, k3 KL to the
# reference with beta 0.04. Departures: outcome reward only (no process supervision), the
# reference is the pretrained base (optionally reset with ``ref_reset_every``), no iterative
# reward-model updates. Update schedule: "a single update following each exploration stage"
# (mu = 1), so minibatches = 1: the ratio is 1 and the clip never acts, as in the paper.
GRPO = Recipe(edge_filter=False, zero_var_filter=False, adv_norm="group", loss_agg="seq-mean",
              objective="ppo", clip_low=0.2, clip_high=0.2, kl_coef=0.04, fp32_logits=False)

# DAPO (Yu et al. 2025, arXiv 2503.14476).
# Clip-higher (eps_low 0.2, eps_high 0.28), token-level loss, no KL, dynamic sampling (keep
# only groups whose pass rate is strictly between 0 and 1, resampling to refill the batch).
# Departures: no overlong reward shaping (responses are short and cut at ``max_new_tokens``);
# dynamic sampling gives up after 4 draws and keeps a smaller batch instead of waiting.
# Update schedule: 512 prompts x 16 responses per rollout, mini-batches of 512 responses, "16
# gradient updates for each rollout step"; scaled down to 4 minibatches (16 prompts a step: 16
# updates would leave one prompt's group per update).
DAPO = Recipe(edge_filter=True, zero_var_filter=True, adv_norm="group", loss_agg="token-mean",
              objective="ppo", clip_low=0.2, clip_high=0.28, kl_coef=0.0, fp32_logits=False,
              minibatches=4)

# CISPO (MiniMax-M1, MiniMax 2025, arXiv 2506.13585).
# Truncated, detached importance weights (no token's gradient is clipped away), token-level
# loss, group-normalised advantages, no KL. Departures: upper truncation eps_high = 0.28 (the
# paper tunes it; it sets no lower bound, nor do we: clip_low is unused by cispo).
# Update schedule: CISPO is motivated by tokens clipped away in the off-policy updates that follow
# the first on-policy one, i.e. several updates per rollout batch; the count was not found stated,
# so this follows DAPO's (its comparison baseline), scaled the same way: 4 minibatches.
CISPO = Recipe(edge_filter=False, zero_var_filter=False, adv_norm="group", loss_agg="token-mean",
               objective="cispo", clip_low=0.2, clip_high=0.28, kl_coef=0.0, fp32_logits=False,
               minibatches=4)

# ScaleRL (Khatri et al. 2025, "The Art of Scaling RL Compute", arXiv 2510.13786).
# CISPO loss, prompt-level loss averaging, batch-level advantage normalisation, FP32 logits at
# the LM head, zero-variance filtering, no KL. Departures: no PipelineRL asynchrony
# (generation is synchronous), no forced length interruptions, and no-positive-resampling is
# replaced by nothing (prompts are fresh each step, so there is no history to filter on).
# Update schedule: PipelineRL's off-policyness (generators up to 8 trainer steps stale) is
# asynchrony, not minibatching, and is not modelled: minibatches = 1, so CISPO's truncation never
# acts here unless ``rl.minibatches`` is raised. (Changing it would change ``rlscale demo``.)
SCALERL = Recipe(edge_filter=False, zero_var_filter=True, adv_norm="batch", loss_agg="prompt-mean",
                 objective="cispo", clip_low=0.2, clip_high=0.28, kl_coef=0.0, fp32_logits=True)

# Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training", arXiv 2503.20783).
# No std normalisation, a constant normaliser (sum / (N * max_new_tokens)), PPO clip 0.2, no
# KL. Departures: none beyond the shared ones. Update schedule: the released oat config sets
# rollout_batch_size = train_batch_size = 128 with 8 samples; the paper does not state whether
# that is one update per rollout or eight, so minibatches = 1 (on-policy, the clip inert).
DRGRPO = Recipe(edge_filter=False, zero_var_filter=False, adv_norm="none", loss_agg="constant",
                objective="ppo", clip_low=0.2, clip_high=0.2, kl_coef=0.0, fp32_logits=False)

RECIPES: dict[str, Recipe] = {"grpo": GRPO, "dapo": DAPO, "cispo": CISPO, "scalerl": SCALERL,
                              "drgrpo": DRGRPO}


def resolve(rl: RLConfig) -> RLConfig:
    """A copy of ``rl`` with every knob pinned (given explicitly) at the value it resolves to.

    The runner records this form in run.json (and hashes it for the default run id), so a
    stored config says what ran even if a preset changes later."""
    return replace(rl, overrides=asdict(rl.knobs))
