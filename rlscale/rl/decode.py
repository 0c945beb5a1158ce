"""Sampling from a :class:`~rlscale.rl.model.Transformer`: KV-cached, batched, grouped prompts.

:func:`generate` decodes left-padded prompts (B, P). On CPU it keeps each prompt's keys and
values once per group (:class:`_GroupedDecoder`); on GPU one cache per row for the fused SDPA
kernel (:class:`_CacheDecoder`). Both give the same tokens. :func:`sample_tokens` draws one
token per row by inverting the float64 CDF with one uniform draw.
"""

from __future__ import annotations

import torch

from rlscale.rl.model import Transformer, _as_mask, _attn_mask, padded_positions, rope_tables
from rlscale.rl.tasks import EOS, PAD


def _grouped_decoding(device: torch.device) -> bool:
    """Whether generate() decodes with :class:`_GroupedDecoder` (CPU: each prompt's keys and
    values once per group, plain batched products) or :class:`_CacheDecoder` (GPU: one cache
    per row for the fused SDPA kernel). Both give the same tokens; a test runs the GPU decoder
    on CPU."""
    return device.type == "cpu"


def _grouped_attention(q: torch.Tensor, prompt: tuple[torch.Tensor, torch.Tensor],
                       resp: tuple[torch.Tensor, torch.Tensor], prompt_mask: torch.Tensor,
                       slots: torch.Tensor | None, group: int) -> torch.Tensor:
    """Attention of one new query per row (B, H, 1, hd) over its group's prompt and its own
    response so far, in fp32.

    ``prompt``: keys transposed (Pg, H, hd, P) and values (Pg, H, P, hd), once per group;
    ``resp``: keys and values (t, B, H, hd), per row, time-major;
    ``prompt_mask``: additive (B, 1, 1, P) for prompt padding; ``slots``: each row's place among
    the Pg*group rows the decoder started with (None while none has been dropped).

    The queries of a group meet their prompt's keys in one product (group x hd by hd x P), so
    the prompt part of the cache is read once per group, not once per sample: at 32 prompts x 8,
    P = 40, about 1.8x faster than one batched matrix-vector product per row over its own copy.
    """
    k_p, v_p = prompt
    Pg, H, hd, P = k_p.shape
    n, B = Pg * group, q.shape[0]
    with torch.autocast(q.device.type, enabled=False):
        q_all = q if slots is None else q.new_zeros(n, *q.shape[1:]).index_copy_(0, slots, q)
        s_p = torch.matmul(q_all.view(Pg, group, H, hd).transpose(1, 2), k_p)  # (Pg, H, G, P)
        s_p = s_p.transpose(1, 2).reshape(n, H, 1, P)
        if slots is not None:
            s_p = s_p[slots]
        k_r, v_r = (r.reshape(r.shape[0], B * H, hd) for r in resp)  # views: (t, B*H, hd)
        s_r = torch.bmm(q.reshape(B * H, 1, hd), k_r.permute(1, 2, 0)).view(B, H, 1, -1)
        scores = torch.cat([s_p.add_(prompt_mask), s_r], -1)
        w = torch.softmax(scores.mul_(hd ** -0.5), dim=-1)  # -inf * scale stays -inf
        w_p = w[..., :P]
        if slots is not None:
            w_p = w.new_zeros(n, H, 1, P).index_copy_(0, slots, w_p)
        y_p = torch.matmul(w_p.reshape(Pg, group, H, P).transpose(1, 2), v_p)  # (Pg, H, G, hd)
        y_p = y_p.transpose(1, 2).reshape(n, H, 1, hd)
        if slots is not None:
            y_p = y_p[slots]
        y_r = torch.bmm(w[..., P:].reshape(B * H, 1, -1), v_r.transpose(0, 1)).view(B, H, 1, hd)
        return y_r.add_(y_p)


