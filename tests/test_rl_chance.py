"""The task without a guessing floor: several-digit values, verified-only reward, the chance
level of any task config, and the pretraining density dial (``pretrain.hard_share``)."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys

import pytest

from rlscale.rl.chance import chance_levels
from rlscale.rl.config import JobConfig, TaskConfig, base_hash
from rlscale.rl.tasks import apply, sample_problems, score, verified

TWO_DIGITS = TaskConfig(digits=2, operators="+-", reward="verified")


def _digest(problems) -> str:
    text = "|".join(p.prompt() + p.solution("worked") for p in problems)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize(("task", "digest"), [
    (TaskConfig(), "d551b9f3de3c83af"),
    (TaskConfig(shuffle=True, n_base=2, const_prob=0.25), "97423cc096c9d893"),
])
def test_one_digit_task_draws_the_problems_it_always_drew(task, digest):
    # digests of the problems the task drew before digits/reward existed (commit 8824365)
    problems = sample_problems(3, 200, ops_min=1, ops_max=6, split="train", **task.problem_kwargs())
    assert _digest(problems) == digest


def test_old_configs_keep_their_hashes():
    old = JobConfig.from_stored({"task": {"shuffle": False}, "pretrain": {"precision": "bf16"},
                                 "rl": {"precision": "bf16"}})
    assert old.task.digits == 1 and old.task.reward == "answer"
    assert old.pretrain.hard_share == 0.0
    assert base_hash(old) == base_hash(JobConfig())
    two = JobConfig().with_overrides(["task.digits=2"])
    assert base_hash(two) != base_hash(JobConfig())


def test_digits_act_place_by_place_mod_10():
    assert apply("+", 45, 7, 2) == 42  # 4+0, 5+7 -> 2
    assert apply("-", 4, 84, 2) == 20  # 0-8 -> 2, 4-4 -> 0
    assert apply("*", 37, 23, 2) == 61  # 3*2, 7*3 -> 1
    assert apply("*", 7, 8, 1) == 6
    p = sample_problems(0, 1, ops_min=3, ops_max=3, split="train",
                        **TWO_DIGITS.problem_kwargs())[0]
    worked = p.solution("worked")
    numbers = [tok for tok in worked.replace(";", "=").replace("#", "=").split("=")
               if tok.isdigit()]
    assert numbers and all(len(n) == 2 for n in numbers)
    assert score(p, worked) == 1.0


def test_verified_only_rewards_checked_work_not_bare_answers():
    p = sample_problems(0, 1, ops_min=2, ops_max=2, split="train",
                        **TWO_DIGITS.problem_kwargs())[0]
    direct, worked, compact = (p.solution(f) for f in ("direct", "worked", "compact"))
    assert score(p, direct) == 1.0 and score(p, direct, verified_only=True) == 0.0
    assert not verified(p, direct)
    assert verified(p, worked) and verified(p, compact)
    wrong = worked[:-2] + p.text((p.answer + 1) % 100)
    assert not verified(p, wrong) and score(p, wrong) == 0.0


def test_chance_level_of_one_digit_task_is_a_floor_and_two_digits_removes_it():
    one = chance_levels(TaskConfig(), [1, 3, 5], problems=2000)
    assert all(c.answer > 0.12 for c in one)  # mod 10 guessing is well above 1 in 10
    assert all(c.reward == c.answer for c in one)  # a bare answer earns the reward
    two = chance_levels(TWO_DIGITS, [1, 3, 5], problems=2000)
    assert all(c.answer <= 0.02 for c in two)
    assert all(c.reward <= c.answer for c in two)
    assert two[-1].reward == 0.0  # guessing five two-digit results in a row
    # a multiplicative task leaks: products by an even literal are even
    mul = chance_levels(TaskConfig(operators="*"), [1], problems=2000)[0]
    assert mul.answer > 0.2


def test_chance_cli_prints_per_difficulty_without_torch_imports():
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys; from rlscale.cli import main\n"
         "try:\n main(['chance', '--set', 'task.digits=2', '--set', 'task.operators=+-',"
         " '--difficulties', '1,2', '--problems', '400'])\n"
         "except SystemExit as e:\n print('torch' in sys.modules, e.code)"],
        capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("task: arith-graph, 2 digit(s)")
    assert [ln.split()[0] for ln in lines[2:4]] == ["1", "2"]
    assert lines[-1] == "False 0"


def test_hard_share_puts_problems_beyond_the_range():
    pytest.importorskip("torch")
    from rlscale.rl.pretrain import pretrain_problems

    cfg = JobConfig().with_overrides(["pretrain.ops_max=3"])
    plain = pretrain_problems(cfg, 0, 2000, random.Random(0))
    assert max(p.ops for p in plain) == 3
    dense = cfg.with_overrides(["pretrain.hard_share=0.02", "pretrain.hard_ops=2"])
    mixed = pretrain_problems(dense, 0, 2000, random.Random(0))
    beyond = [p.ops for p in mixed if p.ops > 3]
    assert 20 <= len(beyond) <= 60 and set(beyond) <= {4, 5} and len(set(beyond)) == 2
    # the rest of the pool is the same problems as without the dial
    same = sum(a.prompt() == b.prompt() for a, b in zip(plain, mixed))
    assert same == 2000 - len(beyond)
    with pytest.raises(Exception, match="pretrain.hard_share"):
        cfg.with_overrides(["pretrain.hard_share=1.5"])


def test_rl_warmup_ramps_the_learning_rate_then_holds_it():
    pytest.importorskip("torch")
    from rlscale.rl.runner import warmup_lr

    rl = JobConfig().with_overrides(["rl.lr=1e-3", "rl.warmup_steps=4"]).rl
    assert [warmup_lr(rl, s) for s in range(6)] == pytest.approx(
        [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert warmup_lr(JobConfig().rl, 0) == JobConfig().rl.lr  # no warm-up: the old behaviour


def test_density_dial_teaches_a_tiny_base_what_lies_beyond_its_range(tmp_path, monkeypatch):
    """Two tiny bases, the same but for pretrain.hard_share: the one shown 30% of problems beyond
    its range predicts worked solutions of those difficulties far better (teacher forced)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from rlscale.rl.pretrain import encode_example, get_base

    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path))
    base = JobConfig().with_overrides([
        "task.operators=+-", "task.reward=verified", "model.d_model=32", "model.n_layers=1",
        "model.n_heads=2", "model.max_len=96", "pretrain.tokens=400000", "pretrain.ops_max=1",
        "pretrain.mix_worked=1", "pretrain.mix_direct=0", "pretrain.batch_size=32",
        "pretrain.precision=fp32", "pretrain.hard_ops=2"])
    hard = sample_problems(1, 32, ops_min=3, ops_max=3, split="eval",
                           **base.task.problem_kwargs())

    def loss(share: float) -> float:
        torch.manual_seed(0)
        model, _ = get_base(base.with_overrides([f"pretrain.hard_share={share}"]),
                            progress=False)
        total, n = 0.0, 0
        with torch.no_grad():
            for p in hard:
                ids, start = encode_example(p.prompt(), p.solution("worked"))
                x = torch.tensor([ids])
                logits = model(x[:, :-1])[0, start - 1:]
                total += F.cross_entropy(logits, x[0, start:], reduction="sum").item()
                n += len(ids) - start
        return total / n

    assert loss(0.3) < 0.8 * loss(0.0)  # measured: 1.48 against 3.72 nats per token
