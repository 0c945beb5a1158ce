"""A small decoder-only transformer (sampling from it is :mod:`rlscale.rl.decode`).

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
from rlscale.rl.tasks import VOCAB_SIZE


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
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _RMSNormFn.apply(x, self.weight, 1e-6)
        return F.rms_norm(x, (x.shape[-1],), self.weight, eps=1e-6)


_HAS_FUSED_RMS_NORM = hasattr(torch.ops.aten, "_fused_rms_norm")


class _RMSNormFn(torch.autograd.Function):
    """RMSNorm with the fused forward kernel and a backward of eight kernels. With autograd on,
    ``F.rms_norm`` runs as six separate ops and differentiates each (torch 2.13 has no CPU
    kernel for ``_fused_rms_norm_backward``): at (64, 63, 128) on 2 cores, forward and backward
    took 1.4-1.6 ms, against 0.7-0.8 ms here. Same output bit for bit; gradients equal to
    rounding (tested)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        if _HAS_FUSED_RMS_NORM:
            y, rstd = torch.ops.aten._fused_rms_norm(x, [x.shape[-1]], weight, eps)
        else:  # a torch without the op (rlscale[rl] admits torch>=2.4): the same arithmetic
            rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
            y = x * rstd * weight
        ctx.save_for_backward(x, weight, rstd)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, rstd = ctx.saved_tensors
        x_hat = x * rstd
        grad_w = (grad * x_hat).flatten(0, -2).sum(0)
        gw = grad * weight
        grad_x = (gw - x_hat * (gw * x_hat).mean(-1, keepdim=True)).mul_(rstd)
        return grad_x, grad_w, None


def padded_positions(valid: torch.Tensor) -> torch.Tensor:
    """Positions (B, T) of left-padded rows: each row counts from its first real token (``valid``
    (B, T) bool); padding gets position 0 (it is masked out anyway)."""
    return (valid.long().cumsum(-1) - 1).clamp(min=0)


