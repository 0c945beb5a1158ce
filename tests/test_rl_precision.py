"""Mixed precision (bf16 autocast) for pretraining and RL, and length-bucketed log-probs."""

from __future__ import annotations

import pytest

from rlscale.errors import InputError
from rlscale.rl.config import JobConfig

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

SMALL = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.max_len=96"]


def small_model(seed: int = 0):
    from rlscale.rl.model import Transformer

    torch.manual_seed(seed)
    return Transformer(JobConfig().with_overrides(SMALL).model)


def test_autocast_choices():
    from rlscale.rl.model import autocast

    for precision, on in (("bf16", True), ("fp32", False), ("auto", False)):
        with autocast("cpu", precision):
            assert torch.is_autocast_enabled("cpu") is on
    with pytest.raises(ValueError, match="fp16"):
        autocast("cpu", "fp16")


def test_precision_is_a_checked_config_choice():
    assert JobConfig().pretrain.precision == JobConfig().rl.precision == "bf16"
    with pytest.raises(InputError, match="rl.precision"):
        JobConfig().with_overrides(["rl.precision=fp16"])


def test_bf16_forward_is_close_to_fp32_and_the_head_honours_fp32_logits():
    from rlscale.rl.model import autocast

    model = small_model()
    tokens = torch.randint(3, 20, (3, 25))
    valid = torch.ones(3, 25, dtype=torch.bool)
    valid[0, :6] = False  # a left-padded row: the masked path too
    with torch.no_grad():
        exact = model(tokens, valid).log_softmax(-1)
        with autocast("cpu", "bf16"):
            mixed = model(tokens, valid)
            assert mixed.dtype == torch.float32  # fp32_logits (the default) even under autocast
            model.fp32_logits = False
            assert model(tokens, valid).dtype == torch.bfloat16
    assert (mixed.log_softmax(-1).exp() - exact.exp()).abs().max() < 0.02
    assert not torch.equal(mixed.log_softmax(-1), exact)  # it really ran in bf16
    from rlscale.rl.model import rope_tables

    x = torch.randn(3, 25, 32)
    rot = rope_tables(torch.arange(25).expand(3, 25), 16, 1e4)
    with autocast("cpu", "bf16"):  # CPU: q, k stay fp32 after RoPE (scores are fp32), v is bf16
        q, k, v = model.blocks[0].heads(x, rot)
    assert (q.dtype, k.dtype, v.dtype) == (torch.float32, torch.float32, torch.bfloat16)


def test_bf16_grads_are_close_to_fp32():
    from rlscale.rl.model import autocast

    tokens = torch.randint(3, 20, (4, 30))
    grads = {}
    for precision in ("fp32", "bf16"):
        model = small_model()
        with autocast("cpu", precision):
            logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                                 tokens[:, 1:].reshape(-1))
        loss.backward()
        grads[precision] = torch.cat([p.grad.flatten() for p in model.parameters()])
    g32, g16 = grads["fp32"], grads["bf16"]
    assert torch.nn.functional.cosine_similarity(g32, g16, dim=0) > 0.99


