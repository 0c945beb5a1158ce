"""Sampling groups of responses, scoring them, and scoring sequences under a model.

A :class:`Rollout` holds N = P*G sampled sequences laid out as left-padded prompts (N, Lp)
followed by right-padded responses (N, R), with everything the update and the metrics need.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlscale.rl import flops as fl
from rlscale.rl.config import ModelConfig
from rlscale.rl.grpo import token_entropy, token_logprobs
from rlscale.rl.model import Transformer, autocast, generate, pad_left
from rlscale.rl.tasks import BOS, EOS, Problem, decode, encode, response_format, score, token_roles


@dataclass
class Rollout:
    problems: list[Problem]  # P problems
    group_size: int  # G
    prompt_ids: torch.Tensor  # (N, Lp) left-padded
    prompt_valid: torch.Tensor  # (N, Lp) bool
    response_ids: torch.Tensor  # (N, R) right-padded with PAD after EOS
    response_mask: torch.Tensor  # (N, R) float, 1 on real tokens (EOS included)
    texts: list[str]  # N decoded responses
    rewards: torch.Tensor  # (P, G) 0/1
    formats: list[str]  # N response formats
    gen_flops: dict[str, int]  # {'prefill', 'decode'}
    prompt_lens: list[int]  # N real prompt lengths (BOS included)
    response_lens: list[int]  # N real response lengths (EOS included)

    @property
    def n_tokens(self) -> int:
        """Sampled (response) tokens."""
        return sum(self.response_lens)

    def select(self, keep: torch.Tensor) -> Rollout:
        """The rollout restricted to the prompts where ``keep`` (P,) is true."""
        idx = [i for i, k in enumerate(keep.tolist()) if k]
        rows = torch.tensor([i * self.group_size + g for i in idx for g in range(self.group_size)],
                            dtype=torch.long)
        r = rows.tolist()
        return Rollout([self.problems[i] for i in idx], self.group_size, self.prompt_ids[rows],
                       self.prompt_valid[rows], self.response_ids[rows], self.response_mask[rows],
                       [self.texts[i] for i in r], self.rewards[idx], [self.formats[i] for i in r],
                       self.gen_flops, [self.prompt_lens[i] for i in r],
                       [self.response_lens[i] for i in r])

    def roles(self) -> list[list[str]]:
        """Per response token: 'plan' / 'exec' / 'answer' (EOS and beyond: 'answer')."""
        R = self.response_ids.shape[1]
        return [(token_roles(t) + ["answer"] * R)[:R] for t in self.texts]


def rollout(model: Transformer, problems: list[Problem], *, group_size: int, max_new_tokens: int,
            generator: torch.Generator, temperature: float = 1.0, chunk: int = 512,
            precision: str = "auto") -> Rollout:
    """Sample ``group_size`` responses per problem and score each one exactly."""
    device = next(model.parameters()).device
    prompts = [[BOS, *encode(p.prompt())] for p in problems for _ in range(group_size)]
    ids, valid = pad_left(prompts, device=device)
    pieces = []
    was_training = model.training
    model.eval()
    with autocast(device, precision):
        for i in range(0, len(prompts), chunk):
            pieces.append(generate(model, ids[i:i + chunk], valid[i:i + chunk],
                                   max_new_tokens=max_new_tokens, temperature=temperature,
                                   generator=generator))
    model.train(was_training)
    R = max(p.shape[1] for p in pieces)
    resp = torch.cat([torch.nn.functional.pad(p, (0, R - p.shape[1])) for p in pieces])
    texts = [decode(row) for row in resp.tolist()]
    is_eos = resp == EOS
    has_eos = is_eos.any(1)
    first = torch.where(has_eos, is_eos.float().argmax(1), torch.full_like(has_eos, R, dtype=torch.long))
    lens = torch.where(has_eos, first + 1, first)
    mask = (torch.arange(R, device=resp.device)[None] < lens[:, None]).float()
    rewards = torch.tensor([score(problems[i // group_size], t) if bool(has_eos[i]) else 0.0
                            for i, t in enumerate(texts)]).view(len(problems), group_size)
    cfg: ModelConfig = model.cfg
    plens = [len(p) for p in prompts]
    rlens = lens.tolist()
    gen = {"prefill": 0, "decode": 0}
    for P, N in zip(plens, rlens):
        for k, v in fl.generation_flops(cfg, P, N).items():
            gen[k] += v
    return Rollout(problems, group_size, ids, valid, resp, mask.to(device), texts,
                   rewards.to(device), [response_format(t) for t in texts], gen, plens, rlens)


def sequence_logprobs(model: Transformer, ro: Rollout, *, with_entropy: bool = False,
                      precision: str = "auto", bucket_rows: int = 64
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(response token) (N, R) under ``model`` (and entropies (N, R) if asked).

    Each row is packed as prompt + response from position 0 and right-padded, so plain causal
    attention (the fast kernel, no mask) gives the same logits as the left-padded layout. Rows
    are sorted by length and run in buckets of ``bucket_rows``, each padded only to its own
    longest row (random-length responses otherwise waste a third of the forward on padding).
    Runs grad-enabled unless called under ``torch.no_grad()``.
    """
    N, Lp = ro.prompt_ids.shape
    R = ro.response_ids.shape[1]
    device = ro.prompt_ids.device
    plen = torch.tensor(ro.prompt_lens, device=device)
    rlen = torch.tensor(ro.response_lens, device=device)
    full = torch.cat([ro.prompt_ids, ro.response_ids], 1)
    order = torch.argsort(plen + rlen, stable=True)
    logps, ents = [], []
    for idx in order.split(bucket_rows):
        p = plen[idx]
        width = max(int((p + rlen[idx]).max()) - 1, 1)
        cols = torch.arange(width, device=device)[None] + (Lp - p)[:, None]
        packed = full[idx].gather(1, cols.clamp(max=Lp + R - 1))
        with autocast(device, precision):
            logits = model(packed)
        at = (p[:, None] - 1 + torch.arange(R, device=device)[None]).clamp(max=width - 1)
        logits = logits.gather(1, at[..., None].expand(-1, -1, logits.shape[-1]))
        logps.append(token_logprobs(logits, ro.response_ids[idx]))
        if with_entropy:
            ents.append(token_entropy(logits.detach()))
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(N, device=device)
    logp = torch.cat(logps)[inverse]
    ent = torch.cat(ents)[inverse] if with_entropy else None
    return logp, ent


def forward_flops(cfg: ModelConfig, ro: Rollout) -> int:
    """FLOPs of one forward pass over every sequence of the rollout (per real token)."""
    return sum(fl.train_flops(cfg, P, N)["forward"] for P, N in zip(ro.prompt_lens, ro.response_lens))
