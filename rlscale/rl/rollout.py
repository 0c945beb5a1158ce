"""Sampling groups of responses, scoring them, and scoring sequences under a model.

A :class:`Rollout` holds N = P*G sampled sequences laid out as left-padded prompts (N, Lp)
followed by right-padded responses (N, R), with everything the update and the metrics need.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlscale.rl import flops as fl
from rlscale.rl.config import ModelConfig
from rlscale.rl.decode import generate, pad_left
from rlscale.rl.grpo import token_entropy, token_logprobs
from rlscale.rl.model import Transformer, autocast, gather_rows
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
            precision: str = "auto", verified_only: bool = False) -> Rollout:
    """Sample ``group_size`` responses per problem and score each one exactly. Each prompt runs
    through the model once for its group (see generate); ``chunk`` rows per generate call.
    ``verified_only``: a bare answer scores 0, only checked work counts (``task.reward``)."""
    device = next(model.parameters()).device
    unique = [[BOS, *encode(p.prompt())] for p in problems]
    prompts = [p for p in unique for _ in range(group_size)]
    uids, uvalid = pad_left(unique, device=device)
    per_call = max(chunk // group_size, 1)  # prompts per generate call (chunk rows)
    pieces = []
    was_training = model.training
    model.eval()
    with autocast(device, precision):
        for i in range(0, len(unique), per_call):
            pieces.append(generate(model, uids[i:i + per_call], uvalid[i:i + per_call],
                                   max_new_tokens=max_new_tokens, temperature=temperature,
                                   generator=generator, group=group_size))
    model.train(was_training)
    ids, valid = uids.repeat_interleave(group_size, 0), uvalid.repeat_interleave(group_size, 0)
    R = max(p.shape[1] for p in pieces)
    resp = torch.cat([torch.nn.functional.pad(p, (0, R - p.shape[1])) for p in pieces])
    texts = [decode(row) for row in resp.tolist()]
    is_eos = resp == EOS
    has_eos = is_eos.any(1)
    first = torch.where(has_eos, is_eos.float().argmax(1), torch.full_like(has_eos, R, dtype=torch.long))
    lens = torch.where(has_eos, first + 1, first)
    mask = (torch.arange(R, device=resp.device)[None] < lens[:, None]).float()
    rewards = torch.tensor([score(problems[i // group_size], t, verified_only=verified_only)
                            if bool(has_eos[i]) else 0.0
                            for i, t in enumerate(texts)]).view(len(problems), group_size)
    cfg: ModelConfig = model.cfg
    plens = [len(p) for p in prompts]
    rlens = lens.tolist()
    gen = {"prefill": 0, "decode": 0}
    for i, prompt in enumerate(unique):
        for k, v in fl.group_generation_flops(cfg, len(prompt), rlens[i * group_size:(i + 1) * group_size]).items():
            gen[k] += v
    return Rollout(problems, group_size, ids, valid, resp, mask.to(device), texts,
                   rewards.to(device), [response_format(t) for t in texts], gen, plens, rlens)


def sequence_logprobs(model: Transformer, ro: Rollout, *, with_entropy: bool = False,
                      precision: str = "auto", bucket_rows: int = 64
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(response token) (N, R) under ``model`` (and entropies (N, R) if asked).

    Each group's prompt runs through the model once (:meth:`Transformer.prefix`): the samples
    of a group share it, so it is not recomputed per sample. The responses then run in buckets
    of ``bucket_rows`` rows sorted by length, each padded only to its own longest row
    (random-length responses otherwise waste a third of the forward on padding), attending to
    their group's prompt keys (:meth:`Transformer.extend`). The log-probs equal those of a
    forward over each prompt + response alone (tested). Runs grad-enabled unless called under
    ``torch.no_grad()``; gradients reach the prompt pass through its keys and values.
    """
    G = ro.group_size
    N, R = ro.response_ids.shape
    device = ro.prompt_ids.device
    pid, pval = ro.prompt_ids[::G], ro.prompt_valid[::G]
    plen = pval.long().sum(1)
    rlen = torch.tensor(ro.response_lens, device=device)
    order = torch.argsort(rlen, stable=True)
    logps, ents = [], []
    with autocast(device, precision):
        first, kv = model.prefix(pid, pval)  # logits for each group's first response token
    for idx in order.split(bucket_rows):
        grp = idx // G
        W = int(rlen[idx].max()) - 1  # response tokens read as input (the last one is not)
        logits = first[grp][:, None]
        if W > 0:
            with autocast(device, precision):
                rest = model.extend(ro.response_ids[idx, :W], plen[grp],
                                    [(gather_rows(k, grp), gather_rows(v, grp)) for k, v in kv],
                                    pval[grp])
            logits = torch.cat([logits.to(rest.dtype), rest], 1)
        pad = (0, R - W - 1)
        logps.append(torch.nn.functional.pad(token_logprobs(logits, ro.response_ids[idx, :W + 1]), pad))
        if with_entropy:
            ents.append(torch.nn.functional.pad(token_entropy(logits.detach()), pad))
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(N, device=device)
    logp = torch.cat(logps)[inverse]
    ent = torch.cat(ents)[inverse] if with_entropy else None
    return logp, ent


def forward_flops(cfg: ModelConfig, ro: Rollout) -> int:
    """FLOPs of one :func:`sequence_logprobs` forward over the rollout (per real token): each
    group's prompt once, then its responses after it."""
    G = ro.group_size
    return sum(fl.group_forward_flops(cfg, ro.prompt_lens[i], ro.response_lens[i:i + G])
               for i in range(0, len(ro.prompt_lens), G))