def test_kl_to_an_identical_reference_is_zero_in_bf16():
    """The policy's head precision is the recipe's (grpo: bf16 logits); the reference must match
    it, or the KL term is non-zero before any update."""
    from rlscale.rl.recipes import resolve
    from rlscale.rl.step import rl_step

    config = JobConfig().with_overrides(SMALL + ["rl.recipe=grpo", "rl.precision=bf16",
                                                 "rl.prompts_per_step=4", "rl.group_size=4",
                                                 "rl.max_new_tokens=20", "rl.ops_max=2"])
    policy, ref = small_model(), small_model()
    assert ref.fp32_logits and not resolve(config.rl).fp32_logits
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    result = rl_step(policy, ref, opt, resolve(config.rl), config.task, seed=0, step=0)
    assert result.metrics["train/kl"] == 0.0


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bucketed_logprobs_do_not_depend_on_the_buckets(precision):
    from rlscale.rl.rollout import rollout, sequence_logprobs
    from rlscale.rl.tasks import sample_problems

    model = small_model()
    problems = sample_problems(3, 5, ops_min=1, ops_max=3, split="train", eval_fraction=0.05)
    ro = rollout(model, problems, group_size=3, max_new_tokens=30,
                 generator=torch.Generator().manual_seed(0))
    assert len(set(ro.response_lens)) > 1 and len(set(ro.prompt_lens)) > 1
    m = ro.response_mask.bool()
    with torch.no_grad():
        one, ent1 = sequence_logprobs(model, ro, with_entropy=True, precision=precision,
                                      bucket_rows=len(ro.texts))
        for rows in (1, 4):
            got, ent = sequence_logprobs(model, ro, with_entropy=True, precision=precision,
                                         bucket_rows=rows)
            tol = 1e-5 if precision == "fp32" else 0.05
            assert torch.allclose(got[m], one[m], atol=tol)
            assert torch.allclose(ent[m], ent1[m], atol=tol)


@pytest.mark.parametrize("masked", [False, True])
def test_bf16_cpu_attention_matches_fp32_attention(masked):
    """The bf16 CPU attention (fp32 scores and softmax, bf16 products) against fp32 SDPA on the
    same bf16 inputs: forward and gradients as close as bf16 products allow."""
    from rlscale.rl.model import _as_mask, _attention

    torch.manual_seed(0)
    B, H, T, hd = 3, 2, 11, 16
    q, k, v = (torch.randn(B, H, T, hd).bfloat16() * 2 for _ in range(3))
    mask = None
    if masked:  # left padding: row 0's first 4 keys hidden, every query sees itself
        allowed = torch.ones(T, T, dtype=torch.bool).tril().expand(B, 1, T, T).clone()
        allowed[0, :, :, :4] = False
        allowed |= torch.eye(T, dtype=torch.bool)
        mask = _as_mask(allowed)
    g = torch.randn(B, H, T, hd)
    q16, k16, v16 = (x.clone().requires_grad_() for x in (q, k, v))
    q32, k32, v32 = (x.float().requires_grad_() for x in (q, k, v))
    y16 = _attention(q16, k16, v16, mask)
    y32 = _attention(q32, k32, v32, mask)  # fp32: torch's SDPA
    assert y16.dtype == torch.bfloat16 and y32.dtype == torch.float32
    assert (y16.float() - y32).abs().max() < 0.03
    (y16.float() * g).sum().backward()
    (y32 * g).sum().backward()
    for a, b in ((q16, q32), (k16, k32), (v16, v32)):
        assert a.grad.dtype == torch.bfloat16
        assert (a.grad.float() - b.grad).norm() / b.grad.norm() < 0.02
    # the scores stay fp32: a logit gap far below bf16's resolution at this size still shows
    q1 = torch.full((1, 1, 1, 2), 8.0).bfloat16()
    k1 = torch.tensor([[[[8.0, 8.0], [8.0, 8.0625]]]]).bfloat16()  # scores 128 and 128.5
    v1 = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]).bfloat16()
    w = _attention(q1, k1, v1, torch.zeros(1, 1, 1, 2)).float()
    exact = torch.softmax(torch.tensor([128.0, 128.5]) * 2 ** -0.5, 0)
    assert torch.allclose(w[0, 0, 0], exact, atol=4e-3)


