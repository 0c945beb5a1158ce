"""Probe for a planned change: score each prompt once per group (a shared prefix) in the log-prob passes.

Today ``rollout.sequence_logprobs`` runs every sequence (prompt + response) through the model, so
each prompt goes through the reference forward, the policy forward and the backward once per
sample of its group. This probe computes the prompts once per group (keys and values of every
layer), then the responses in length buckets attending to their group's prompt keys, and checks
that it gives the same log-probs; then times both (the reference forward without grad, the policy
forward and backward) on the throughput benchmark's shapes: random-init d128-L4, 32 prompts x 8,
up to 64 new tokens, 2 threads.

    python benchmarks/shared_prefix_probe.py

It uses the block's own pieces (``Block.heads``, ``Block.finish``) around its own attention; it
is a measurement, not a code path. Landing it would change the FLOPs counted for a
step (prompts once per group), so every documented C_mid would move.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from rlscale.rl.config import JobConfig
from rlscale.rl.grpo import token_logprobs
from rlscale.rl.model import Transformer, _attn_mask, autocast, rope_tables
from rlscale.rl.rollout import rollout, sequence_logprobs
from rlscale.rl.tasks import sample_problems


def shared_logprobs(model, ro, precision, bucket=64):
    """log pi(response token) (N, R), each group's prompt run once."""
    G = ro.group_size
    pid, pval = ro.prompt_ids[::G], ro.prompt_valid[::G]
    Pg, Lp = pid.shape
    resp = ro.response_ids
    B, R = resp.shape
    hd = model.cfg.d_model // model.cfg.n_heads
    plen = pval.long().sum(1)
    rlen = torch.tensor(ro.response_lens)
    with autocast("cpu", precision):
        ppos = (pval.long().cumsum(-1) - 1).clamp(min=0)
        pmask = _attn_mask(pval, Lp, 0)
        prot = rope_tables(ppos, hd, model.cfg.rope_base)
        xp = model.embed(pid)
        pk = []
        for blk in model.blocks:
            q, k, v = blk.heads(xp, prot)
            with torch.autocast("cpu", enabled=False):
                yp = F.scaled_dot_product_attention(q, k, v, attn_mask=pmask)
            pk.append((k, v))
            xp = blk.finish(xp, yp)
        first = model.head(xp[:, -1])  # (Pg, V)
        order = torch.argsort(rlen, stable=True)
        outs = []
        for idx in order.split(bucket):
            W = max(int(rlen[idx].max()) - 1, 1)
            grp = idx // G
            rin = resp[idx, :W]
            rpos = plen[grp][:, None] + torch.arange(W)[None]
            rrot = rope_tables(rpos, hd, model.cfg.rope_base)
            own = torch.ones(W, W, dtype=torch.bool).tril()
            n = len(idx)
            m = torch.cat([pval[grp][:, None, :].expand(n, W, Lp), own[None].expand(n, -1, -1)], -1)[:, None]
            rmask = torch.zeros(m.shape).masked_fill_(~m, float("-inf"))
            xr = model.embed(rin)
            for blk, (k, v) in zip(model.blocks, pk):
                qr, kr, vr = blk.heads(xr, rrot)
                K = torch.cat([k[grp], kr], 2)
                V = torch.cat([v[grp], vr], 2)
                with torch.autocast("cpu", enabled=False):
                    yr = F.scaled_dot_product_attention(qr, K, V, attn_mask=rmask)
                xr = blk.finish(xr, yr)
            logits = torch.cat([first[grp][:, None], model.head(xr)], 1)
            lp = token_logprobs(logits, resp[idx, :W + 1])
            outs.append(F.pad(lp, (0, R - lp.shape[1])))
        inv = torch.empty_like(order)
        inv[order] = torch.arange(B)
    return torch.cat(outs)[inv]

def main() -> None:
    torch.set_num_threads(2)
    cfg = JobConfig()
    torch.manual_seed(0)
    m = Transformer(cfg.model)
    probs = sample_problems(0, 32, ops_min=1, ops_max=4, split="train", eval_fraction=0.05)
    for prec in ("fp32", "bf16"):
        ro = rollout(m, probs, group_size=8, max_new_tokens=64, generator=torch.Generator().manual_seed(0),
                     precision=prec)
        mask = ro.response_mask
        with torch.no_grad():
            full = sequence_logprobs(m, ro, precision=prec)[0]
            diff = ((full - shared_logprobs(m, ro, prec)).abs() * mask).max()

        def cur():
            with torch.no_grad():
                sequence_logprobs(m, ro, precision=prec)
            lp = sequence_logprobs(m, ro, with_entropy=True, precision=prec)[0]
            (lp * mask).sum().backward()

        def new():
            with torch.no_grad():
                shared_logprobs(m, ro, prec)
            (shared_logprobs(m, ro, prec) * mask).sum().backward()

        t_cur, t_new = timeit(cur), timeit(new)
        print(f"[{prec}] reference fwd + policy fwd/bwd: per sequence {t_cur:.3f} s, shared prefix "
              f"{t_new:.3f} s ({t_new / t_cur:.2f}x); max |log-prob diff| {diff:.1e}; "
              f"mean response {sum(ro.response_lens) / len(ro.response_lens):.1f} tokens", flush=True)


def timeit(f, n=5):
    f()
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n


if __name__ == "__main__":
    main()
