"""RL building blocks: config, task, pass@k, loss functions, FLOP counts, model (tiny, CPU)."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys

import pytest

from rlscale.errors import InputError
from rlscale.rl.config import JobConfig
from rlscale.rl.evaluate import ks_for, pass_at_k
from rlscale.rl.tasks import (FORMATS, decode, encode, make_problem, response_format, sample_problems,
                              score, token_roles)

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

TINY = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2"]


# -- config ---------------------------------------------------------------------------------------
def test_overrides_are_typed_and_checked():
    c = JobConfig().with_overrides(["rl.lr=1e-4", "pretrain.tokens=2e6", "rl.recipe=dapo",
                                    "rl.edge_filter=true", "seed=3", "rl.kl_coef=none"])
    assert (c.rl.lr, c.pretrain.tokens, c.rl.recipe, c.rl.edge_filter, c.seed) == (
        1e-4, 2_000_000, "dapo", True, 3)
    with pytest.raises(InputError, match=r"rl.lr='fast'.*expected a number"):
        JobConfig().with_overrides(["rl.lr=fast"])
    with pytest.raises(InputError, match=r"pretrain.tokens='1.5'.*an integer"):
        JobConfig().with_overrides(["pretrain.tokens=1.5"])
    with pytest.raises(InputError, match=r"unknown key 'rl.lrr'.*rl.lr"):
        JobConfig().with_overrides(["rl.lrr=1"])
    with pytest.raises(InputError, match=r"rl.recipe='ppo2' is not allowed"):
        JobConfig().with_overrides(["rl.recipe=ppo2"])


def test_from_dict_and_toml_round_trip(tmp_path):
    with pytest.raises(InputError, match=r"unknown key 'model.width'.*model.d_model"):
        JobConfig.from_dict({"model": {"width": 3}})
    with pytest.raises(InputError, match=r"rl.steps='ten'"):
        JobConfig.from_dict({"rl": {"steps": "ten"}})
    path = tmp_path / "job.toml"
    path.write_text('seed = 4\n[rl]\nrecipe = "scalerl"\nlr = 1e-4\n[pretrain]\ntokens = 1000\n')
    c = JobConfig.from_toml(path)
    assert (c.seed, c.rl.recipe, c.pretrain.tokens) == (4, "scalerl", 1000)
    assert JobConfig.from_dict(c.to_dict()) == c
    assert c.hash() == JobConfig.from_dict(c.to_dict()).hash() != JobConfig().hash()
    assert c.with_overrides(["run_id=x", "device=cpu"]).hash() == c.hash()


def test_import_rlscale_and_cli_do_not_import_torch():
    code = ("import sys, rlscale, rlscale.cli, rlscale.rl.config, rlscale.rl.flops; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- task -----------------------------------------------------------------------------------------
def test_every_format_scores_and_corruptions_do_not():
    rng = random.Random(0)
    for ops in range(1, 7):
        p = make_problem(rng, ops=ops)
        for fmt in FORMATS:
            sol = p.solution(fmt)
            assert response_format(sol) == fmt and score(p, sol) == 1.0
            wrong = sol[:-1] + str((p.answer + 1) % 10)
            assert score(p, wrong) == 0.0
        worked = p.solution("worked")
        i = worked.index("=", worked.index("=", worked.index("=") + 1) + 1) + 1  # first result
        bad_step = worked[:i] + str((int(worked[i]) + 1) % 10) + worked[i + 1:]
        assert score(p, bad_step) == 0.0  # right answer, wrong intermediate value
        assert decode(encode(worked)) == worked
    assert score(p, "garbage") == 0.0


def test_token_roles_split_plan_and_exec():
    roles = token_roles("c=a+b=1+2=3;#3")
    assert "".join(r[0] for r in roles) == "pppppp" + "eeeeee" + "aa"


def test_splits_are_disjoint_and_deterministic():
    kw = dict(ops_min=1, ops_max=3, eval_fraction=0.05)
    train = sample_problems(1, 3000, split="train", **kw)
    held = sample_problems(2, 300, split="eval", **kw)
    assert not {p.prompt() for p in train} & {p.prompt() for p in held}
    assert [p.prompt() for p in sample_problems(1, 50, split="train", **kw)] == [
        p.prompt() for p in train[:50]]


def test_unshuffled_prompts_list_the_same_graph_in_dependency_order():
    rng_a, rng_b = random.Random(5), random.Random(5)
    for _ in range(50):
        a = make_problem(rng_a, ops=4)
        b = make_problem(rng_b, ops=4, shuffle=False)
        assert (a.base, a.steps) == (b.base, b.steps) and b.order == tuple(range(6))
        stmts = b.prompt().split("?")[0].split(",")
        assert stmts[2:] == [f"{s.out}={s.left}{s.op}{s.right}" for s in b.steps]
        assert sorted(a.prompt().split("?")[0].split(",")) == sorted(stmts)
        assert score(b, b.solution("worked")) == 1.0


# -- pass@k ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,c", [(4, 0), (4, 1), (5, 2), (6, 6), (8, 3)])
def test_pass_at_k_matches_brute_force(n, c):
    outcomes = [1] * c + [0] * (n - c)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(range(n), k))
        brute = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)
    assert ks_for(16) == [1, 2, 4, 8, 16] and ks_for(6) == [1, 2, 4, 6]


# -- losses ---------------------------------------------------------------------------------------
def test_advantage_normalisations_by_hand():
    from rlscale.rl.grpo import group_advantages, zero_variance

    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    none = group_advantages(r, norm="none")
    assert torch.allclose(none, torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.25, 0.25, 0.25, -0.75]]))
    group = group_advantages(r, norm="group", eps=0)
    s2 = math.sqrt(3 / 16)  # std of (1,1,1,0)
    assert torch.allclose(group, torch.tensor([[1.0, -1, -1, 1], [0.25 / s2] * 3 + [-0.75 / s2]]))
    batch = group_advantages(r, norm="batch", eps=0)
    sb = math.sqrt((4 * 0.25 + 3 * 0.0625 + 0.5625) / 8)
    assert torch.allclose(batch, none / sb)
    assert zero_variance(torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])).tolist() == [True, False, True]


def test_ppo_clip_higher_and_cispo_by_hand():
    from rlscale.rl.grpo import cispo_token_loss, kl_k3, ppo_token_loss

    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[0.7, 1.0, 1.5]])).requires_grad_()
    adv = torch.tensor([[2.0]])
    loss, clipped = ppo_token_loss(logp, old, adv, clip_low=0.2, clip_high=0.28)
    # A > 0: ratio 0.7 is not clipped from below (min keeps r*A); 1.5 is clipped at 1.28
    assert torch.allclose(loss, torch.tensor([[-1.4, -2.0, -2.56]]))
    assert clipped.tolist() == [[False, False, True]]
    loss.sum().backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1.4, -2.0, 0.0]]))  # d(-r*A)/dlogp = -r*A
    loss_n, clipped_n = ppo_token_loss(logp.detach(), old, -adv, clip_low=0.2, clip_high=0.28)
    assert torch.allclose(loss_n, torch.tensor([[1.6, 2.0, 3.0]]))  # A<0: 0.7 clipped up to 0.8
    assert clipped_n.tolist() == [[True, False, False]]
    logp2 = logp.detach().clone().requires_grad_()
    loss_c, trunc = cispo_token_loss(logp2, old, adv, clip_high=0.28)
    w = torch.tensor([[0.7, 1.0, 1.28]])
    assert torch.allclose(loss_c, -w * 2.0 * logp2.detach()) and trunc.tolist() == [[False, False, True]]
    loss_c.sum().backward()
    assert torch.allclose(logp2.grad, -w * 2.0)  # every token keeps a gradient
    ref = torch.log(torch.tensor([[0.5, 1.0, 1.0]]))
    d = ref - logp.detach()
    assert torch.allclose(kl_k3(logp.detach(), ref), d.exp() - d - 1)
    assert kl_k3(logp.detach(), logp.detach()).abs().max() == 0


def test_loss_aggregations_by_hand():
    from rlscale.rl.grpo import aggregate

    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]])
    kw = dict(group_size=2, max_len=5)
    assert aggregate(loss, mask, mode="token-mean", **kw).item() == pytest.approx(14 / 7)
    assert aggregate(loss, mask, mode="seq-mean", **kw).item() == pytest.approx((2 + 4 + 1 + 2) / 4)
    assert aggregate(loss, mask, mode="prompt-mean", **kw).item() == pytest.approx((10 / 4 + 4 / 3) / 2)
    assert aggregate(loss, mask, mode="constant", **kw).item() == pytest.approx(14 / 20)


# -- FLOPs and model ------------------------------------------------------------------------------
def test_flop_counts_match_the_model_shapes():
    from torch.utils.flop_counter import FlopCounterMode

    from rlscale.rl.flops import forward_flops, generation_flops, linear_flops
    from rlscale.rl.model import Transformer
    from rlscale.rl.tasks import VOCAB_SIZE

    c = JobConfig().with_overrides(TINY).model
    d, L, ff, V = 32, 2, 128, VOCAB_SIZE
    assert linear_flops(c) == 2 * (L * (3 * d * d + d * d + 2 * d * ff) + d * V)
    model = Transformer(c)
    T = 17
    with FlopCounterMode(display=False) as counter:
        model(torch.randint(3, V, (1, T)))
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    assert counts == {"aten.mm": T * linear_flops(c)}  # every weight matrix, exactly
    # attention (torch's CPU counter skips SDPA): q.k and w.v as plain matmuls over the square;
    # causal attention needs only the lower triangle, query i seeing i+1 keys
    q = torch.randn(1, 2, T, d // 2)
    with FlopCounterMode(display=False) as counter:
        (q @ q.transpose(-1, -2)) @ q
    square = sum(counter.get_flop_counts()["Global"].values())
    assert L * square == 4 * L * d * T * T
    assert forward_flops(c, T) == T * linear_flops(c) + 4 * L * d * T * (T + 1) // 2
    g = generation_flops(c, 10, 5)
    assert g["prefill"] == forward_flops(c, 10) - 9 * 2 * d * V  # LM head on the last position only
    assert g["decode"] == sum(linear_flops(c) + 4 * L * d * (10 + j + 1) for j in range(4))


def test_log_prob_pass_runs_each_prompt_once_per_group_as_counted():
    """What sequence_logprobs multiplies (FlopCounterMode, fp32: every weight matrix; SDPA is
    not counted on CPU) is the linear part of group_forward_flops: the prompt once, not once per
    sample."""
    from torch.utils.flop_counter import FlopCounterMode

    from rlscale.rl.flops import group_forward_flops, head_flops, linear_flops
    from rlscale.rl.model import Transformer
    from rlscale.rl.rollout import forward_flops, rollout, sequence_logprobs
    from rlscale.rl.tasks import sample_problems

    c = JobConfig().with_overrides(TINY).model
    torch.manual_seed(0)
    model = Transformer(c)
    problems = sample_problems(2, 1, ops_min=2, ops_max=2, split="train", eval_fraction=0.05)
    ro = rollout(model, problems, group_size=4, max_new_tokens=40,
                 generator=torch.Generator().manual_seed(0), precision="fp32")
    P, Ns = ro.prompt_lens[0], ro.response_lens
    assert len(set(Ns)) > 1
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        sequence_logprobs(model, ro, precision="fp32", bucket_rows=1)  # no padding
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    lin = P * linear_flops(c) - (P - 1) * head_flops(c) + sum(n - 1 for n in Ns) * linear_flops(c)
    assert counts == {"aten.mm": lin}
    L, d = c.n_layers, c.d_model
    keys = P * (P + 1) // 2 + sum((n - 1) * P + (n - 1) * n // 2 for n in Ns)
    assert forward_flops(c, ro) == group_forward_flops(c, P, Ns) == lin + 4 * L * d * keys


def test_kv_cached_sampling_matches_a_full_forward():
    from rlscale.rl.model import Transformer
    from rlscale.rl.decode import generate, pad_left

    torch.manual_seed(0)
    model = Transformer(JobConfig().with_overrides(TINY).model)
    ids, valid = pad_left([[1, 5, 6, 7, 8], [1, 9, 10]])
    out = generate(model, ids, valid, max_new_tokens=8, temperature=0)
    full = torch.cat([ids, out], 1)
    kv = torch.cat([valid, torch.ones_like(out, dtype=torch.bool)], 1)
    greedy = model(full, kv)[:, ids.shape[1] - 1:-1].argmax(-1)
    assert torch.equal(greedy, out)
    alone = model(torch.tensor([[1, 9, 10]]))
    padded = model(ids[1:], valid[1:])[:, 2:]
    assert torch.allclose(alone, padded, atol=1e-5)  # left padding does not change logits
