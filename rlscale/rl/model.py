"""A small decoder-only transformer with KV-cached batched sampling.

Pre-norm blocks (RMSNorm), rotary position embeddings, GELU MLP, tied input/output embeddings,
no biases, as in nanoGPT/nanochat. Sizes run from ~0.02M (d=32, 2 layers) to ~50M parameters
(d=512, 16 layers) through :class:`~rlscale.rl.config.ModelConfig`.

Batches of prompts of different lengths are *left*-padded: ``key_valid`` (B, T) marks real
tokens, positions count from each row's first real token, and padded keys are masked out, so a
row's logits do not depend on how much padding it got.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from rlscale.rl.config import PRECISIONS, ModelConfig
from rlscale.rl.tasks import EOS, PAD, VOCAB_SIZE


def autocast(device: torch.device | str, precision: str = "auto"):
    """The autocast context for ``precision``: 'bf16' (matrix products in bf16, weights and
    optimiser state fp32), 'fp32' (none), 'auto' (bf16 on CUDA, fp32 on CPU)."""
    kind = torch.device(device).type
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "bf16" or (precision == "auto" and kind == "cuda"):
        return torch.autocast(kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, eps=1e-6)


def rope_tables(positions: torch.Tensor, head_dim: int, base: float) -> torch.Tensor:
    """Rotations exp(i * position * theta_j) as complex64 (B, T, 1, 1, head_dim/2), for integer
    ``positions`` (B, T)."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)
    angles = positions.float()[..., None] * inv
    return torch.complex(angles.cos(), angles.sin())[:, :, None, None]


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of the last dim by ``rot`` (rope_tables).

    One complex product: the same arithmetic as x1*cos - x2*sin, x1*sin + x2*cos (bit for bit
    on CPU; tested) in one kernel instead of seven.
    """
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rot).flatten(-2).type_as(x)


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

    def heads(self, x: torch.Tensor, rot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (B, H, T, hd) of ``x`` (B, T, D), q and k rotated by ``rot``."""
        B, T, D = x.shape
        qkv = self.qkv(self.norm1(x)).view(B, T, 3, self.n_heads, D // self.n_heads)
        if x.device.type == "cpu" and qkv.dtype != torch.float32:
            # bf16 autocast on CPU: attention in fp32 (torch's CPU flash kernel is ~3x slower
            # backward in bf16, and the KV cache stays fp32); the matrix products stay bf16
            qkv = qkv.float()
        q, k = apply_rope(qkv[:, :, :2], rot).transpose(1, 3).unbind(2)  # q and k in one pass
        return q, k, qkv[:, :, 2].transpose(1, 2)

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The block's output from its input ``x`` and the attention output ``y`` (B, H, T, hd)."""
        B, T, D = x.shape
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.out(F.gelu(self.fc(self.norm2(x))))

    def forward(self, x: torch.Tensor, rot: torch.Tensor, mask: torch.Tensor | None,
                cache: tuple[torch.Tensor, torch.Tensor] | None, start: int) -> torch.Tensor:
        q, k, v = self.heads(x, rot)
        T = x.shape[1]
        if cache is None:
            y = _attention(q, k, v, mask)
        elif _keys_transposed(x.device):  # keys cached as (B, H, hd, S): see generate()
            cache[0][..., start:start + T] = k.transpose(-1, -2)
            cache[1][:, :, start:start + T] = v
            if start == 0:  # prefill: the keys and values just computed are the whole cache
                y = _attention(q, k, v, mask)
            else:
                y = _cached_attention(q, cache[0][..., :start + T], cache[1][:, :, :start + T], mask)
        else:
            cache[0][:, :, start:start + T] = k
            cache[1][:, :, start:start + T] = v
            y = _attention(q, cache[0][:, :, :start + T], cache[1][:, :, :start + T], mask)
        return self.finish(x, y)


# SDPA backends on CUDA: flash, memory-efficient, math; not cuDNN. torch prefers cuDNN for bf16
# on Hopper, but it builds an execution plan for every new shape: every decoded token (the key
# length grows) and every pretraining batch (lengths vary). Measured on an H100, 10M model, bf16:
# 3.6 ms of CPU per attention forward and 5.5 ms per backward, RL 3,617 tokens/s against 28,518
# in fp32 (which never picks cuDNN).
CUDA_SDPA_BACKENDS = (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH)


def _sdpa_context(device_type: str) -> contextlib.AbstractContextManager:
    """Around SDPA: on CPU no autocast (attention in the dtype of q/k/v, fp32: see
    Block.forward); on CUDA only CUDA_SDPA_BACKENDS."""
    if device_type == "cpu":
        return torch.autocast("cpu", enabled=False)
    if device_type == "cuda":
        return sdpa_kernel(list(CUDA_SDPA_BACKENDS))
    return contextlib.nullcontext()


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    with _sdpa_context(q.device.type):
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _keys_transposed(device: torch.device) -> bool:
    """Whether generate() caches keys transposed, (B, H, hd, S), and decodes with two plain
    batched products (CPU), or as (B, H, S, hd) for the fused SDPA kernel (GPU). Both layouts
    give the same tokens; a test runs the GPU layout on CPU."""
    return device.type == "cpu"


def _cached_attention(q: torch.Tensor, k_t: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Attention of new queries over the CPU KV cache, keys stored transposed (B, H, hd, S).

    One plain batched product per side: for a single decoded token torch's CPU flash kernel
    spends most of its time on set-up (about 2x slower at these sizes). fp32, additive mask.
    """
    with torch.autocast("cpu", enabled=False):
        scores = torch.matmul(q, k_t).mul_(q.shape[-1] ** -0.5).add_(mask)
        return torch.matmul(torch.softmax(scores, dim=-1), v)


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
        if self.fp32_logits:  # fp32 even under autocast, which would otherwise run it in bf16
            with torch.autocast(h.device.type, enabled=False):
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
        rot = rope_tables(positions, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_base)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, rot, mask, None, 0)
        return self.head(x)


def _attn_mask(key_valid: torch.Tensor, T: int, start: int) -> torch.Tensor:
    """(B, 1, T, start+T): causal, padded keys hidden, every query sees itself.

    Boolean on GPU; on CPU (where attention runs in fp32) the additive 0/-inf float mask that
    SDPA would otherwise build from the boolean one in every layer.
    """
    S = start + T
    q_pos = torch.arange(start, S, device=key_valid.device)[:, None]
    k_pos = torch.arange(S, device=key_valid.device)[None, :]
    causal = k_pos <= q_pos
    mask = causal[None] & key_valid[:, None, :S]
    mask = (mask | (k_pos == q_pos)[None])[:, None]
    if key_valid.device.type == "cpu":  # additive fp32 mask, made once per forward, not per layer
        return torch.zeros(mask.shape, device=mask.device).masked_fill_(~mask, float("-inf"))
    return mask


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
    k_shape = ((B, cfg.n_heads, hd, total) if _keys_transposed(prompts.device)
               else (B, cfg.n_heads, total, hd))
    caches = [
        (torch.empty(k_shape, device=prompts.device, dtype=dtype),
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
    rot = rope_tables(positions, cfg.d_model // cfg.n_heads, cfg.rope_base)
    mask = _attn_mask(key_valid, tokens.shape[1], start)
    x = model.embed(tokens)
    for block, cache in zip(model.blocks, caches):
        x = block(x, rot, mask, cache, start)
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