def rope_tables(positions: torch.Tensor, head_dim: int, base: float) -> torch.Tensor:
    """Rotations exp(i * position * theta_j) as complex64 (B, T, 1, 1, head_dim/2), for integer
    ``positions`` (B, T)."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)
    angles = positions.float()[..., None] * inv
    return torch.complex(angles.cos(), angles.sin())[:, :, None, None]


def apply_rope(x: torch.Tensor, rot: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of the last dim by ``rot`` (rope_tables).

    One complex product: the same arithmetic as x1*cos - x2*sin, x1*sin + x2*cos (bit for bit
    on CPU; tested) in one kernel instead of seven.
    """
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rot).flatten(-2).to(dtype or x.dtype)


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

    def heads(self, x: torch.Tensor, rot: torch.Tensor, *, fp32: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (B, H, T, hd) of ``x`` (B, T, D), q and k rotated by ``rot`` in fp32. v has the
        dtype of the projection (bf16 under autocast); q and k too on GPU (for SDPA), while on
        CPU they stay fp32 (the CPU attention computes scores in fp32 anyway: rounding them to
        bf16 first doubled the worst log-prob error on the default base). ``fp32``: v in fp32
        too whatever the autocast dtype (CPU decoding keeps its KV cache in fp32)."""
        B, T, D = x.shape
        qkv = self.qkv(self.norm1(x)).view(B, T, 3, self.n_heads, D // self.n_heads)
        if fp32:
            qkv = qkv.float()
        # on CPU q and k stay fp32 after the rotation (attention scores are fp32 there anyway)
        keep = torch.float32 if x.device.type == "cpu" else None
        q, k = apply_rope(qkv[:, :, :2], rot, keep).transpose(1, 3).unbind(2)  # q and k in one pass
        return q, k, qkv[:, :, 2].transpose(1, 2)

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The block's output from its input ``x`` and the attention output ``y`` (B, H, T, hd)."""
        B, T, D = x.shape
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.out(F.gelu(self.fc(self.norm2(x))))

    def forward(self, x: torch.Tensor, rot: torch.Tensor, mask: torch.Tensor | None,
                cache: tuple[torch.Tensor, torch.Tensor] | None, start: int) -> torch.Tensor:
        """``cache``: (keys, values) (B, H, S, hd) buffers that this call's keys and values are
        written into at ``start`` and attended over up to them (the GPU decoder)."""
        # a cache on CPU is fp32 (the CPU-tested twin of the GPU decoder), so v is fp32 too;
        # otherwise v keeps the autocast dtype (see heads and _attention)
        q, k, v = self.heads(x, rot, fp32=cache is not None and x.device.type == "cpu")
        if cache is None:
            return self.finish(x, _attention(q, k, v, mask))
        T = x.shape[1]
        cache[0][:, :, start:start + T] = k
        cache[1][:, :, start:start + T] = v
        return self.finish(x, _attention(q, cache[0][:, :, :start + T], cache[1][:, :, :start + T], mask))


# SDPA backends on CUDA: flash, memory-efficient, math; not cuDNN. torch prefers cuDNN for bf16
# on Hopper, but it builds an execution plan for every new shape: every decoded token (the key
# length grows) and every pretraining batch (lengths vary). Measured on an H100, 10M model, bf16:
# 3.6 ms of CPU per attention forward and 5.5 ms per backward, RL 3,617 tokens/s against 28,518
# in fp32 (which never picks cuDNN).
CUDA_SDPA_BACKENDS = (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH)


def _sdpa_context(device_type: str) -> contextlib.AbstractContextManager:
    """Around SDPA: on CPU no autocast (attention in the dtype of q/k/v: fp32 here, bf16 v goes
    to _bf16_cpu_attention); on CUDA only CUDA_SDPA_BACKENDS."""
    if device_type == "cpu":
        return torch.autocast("cpu", enabled=False)
    if device_type == "cuda":
        return sdpa_kernel(list(CUDA_SDPA_BACKENDS))
    return contextlib.nullcontext()


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if q.device.type == "cpu" and v.dtype == torch.bfloat16:
        return _bf16_cpu_attention(q, k, v, mask)
    with _sdpa_context(q.device.type):
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _bf16_cpu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Attention for bf16 v on CPU (:class:`_Bf16CpuAttention`). ``mask``: additive fp32
    (B, 1, T, S), or None for causal."""
    T, S = q.shape[-2], k.shape[-2]
    if mask is None:
        mask = torch.full((T, S), float("-inf"), device=q.device).triu_(S - T + 1)
    return _Bf16CpuAttention.apply(q, k, v, mask)


class _Bf16CpuAttention(torch.autograd.Function):
    """softmax(q k^T * scale + mask) v for bf16 v (q and k bf16 or fp32) on CPU, at least as
    exact as a GPU flash kernel: scores and softmax in fp32, weights rounded to bf16 for the
    product with v. The backward runs its four products in bf16 (fp32 accumulation), as
    autocast runs every other matrix product; the softmax backward is fp32.

    torch's CPU flash kernel is slow at these head sizes: at (256, 4, 64, 32), forward and
    backward take 30 ms in fp32 and 66 ms in bf16, against 14 ms here. Rounding the scores to
    bf16 as well (eager attention under autocast) is no faster and less exact.
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            scores = torch.add(mask, torch.matmul(q.float(), k.float().transpose(-1, -2)),
                               alpha=q.shape[-1] ** -0.5)
            w = torch.softmax(scores, dim=-1)
            ctx.save_for_backward(q, k, v, w)
            return torch.matmul(w.to(v.dtype), v)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, k, v, w = ctx.saved_tensors
        with torch.autocast("cpu", enabled=False):
            grad = grad.to(v.dtype)
            grad_v = torch.matmul(w.to(v.dtype).transpose(-1, -2), grad)
            grad_w = torch.matmul(grad, v.transpose(-1, -2))
            grad_s = torch._softmax_backward_data(grad_w.float(), w, -1, torch.float32)
            grad_s = grad_s.mul_(q.shape[-1] ** -0.5).to(v.dtype)
            grad_q = torch.matmul(grad_s, k.to(v.dtype)).to(q.dtype)
            grad_k = torch.matmul(grad_s.transpose(-1, -2), q.to(v.dtype)).to(k.dtype)
            return grad_q, grad_k, grad_v, None


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
            positions = padded_positions(key_valid)
            mask = _attn_mask(key_valid, T, 0)
        rot = rope_tables(positions, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_base)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, rot, mask, None, 0)
        return self.head(x)

    def prefix(self, tokens: torch.Tensor, valid: torch.Tensor, *, fp32: bool = False
               ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Run left-padded prompts ``tokens`` (B, P) once: the logits at their last position
        (B, vocab) and every layer's keys and values (B, H, P, hd) for :meth:`extend` (or a
        decoder's cache: ``fp32`` as in :meth:`Block.heads`)."""
        P = tokens.shape[1]
        positions = padded_positions(valid)
        rot = rope_tables(positions, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_base)
        mask = _attn_mask(valid, P, 0)
        x = self.embed(tokens)
        kv = []
        for block in self.blocks:
            q, k, v = block.heads(x, rot, fp32=fp32)
            kv.append((k, v))
            x = block.finish(x, _attention(q, k, v, mask))
        return self.head(x[:, -1]), kv

    def extend(self, tokens: torch.Tensor, start: torch.Tensor,
               kv: list[tuple[torch.Tensor, torch.Tensor]], kv_valid: torch.Tensor) -> torch.Tensor:
        """Logits (B, W, vocab) of ``tokens`` (B, W) that follow a prefix: row b's prefix has
        keys and values ``kv`` (from :meth:`prefix`, rows picked to match), valid where
        ``kv_valid`` (B, P), and ``start[b]`` real tokens, so its first token sits at that
        position. Same logits as a forward over prefix + tokens (tested)."""
        B, W = tokens.shape
        positions = start[:, None] + torch.arange(W, device=tokens.device)[None]
        rot = rope_tables(positions, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_base)
        own = torch.ones(W, W, dtype=torch.bool, device=tokens.device).tril()
        mask = _as_mask(torch.cat([kv_valid[:, None, :].expand(B, W, -1),
                                   own[None].expand(B, W, W)], -1)[:, None])
        x = self.embed(tokens)
        for block, (pk, pv) in zip(self.blocks, kv):
            q, k, v = block.heads(x, rot)
            y = _attention(q, torch.cat([pk, k], 2), torch.cat([pv, v], 2), mask)
            x = block.finish(x, y)
        return self.head(x)


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x.index_select(0, idx)``, with a backward that makes the incoming gradient contiguous
    before adding its rows up. The gradient of a prefix's keys reaches here as a slice of the
    gradient of ``torch.cat([prefix, own], 2)``, and torch adds a strided gradient up through
    ``scatter_add_``: 0.23 ms a call at (64, 4, 35, 32) on 2 cores, against 0.03 ms."""
    return _GatherRows.apply(x, idx)


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(idx)
        ctx.rows = x.shape[0]
        return x.index_select(0, idx)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (idx,) = ctx.saved_tensors
        out = grad.new_zeros(ctx.rows, *grad.shape[1:])
        return out.index_add_(0, idx, grad.contiguous()), None


def _as_mask(allowed: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask as SDPA should get it: boolean on GPU; on CPU (where softmax and
    masking run in fp32) the additive 0/-inf fp32 mask SDPA would otherwise build per layer."""
    if allowed.device.type == "cpu":
        return torch.zeros(allowed.shape, device=allowed.device).masked_fill_(~allowed, float("-inf"))
    return allowed


def _attn_mask(key_valid: torch.Tensor, T: int, start: int) -> torch.Tensor:
    """(B, 1, T, start+T): causal, padded keys hidden, every query sees itself (see _as_mask)."""
    S = start + T
    q_pos = torch.arange(start, S, device=key_valid.device)[:, None]
    k_pos = torch.arange(S, device=key_valid.device)[None, :]
    causal = k_pos <= q_pos
    mask = causal[None] & key_valid[:, None, :S]
    return _as_mask((mask | (k_pos == q_pos)[None])[:, None])
