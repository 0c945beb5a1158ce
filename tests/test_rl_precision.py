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
def test_both_kv_cache_layouts_sample_the_same(monkeypatch, precision):
    """CPU decodes over keys cached transposed; the GPU layout (fused SDPA over the cache) runs
    here too, so the GPU path has a CPU-tested twin."""
    import rlscale.rl.model as M
    from rlscale.rl.tasks import BOS, encode, sample_problems

    model = small_model(3)
    with torch.no_grad():  # sharp attention, so that how it is computed shows in the tokens
        for block in model.blocks:
            block.qkv.weight.mul_(25)
    problems = sample_problems(1, 6, ops_min=1, ops_max=3, split="train", eval_fraction=0.05)
    ids, valid = M.pad_left([[BOS, *encode(p.prompt())] for p in problems])
    out = {}
    for transposed in (True, False):
        monkeypatch.setattr(M, "_keys_transposed", lambda device, t=transposed: t)
        with M.autocast("cpu", precision):
            out[transposed] = M.generate(model, ids, valid, max_new_tokens=30, temperature=0)
    assert out[True].shape[1] == 30 and torch.equal(out[True], out[False])


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