def generate(model: Transformer, prompts: torch.Tensor, prompt_valid: torch.Tensor, *,
             max_new_tokens: int, temperature: float = 1.0,
             generator: torch.Generator | None = None, group: int = 1) -> torch.Tensor:
    """Sample continuations of left-padded ``prompts`` (B, P) with a KV cache.

    Returns (B*group, N) token ids, N <= ``max_new_tokens``: ``group`` samples of each prompt
    (rows prompt 0 x group, then prompt 1 x group, ...; each prompt runs through the model once
    and its keys and values serve all its samples). Each row ends with EOS and is PAD after it
    (a row that hits the limit has no EOS). Sampling draws from ``generator`` so results are
    reproducible; ``temperature`` 0 means greedy.
    """
    cfg = model.cfg
    P = prompts.shape[1]
    if P + max_new_tokens > cfg.max_len:
        msg = f"prompt ({P}) + max_new_tokens ({max_new_tokens}) exceeds model.max_len={cfg.max_len}"
        raise ValueError(msg)
    with torch.inference_mode():  # no autograd bookkeeping at all: ~5% faster than no_grad here
        out = _sample(model, prompts, prompt_valid, max_new_tokens, temperature, generator, group)
    return out.clone()  # a normal tensor: an inference tensor cannot be saved for backward later


