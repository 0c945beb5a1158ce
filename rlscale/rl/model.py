"""A small decoder-only transformer with KV-cached batched sampling.

Pre-norm blocks (RMSNorm), rotary position embeddings, GELU MLP, tied input/output embeddings,
no biases, as in nanoGPT/nanochat. Sizes run from ~0.02M (d=32, 2 layers) to ~50M parameters
(d=512, 16 layers) through :class:`~rlscale.rl.config.ModelConfig`.

Batches of prompts of different lengths are *left*-padded: ``key_valid`` (B, T) marks real
tokens, positions count from each row's first real token, and padded keys are masked out, so a
row's logits do not depend on how much padding it got.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rlscale.rl.config import ModelConfig
from rlscale.rl.tasks import EOS, PAD, VOCAB_SIZE


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, eps=1e-6)


def rope_tables(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (B, 1, T, head_dim/2) for integer ``positions`` (B, T)."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)
    angles = positions.float()[..., None] * inv
    return angles.cos()[:, None], angles.sin()[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., ::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2).type_as(x)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.norm1 = RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.norm2 = RMSNorm(d)
        self.fc = nn.Linear(d, cfg.ff_mult * d, bias=False)
        self.out = nn.Linear(cfg.ff_mult * d, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None, cache: tuple[torch.Tensor, torch.Tensor] | None,
                start: int) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            cache[0][:, :, start:start + T] = k
            cache[1][:, :, start:start + T] = v
            k, v = cache[0][:, :, :start + T], cache[1][:, :, :start + T]
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.out(F.gelu(self.fc(self.norm2(x))))


class Transformer(nn.Module):
    """``forward(tokens (B,T), key_valid (B,T) | None) -> logits (B, T, vocab)``."""

    def __init__(self, cfg: ModelConfig, *, vocab_size: int = VOCAB_SIZE) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.fp32_logits = True
        self.apply(self._init)
        for block in self.blocks:  # scaled residual init (GPT-2)
            for lin in (block.proj, block.out):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def head(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(h)
        if self.fp32_logits:
            return F.linear(h.float(), self.embed.weight.float())
        return F.linear(h, self.embed.weight.to(h.dtype))

    def forward(self, tokens: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        B, T = tokens.shape
        if key_valid is None:
            positions = torch.arange(T, device=tokens.device).expand(B, T)
            mask = None
        else:
            positions = (key_valid.long().cumsum(-1) - 1).clamp(min=0)
            mask = _attn_mask(key_valid, T, 0)
        cos, sin = rope_tables(positions, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_base)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin, mask, None, 0)
        return self.head(x)


def _attn_mask(key_valid: torch.Tensor, T: int, start: int) -> torch.Tensor:
    """Boolean (B, 1, T, start+T): causal, padded keys hidden, every query sees itself."""
    S = start + T
    q_pos = torch.arange(start, S, device=key_valid.device)[:, None]
    k_pos = torch.arange(S, device=key_valid.device)[None, :]
    causal = k_pos <= q_pos
    mask = causal[None] & key_valid[:, None, :S]
    mask = mask | (k_pos == q_pos)[None]
    return mask[:, None]


@torch.no_grad()
def generate(model: Transformer, prompts: torch.Tensor, prompt_valid: torch.Tensor, *,
             max_new_tokens: int, temperature: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample continuations of left-padded ``prompts`` (B, P) with a KV cache.

    Returns (B, N) token ids, N <= ``max_new_tokens``: each row ends with EOS and is PAD after
    it (a row that hits the limit has no EOS). Sampling draws from ``generator`` so results are
    reproducible; ``temperature`` 0 means greedy.
    """
    cfg = model.cfg
    B, P = prompts.shape
    total = P + max_new_tokens
    if total > cfg.max_len:
        msg = f"prompt ({P}) + max_new_tokens ({max_new_tokens}) exceeds model.max_len={cfg.max_len}"
        raise ValueError(msg)
    hd = cfg.d_model // cfg.n_heads
    dtype = next(model.parameters()).dtype
    caches = [
        (torch.empty(B, cfg.n_heads, total, hd, device=prompts.device, dtype=dtype),
         torch.empty(B, cfg.n_heads, total, hd, device=prompts.device, dtype=dtype))
        for _ in model.blocks
    ]
    key_valid = torch.zeros(B, total, dtype=torch.bool, device=prompts.device)
    key_valid[:, :P] = prompt_valid
    positions = (prompt_valid.long().cumsum(-1) - 1).clamp(min=0)
    next_pos = prompt_valid.long().sum(-1)
    logits = _step(model, prompts, positions, key_valid, caches, 0)[:, -1]
    out = torch.full((B, max_new_tokens), PAD, dtype=torch.long, device=prompts.device)
    rows = torch.arange(B, device=prompts.device)  # output row of each row still in the batch
    done = torch.zeros(B, dtype=torch.bool, device=prompts.device)
    for t in range(max_new_tokens):
        if temperature == 0:
            tok = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        tok = torch.where(done, torch.full_like(tok, PAD), tok)
        out[rows, t] = tok
        done = done | (tok == EOS)
        if bool(done.all()) or t == max_new_tokens - 1:
            return out[:, : t + 1]
        if 4 * int(done.sum()) >= len(done):  # drop finished rows once a quarter are done
            keep = ~done
            rows, tok, done = rows[keep], tok[keep], done[keep]
            key_valid, next_pos = key_valid[keep], next_pos[keep]
            caches = [(k[keep], v[keep]) for k, v in caches]
        key_valid[:, P + t] = True
        logits = _step(model, tok[:, None], (next_pos + t)[:, None], key_valid, caches, P + t)[:, -1]
    return out


def _step(model: Transformer, tokens: torch.Tensor, positions: torch.Tensor,
          key_valid: torch.Tensor, caches: list, start: int) -> torch.Tensor:
    cfg = model.cfg
    cos, sin = rope_tables(positions, cfg.d_model // cfg.n_heads, cfg.rope_base)
    mask = _attn_mask(key_valid, tokens.shape[1], start)
    x = model.embed(tokens)
    for block, cache in zip(model.blocks, caches):
        x = block(x, cos, sin, mask, cache, start)
    return model.head(x)


def pad_left(rows: list[list[int]], *, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into (B, P) ids and a (B, P) validity mask."""
    P = max(len(r) for r in rows)
    ids = torch.full((len(rows), P), PAD, dtype=torch.long)
    valid = torch.zeros((len(rows), P), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, P - len(r):] = torch.tensor(r, dtype=torch.long)
        valid[i, P - len(r):] = True
    return ids.to(device), valid.to(device)