def test_complex_rope_is_the_real_rotation_bit_for_bit():
    from rlscale.rl.model import apply_rope, rope_tables

    torch.manual_seed(0)
    x = torch.randn(3, 7, 2, 2, 16, requires_grad=True)  # (B, T, q|k, heads, head_dim)
    positions = torch.arange(7).expand(3, 7) + torch.arange(3)[:, None]
    rot = rope_tables(positions, 16, 10000.0)
    cos, sin = rot.real, rot.imag
    x1, x2 = x[..., ::2], x[..., 1::2]
    ref = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    got = apply_rope(x, rot)
    assert torch.equal(got, ref)
    g = torch.randn_like(ref)
    (ref_grad,) = torch.autograd.grad(ref, x, g)
    (got_grad,) = torch.autograd.grad(got, x, g)
    assert torch.allclose(got_grad, ref_grad, atol=1e-6)
    # a rotation: norms of each pair are kept, and position 0 is the identity
    assert torch.allclose(got.unflatten(-1, (8, 2)).norm(dim=-1), x.unflatten(-1, (8, 2)).norm(dim=-1), atol=1e-5)
    assert torch.equal(apply_rope(x[:1, :1], rope_tables(torch.zeros(1, 1, dtype=torch.long), 16, 1e4)), x[:1, :1])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("group,temperature", [(1, 0.0), (4, 1.0)])
def test_both_decoders_sample_the_same(monkeypatch, precision, group, temperature):
    """CPU decodes with each prompt's keys once per group (_GroupedDecoder); the GPU decoder
    (one cache per row, fused SDPA) runs here too, so the GPU path has a CPU-tested twin. With
    temperature 1 rows finish at different steps, so the grouped decoder drops rows too."""
    import rlscale.rl.decode as D
    import rlscale.rl.model as M
    from rlscale.rl.tasks import BOS, EOS, encode, sample_problems

    model = small_model(3)
    with torch.no_grad():  # sharp attention, so that how it is computed shows in the tokens
        for block in model.blocks:
            block.qkv.weight.mul_(25)
    problems = sample_problems(1, 6, ops_min=1, ops_max=3, split="train", eval_fraction=0.05)
    ids, valid = D.pad_left([[BOS, *encode(p.prompt())] for p in problems])
    out = {}
    for grouped in (True, False):
        monkeypatch.setattr(D, "_grouped_decoding", lambda device, g=grouped: g)
        with M.autocast("cpu", precision):
            out[grouped] = D.generate(model, ids, valid, max_new_tokens=40, temperature=temperature,
                                      group=group, generator=torch.Generator().manual_seed(1))
    assert out[True].shape[0] == 6 * group and torch.equal(out[True], out[False])
    if group > 1:
        ended = (out[True] == EOS).any(1)
        assert 0.25 <= ended.float().mean() < 1  # some rows were dropped, some ran on


def test_grouped_sampling_is_sampling_each_prompt_group_times():
    """group=G decodes the same as the prompts repeated G times (greedy, so the rows agree)."""
    import rlscale.rl.decode as M

    model = small_model(2)
    ids, valid = M.pad_left([[1, 5, 6, 7, 8], [1, 9, 10]])
    grouped = M.generate(model, ids, valid, max_new_tokens=12, temperature=0, group=3)
    repeated = M.generate(model, ids.repeat_interleave(3, 0), valid.repeat_interleave(3, 0),
                          max_new_tokens=12, temperature=0)
    assert torch.equal(grouped, repeated)


def test_cuda_attention_never_picks_cudnn():
    # cuDNN SDPA re-plans for every new shape (each decoded token): RL ran 6x slower on an H100.
    # Entering the context sets torch's global backend flags, which a CPU-only torch has too.
    from rlscale.rl.model import _sdpa_context

    cuda = torch.backends.cuda
    with _sdpa_context("cuda"):
        assert not cuda.cudnn_sdp_enabled()
        assert cuda.flash_sdp_enabled() and cuda.mem_efficient_sdp_enabled() and cuda.math_sdp_enabled()
    with _sdpa_context("cpu"):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("fused", [True, False])