def sample_tokens(logits: torch.Tensor, temperature: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of ``logits`` (B, V), drawn from softmax(logits / temperature)
    (``temperature`` 0: the argmax).

    Inverse-CDF sampling: one uniform draw per row against the row's cumulative probabilities
    in float64 (so even a token of probability 1e-12 keeps its share). ``torch.multinomial``
    draws an exponential for every vocabulary entry instead: 0.22-0.24 ms a call at 256 x 48 on
    2 CPU cores, against 0.04 ms here, once per decoded token. Same distribution (tested), a
    different random stream.
    """
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits.float() if temperature == 1 else logits.float() / temperature
    cdf = torch.softmax(scaled, dim=-1, dtype=torch.float64).cumsum_(-1)
    u = torch.rand(len(cdf), 1, dtype=cdf.dtype, device=cdf.device, generator=generator)
    tok = torch.searchsorted(cdf, u.mul_(cdf[:, -1:]), right=True).squeeze(-1)
    return tok.clamp_(max=cdf.shape[-1] - 1)


def _sample(model: Transformer, prompts: torch.Tensor, prompt_valid: torch.Tensor, max_new_tokens: int,
            temperature: float, generator: torch.Generator | None, group: int) -> torch.Tensor:
    B = prompts.shape[0]
    decoder_class = _GroupedDecoder if _grouped_decoding(prompts.device) else _CacheDecoder
    decoder = decoder_class(model, prompts, prompt_valid, group, max_new_tokens)
    logits = decoder.logits
    next_pos = prompt_valid.long().sum(-1).repeat_interleave(group)
    B *= group
    out = torch.full((B, max_new_tokens), PAD, dtype=torch.long, device=prompts.device)
    rows = torch.arange(B, device=prompts.device)  # output row of each row still in the batch
    done = torch.zeros(B, dtype=torch.bool, device=prompts.device)
    for t in range(max_new_tokens):
        tok = sample_tokens(logits, temperature, generator).masked_fill_(done, PAD)
        out[rows, t] = tok
        done = done | (tok == EOS)
        n_done = int(done.sum())
        if n_done == len(done) or t == max_new_tokens - 1:
            return out[:, : t + 1]
        if 4 * n_done >= len(done):  # drop finished rows once a quarter are done
            keep = ~done
            rows, tok, done, next_pos = rows[keep], tok[keep], done[keep], next_pos[keep]
            decoder.keep(keep, t)
        logits = decoder.step(tok, next_pos + t, t)
    return out


class _CacheDecoder:
    """KV-cached decoding with one (B, H, S, hd) cache per row, attended by SDPA (GPU).

    The prompts run once; their caches are then copied to each sample of the group.
    """

    def __init__(self, model: Transformer, prompts: torch.Tensor, valid: torch.Tensor,
                 group: int, max_new_tokens: int) -> None:
        cfg = self.cfg = model.cfg
        self.model = model
        B, self.P = prompts.shape
        total = self.P + max_new_tokens
        hd = cfg.d_model // cfg.n_heads
        dtype = next(model.parameters()).dtype
        caches = [tuple(torch.empty(B, cfg.n_heads, total, hd, device=prompts.device, dtype=dtype)
                        for _ in range(2)) for _ in model.blocks]
        key_valid = torch.zeros(B, total, dtype=torch.bool, device=prompts.device)
        key_valid[:, :self.P] = valid
        positions = padded_positions(valid)
        self.rot_table = rope_tables(torch.arange(total, device=prompts.device)[None], hd, cfg.rope_base)[0]
        logits = self._forward(prompts, rope_tables(positions, hd, cfg.rope_base), key_valid, caches, 0)
        self.caches = [(k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)) for k, v in caches]
        self.key_valid = key_valid.repeat_interleave(group, 0)
        self.logits = logits.repeat_interleave(group, 0)

    def _forward(self, tokens, rot, key_valid, caches, start: int) -> torch.Tensor:
        mask = _attn_mask(key_valid, tokens.shape[1], start)
        x = self.model.embed(tokens)
        for block, cache in zip(self.model.blocks, caches):
            x = block(x, rot, mask, cache, start)
        return self.model.head(x[:, -1])  # the next token's logits (B, vocab)

    def keep(self, keep: torch.Tensor, t: int) -> None:
        """Keep the rows where ``keep``, after ``t`` response tokens were cached."""
        self.key_valid = self.key_valid[keep]
        self.caches = [(k[keep], v[keep]) for k, v in self.caches]

    def step(self, tok: torch.Tensor, positions: torch.Tensor, t: int) -> torch.Tensor:
        self.key_valid[:, self.P + t] = True
        return self._forward(tok[:, None], self.rot_table[positions][:, None], self.key_valid,
                             self.caches, self.P + t)


class _GroupedDecoder:
    """KV-cached decoding (CPU) with each prompt's keys and values kept once per group and each
    row's response keys and values in its own buffer; see _grouped_attention.
    Attention runs in fp32 over fp32 caches (a bf16 matrix-vector product is slower here)."""

    def __init__(self, model: Transformer, prompts: torch.Tensor, valid: torch.Tensor,
                 group: int, max_new_tokens: int) -> None:
        cfg = model.cfg
        self.model, self.group = model, group
        Pg, P = prompts.shape
        B = Pg * group
        hd = cfg.d_model // cfg.n_heads
        # every position a decoded token can take, rotated once (the same values per position)
        self.rot_table = rope_tables(torch.arange(P + max_new_tokens, device=prompts.device)[None],
                                     hd, cfg.rope_base)[0]
        logits, kv = model.prefix(prompts, valid, fp32=True)
        self.prompt_kv = [(k.transpose(-1, -2).contiguous(), v.contiguous()) for k, v in kv]
        self.logits = logits.repeat_interleave(group, 0)
        self.prompt_mask = _as_mask(valid.repeat_interleave(group, 0)[:, None, None, :])
        # time-major (T, B, H, hd): each step's keys and values are one contiguous block (a
        # row-major cache scatters them over B*H pages, and the TLB misses cost more than the
        # products that read them)
        self.resp = [tuple(torch.empty(max_new_tokens, B, cfg.n_heads, hd, device=prompts.device)
                           for _ in range(2)) for _ in model.blocks]
        self.n = B
        self.slots: torch.Tensor | None = None

    def keep(self, keep: torch.Tensor, t: int) -> None:
        """Keep the rows where ``keep``, after ``t`` response tokens were cached."""
        if self.slots is None:
            self.slots = torch.arange(len(keep), device=keep.device)
        self.slots = self.slots[keep]
        self.prompt_mask = self.prompt_mask[keep]
        idx = keep.nonzero().squeeze(1)
        n = self.n = len(idx)
        for k, v in self.resp:  # compact in place (no new buffers), only the part written so far
            k[:t, :n] = k[:t].index_select(1, idx)
            v[:t, :n] = v[:t].index_select(1, idx)

    def step(self, tok: torch.Tensor, positions: torch.Tensor, t: int) -> torch.Tensor:
        rot = self.rot_table[positions][:, None]  # (B, 1, 1, 1, hd/2)
        x = self.model.embed(tok[:, None])
        for block, prompt, (k_r, v_r) in zip(self.model.blocks, self.prompt_kv, self.resp):
            q, k, v = block.heads(x, rot, fp32=True)
            k_r[t, :self.n] = k.squeeze(2)
            v_r[t, :self.n] = v.squeeze(2)
            y = _grouped_attention(q, prompt, (k_r[:t + 1, :self.n], v_r[:t + 1, :self.n]),
                                   self.prompt_mask, self.slots, self.group)
            x = block.finish(x, y)
        return self.model.head(x[:, -1])


def pad_left(rows: list[list[int]], *, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into (B, P) ids and a (B, P) validity mask."""
    P = max(len(r) for r in rows)
    ids = torch.full((len(rows), P), PAD, dtype=torch.long)
    valid = torch.zeros((len(rows), P), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, P - len(r):] = torch.tensor(r, dtype=torch.long)
        valid[i, P - len(r):] = True
    return ids.to(device), valid.to(device)