def test_rmsnorm_with_autograd_is_the_fused_kernel_and_its_gradients(monkeypatch, fused):
    """RMSNorm under autograd runs _RMSNormFn (fused forward, hand-written backward): the output
    is F.rms_norm's bit for bit, the gradients are those of F.rms_norm's own (composite)
    backward, for a batch with an outlier row and a non-trivial weight. ``fused=False``: the
    forward a torch without ``aten._fused_rms_norm`` takes (output equal to rounding)."""
    import torch.nn.functional as F

    import rlscale.rl.model as M
    from rlscale.rl.model import RMSNorm

    monkeypatch.setattr(M, "_HAS_FUSED_RMS_NORM", fused and M._HAS_FUSED_RMS_NORM)

    torch.manual_seed(0)
    norm = RMSNorm(24)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.3 * torch.randn(24))
    x = torch.randn(3, 5, 24, dtype=torch.float64).float()
    x[1, 2] *= 40
    x.requires_grad_(True)
    grad = torch.randn(3, 5, 24)
    got = norm(x)
    assert got.grad_fn is not None and "RMSNormFn" in type(got.grad_fn).__name__
    gx, gw = torch.autograd.grad(got, (x, norm.weight), grad)
    x64, w64 = x.detach().double().requires_grad_(True), norm.weight.detach().double().requires_grad_(True)
    ref = F.rms_norm(x64, (24,), w64, eps=1e-6)
    rx, rw = torch.autograd.grad(ref, (x64, w64), grad.double())
    with torch.no_grad():
        plain = F.rms_norm(x, (24,), norm.weight, eps=1e-6)
        assert torch.equal(norm(x), plain)  # without autograd: F.rms_norm itself
        assert torch.equal(plain, got.detach()) if fused else torch.allclose(plain, got, atol=1e-5)
    assert torch.allclose(gx.double(), rx, rtol=1e-5, atol=1e-6)
    assert torch.allclose(gw.double(), rw, rtol=1e-5, atol=1e-5)


def test_gather_rows_adds_up_a_strided_gradient():
    """gather_rows is index_select forward and backward, for the strided gradient that a
    concatenation hands back (rows picked several times add up)."""
    from rlscale.rl.model import gather_rows

    torch.manual_seed(0)
    src = torch.randn(3, 2, 4, 5, requires_grad=True)
    idx = torch.tensor([2, 0, 2, 2, 1])
    own = torch.randn(5, 2, 3, 5)
    weight = torch.randn(5, 2, 7, 5)
    grads = []
    for gather in (gather_rows, lambda x, i: x.index_select(0, i)):
        out = torch.cat([gather(src, idx), own], 2)  # the prefix's keys, then the row's own
        grads.append(torch.autograd.grad((out * weight).sum(), src)[0])
    assert torch.equal(gather_rows(src, idx), src.index_select(0, idx))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert grads[0][2].abs().sum() > 0 and not torch.equal(grads[0][0], grads[0][2])


def test_inverse_cdf_sampling_draws_from_the_softmax():
    """sample_tokens against the exact distribution: a chi-square test over 200k draws (seeded,
    so deterministic) at temperatures 1 and 0.5, with a token of probability ~1e-10 that must
    (almost) never appear and one of exactly 0 that never may; temperature 0 is the argmax."""
    from rlscale.rl.decode import sample_tokens

    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -20.0, float("-inf"), 1.5])
    n = 200_000
    for temperature in (1.0, 0.5):
        tok = sample_tokens(logits.expand(n, -1), temperature, torch.Generator().manual_seed(7))
        counts = torch.bincount(tok, minlength=len(logits)).double()
        p = torch.softmax(logits.double() / temperature, -1)
        assert counts[6] == 0 and counts[5] <= 1
        live = p > 1e-6
        chi2 = ((counts[live] - n * p[live]) ** 2 / (n * p[live])).sum().item()
        assert chi2 < 24.3, (temperature, chi2)  # 99.95% quantile, 5 degrees of freedom
    x = torch.randn(4, 9)
    assert torch.equal(sample_tokens(x, 0.0), x.argmax(-1))
    a = sample_tokens(x.repeat(50, 1), 1.0, torch.Generator().manual_seed(3))
    b = sample_tokens(x.repeat(50, 1), 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.max() < 9
    # all the mass on the last token: no draw runs past the end of the vocabulary
    last = torch.full((1000, 5), -1e4).index_fill_(1, torch.tensor([4]), 0.0)
    assert (sample_tokens(last, 1.0, torch.Generator().manual_seed(0)) == 4).all()
