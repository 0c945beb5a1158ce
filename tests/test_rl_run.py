"""RL jobs end to end on tiny models: smoke, determinism, SIGKILL + resume, CLI (CPU, seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
from click.testing import CliRunner

from rlscale.rl.config import JobConfig
from rlscale.store import Store

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

TINY = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.max_len=96",
        "pretrain.tokens=30000", "pretrain.ops_max=2", "rl.steps=4", "rl.prompts_per_step=4",
        "rl.group_size=4", "rl.max_new_tokens=40", "rl.ops_max=2", "eval.every=2",
        "eval.problems=3", "eval.samples=4", "eval.ops_max=2", "device=cpu"]


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "rlcache"
    monkeypatch.setenv("RLSCALE_CACHE", str(root))
    return root


def curve(store, run_id):
    df = Store(store).read_points(runs=[run_id])
    return df.sort_values(["metric", "step"]).reset_index(drop=True)


@pytest.mark.parametrize("recipe", ["grpo", "scalerl"])
def test_two_rl_steps_change_parameters_with_finite_losses(tmp_path, recipe):
    from rlscale.rl.pretrain import get_base
    from rlscale.rl.recipes import resolve
    from rlscale.rl.step import rl_step

    config = JobConfig().with_overrides(TINY + [f"rl.recipe={recipe}", "rl.minibatches=2"])
    rl = resolve(config.rl)
    policy, _ = get_base(config, progress=False)
    ref, _ = get_base(config, progress=False)
    before = [p.detach().clone() for p in policy.parameters()]
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    for step in range(2):
        result = rl_step(policy, ref, opt, rl, config.task, seed=0, step=step)
        assert result.flops > 0 and result.tokens > 0
        if result.metrics["train/trained_prompts"]:
            assert all(map(lambda v: v == v and abs(v) < 1e6, result.metrics.values()))
    if recipe == "grpo":  # no zero-variance filter: the update always runs
        assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_same_seed_same_curve_and_points_schema(tmp_path):
    from rlscale.rl.runner import run_job

    config = JobConfig().with_overrides(TINY + ["rl.recipe=grpo"])
    a = run_job(config.with_overrides(["run_id=a"]), store=tmp_path, progress=False)
    b = run_job(config.with_overrides(["run_id=b"]), store=tmp_path, progress=False)
    ca, cb = curve(tmp_path, a), curve(tmp_path, b)
    assert ca[["step", "metric", "value", "flops", "tokens"]].equals(cb[["step", "metric", "value", "flops", "tokens"]])
    metrics = set(ca["metric"])
    assert {"eval/mean@4", "eval/pass@1", "eval/pass@4", "eval/ops=2/pass@1", "train/reward",
            "train/kl", "train/entropy", "train/clip_frac", "train/format_share/worked"} <= metrics
    assert sorted(ca[ca.metric == "eval/mean@4"].step) == [0, 2, 4]
    assert (ca.groupby("step").flops.first().diff().dropna() > 0).all()
    meta = Store(tmp_path).read_meta(a)
    assert meta.status == "complete" and meta.recipe == "grpo" and meta.model == "d32-L2"
    assert meta.metadata["pretrain_tokens"] == 30000 and meta.metadata["kl_coef"] == 0.04
    assert JobConfig.from_dict(meta.config).rl.recipe == "grpo"
    assert (tmp_path / "_ckpt" / a / "ckpt.pt").is_file() and Store(tmp_path).run_ids() == ["a", "b"]
    c = run_job(config.with_overrides(["run_id=c", "seed=1"]), store=tmp_path, progress=False)
    assert not curve(tmp_path, c)["value"].equals(ca["value"])


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(1)
    from rlscale.rl import runner
    from rlscale.rl.config import JobConfig
    real = runner.rl_step
    def dying(*args, step, **kw):
        if step == 3:  # the 4th step: after the checkpoint at step 2, mid-interval
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, step=step, **kw)
    runner.rl_step = dying
    config = JobConfig.from_dict(__import__("json").loads(sys.argv[1]))
    runner.run_job(config, store=sys.argv[2], progress=False)
""")


def test_sigkilled_run_resumes_to_the_same_curve(tmp_path, cache):
    from rlscale.rl.runner import run_job

    config = JobConfig().with_overrides(TINY + ["rl.recipe=dapo", "rl.steps=6", "run_id=k"])
    whole = run_job(config.with_overrides(["run_id=whole"]), store=tmp_path / "a", progress=False)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "RLSCALE_CACHE": str(cache)}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, json.dumps(config.to_dict()),
                           str(tmp_path / "b")], env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    st = Store(tmp_path / "b")
    assert st.read_meta("k").status == "running"
    assert curve(tmp_path / "b", "k").step.max() == 2  # the third step finished, unsaved: lost
    saved = JobConfig.from_dict(st.read_meta("k").config)
    run_job(saved, store=st, resume=True, progress=False)
    assert st.read_meta("k").status == "complete"
    cols = ["step", "metric", "value", "flops", "tokens"]
    assert curve(tmp_path / "b", "k")[cols].equals(curve(tmp_path / "a", whole)[cols])


def test_cli_run_dry_run_resume_errors_and_help(tmp_path):
    from rlscale.cli import main

    runner = CliRunner()
    out = runner.invoke(main, ["run", "--dry-run", "--set", "rl.steps=10"], catch_exceptions=False)
    assert out.exit_code == 0 and '"device_hours"' in out.output and '"steps": 10' in out.output
    bad = runner.invoke(main, ["run", "--set", "rl.lr=fast", "--store", str(tmp_path)])
    assert bad.exit_code != 0 and "rl.lr='fast'" in bad.output and "a number" in bad.output
    assert not (tmp_path / "store").exists()
    gone = runner.invoke(main, ["run", "--resume", "nope", "--store", str(tmp_path)])
    assert gone.exit_code != 0 and "no run 'nope'" in gone.output
    args = ["--no-progress", "--store", str(tmp_path)] + sum((["--set", s] for s in TINY), [])
    ok = runner.invoke(main, ["run", *args, "--set", "rl.steps=2", "--set", "run_id=cli"],
                       catch_exceptions=False)
    assert ok.exit_code == 0 and "wrote run cli" in ok.output
    again = runner.invoke(main, ["run", *args, "--set", "rl.steps=2", "--set", "run_id=cli"])
    assert again.exit_code != 0 and "--resume cli" in again.output
    for name in ("run", "pretrain"):
        assert "Example" in runner.invoke(main, [name, "--help"]).output


def test_batched_sampling_equals_one_row_at_a_time():
    from rlscale.rl.decode import generate, pad_left
    from rlscale.rl.pretrain import get_base
    from rlscale.rl.tasks import BOS, EOS, encode, sample_problems

    # the original graph task and an even format mix: this tiny base ends some greedy rows early
    config = JobConfig().with_overrides(TINY + ["task.shuffle=true", "task.n_base=2",
                                                "task.const_prob=0.25", "pretrain.mix_worked=0.5",
                                                "pretrain.mix_direct=0.5"])
    model, _ = get_base(config, progress=False)
    problems = sample_problems(0, 12, ops_min=1, ops_max=2, split="train",
                               **config.task.problem_kwargs())
    # prompts end part-way into worked solutions, so greedy rows finish at different steps
    rows = [[BOS, *encode(p.prompt() + p.solution("worked")[:i])] for i, p in enumerate(problems)]
    ids, valid = pad_left(rows)
    batch = generate(model, ids, valid, max_new_tokens=30, temperature=0)
    lengths = set()
    for i, r in enumerate(rows):
        alone = generate(model, *pad_left([r]), max_new_tokens=30, temperature=0)[0].tolist()
        got = batch[i, :len(alone)].tolist()
        assert got == alone and (batch[i, len(alone):] == 0).all()
        lengths.add(alone.index(EOS) if EOS in alone else 30)
    assert len(lengths) > 1  # rows finish at different steps, so finished rows get dropped


def test_packed_logprobs_equal_the_left_padded_masked_forward():
    from rlscale.rl.grpo import token_logprobs
    from rlscale.rl.pretrain import get_base
    from rlscale.rl.rollout import rollout, sequence_logprobs
    from rlscale.rl.tasks import sample_problems

    config = JobConfig().with_overrides(TINY)
    model, _ = get_base(config, progress=False)
    problems = sample_problems(3, 5, ops_min=1, ops_max=2, split="train", eval_fraction=0.05)
    ro = rollout(model, problems, group_size=3, max_new_tokens=30,
                 generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        packed, _ = sequence_logprobs(model, ro)
        full = torch.cat([ro.prompt_ids, ro.response_ids], 1)[:, :-1]
        valid = torch.cat([ro.prompt_valid, ro.response_mask.bool()], 1)[:, :-1]
        Lp = ro.prompt_ids.shape[1]
        masked = token_logprobs(model(full, valid)[:, Lp - 1:], ro.response_ids)
    m = ro.response_mask.bool()
    assert torch.allclose(packed[m], masked[m], atol=1e-4)


def test_shared_prompt_logprobs_give_the_per_sequence_gradient():
    """sequence_logprobs runs each group's prompt once; the gradient must still reach the
    weights through the prompt's keys and values, as in a forward over each sequence alone."""
    from rlscale.rl.grpo import token_logprobs
    from rlscale.rl.model import Transformer
    from rlscale.rl.rollout import rollout, sequence_logprobs
    from rlscale.rl.tasks import sample_problems

    torch.manual_seed(0)
    model = Transformer(JobConfig().with_overrides(TINY).model)
    problems = sample_problems(4, 3, ops_min=1, ops_max=3, split="train", eval_fraction=0.05)
    ro = rollout(model, problems, group_size=3, max_new_tokens=20,
                 generator=torch.Generator().manual_seed(0), precision="fp32")
    m = ro.response_mask
    weights = torch.randn(m.shape) * m

    def grads(logp):
        model.zero_grad()
        (logp * weights).sum().backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    shared = grads(sequence_logprobs(model, ro, precision="fp32", bucket_rows=4)[0])
    full = torch.cat([ro.prompt_ids, ro.response_ids], 1)[:, :-1]
    valid = torch.cat([ro.prompt_valid, m.bool()], 1)[:, :-1]
    Lp = ro.prompt_ids.shape[1]
    alone = grads(token_logprobs(model(full, valid)[:, Lp - 1:], ro.response_ids))
    assert torch.allclose(shared, alone, atol=1e-5, rtol=1e-4)


class _RunsCode:
    """Pickles to a call of os.system: what a crafted checkpoint in a shared store would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_never_runs_code_from_a_checkpoint_and_names_a_damaged_one(tmp_path):
    from rlscale.cli import main

    runner = CliRunner()
    store = tmp_path / "store"
    args = ["--no-progress", "--store", str(store)] + sum((["--set", s] for s in TINY), [])
    ok = runner.invoke(main, ["run", *args, "--set", "rl.steps=2", "--set", "run_id=r"],
                       catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    ckpt = store / "_ckpt" / "r" / "ckpt.pt"
    good = torch.load(ckpt, weights_only=True)  # what rlscale writes loads as plain data
    assert set(good) == {"policy", "opt", "ref", "state"} and good["state"]["step"] == 2
    before = curve(store, "r")
    marker = tmp_path / "pwned"
    torch.save({**good, "state": _RunsCode(marker)}, ckpt)
    crafted = runner.invoke(main, ["run", "--resume", "r", "--store", str(store)])
    assert not marker.exists()
    assert crafted.exit_code != 0 and str(ckpt) in crafted.output
    assert "Traceback" not in crafted.output and "Error: " in crafted.output.splitlines()[-1]
    torch.save(good, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 3])  # a crash mid-copy
    cut = runner.invoke(main, ["run", "--resume", "r", "--store", str(store)])
    assert cut.exit_code != 0 and str(ckpt) in cut.output and "damaged" in cut.output
    assert curve(store, "r").equals(before) and Store(store).read_meta("r").status == "complete"


def test_minibatches_move_the_ratio_and_the_clip_acts():
    """On-policy (one update) the ratio is exactly 1 and nothing clips; with several minibatch
    updates per rollout batch the later ones are off-policy, so the ratio departs and clips."""
    from rlscale.rl.pretrain import get_base
    from rlscale.rl.recipes import RECIPES, resolve
    from rlscale.rl.step import rl_step

    assert RECIPES["dapo"].minibatches > 1 and RECIPES["grpo"].minibatches == 1
    out = {}
    for recipe, mb in (("cispo", 1), ("cispo", 4), ("grpo", 4)):
        # a tight clip (1e-3) so that a tiny model's small ratio moves reach it
        config = JobConfig().with_overrides(TINY + [f"rl.recipe={recipe}", f"rl.minibatches={mb}",
                                                    "rl.clip_low=1e-3", "rl.clip_high=1e-3"])
        rl = resolve(config.rl)
        policy, _ = get_base(config, progress=False)
        opt = torch.optim.AdamW(policy.parameters(), lr=0.3)  # large: the ratio moves in one update
        out[recipe, mb] = rl_step(policy, None, opt, rl, config.task, seed=0, step=0).metrics
    assert out["cispo", 1]["train/ratio_dev"] == 0 and out["cispo", 1]["train/clip_frac"] == 0
    # the tiny base earns no reward (advantages 0), so ppo's clip has nothing to bind on; cispo's
    # truncation counts ratios above 1 + clip_high whatever the advantage
    assert out["grpo", 4]["train/ratio_dev"] > 1e-3
    assert out["cispo", 4]["train/ratio_dev"] > 1e-3 and out["cispo", 4]["train/clip_frac"] > 0


def test_minibatches_knob_keeps_legacy_hashes():
    """minibatches moved into the recipe: a stored run at minibatches = 1 keeps its hash."""
    from rlscale.rl.recipes import resolve

    old = JobConfig().with_overrides(["rl.recipe=grpo"])
    explicit = JobConfig().with_overrides(["rl.recipe=grpo", "rl.minibatches=1"])
    assert (replace(old, rl=resolve(old.rl)).hash()
            == replace(explicit, rl=resolve(explicit.rl)).hash())
    assert resolve(old.rl).to_dict()["minibatches"] == 1
    assert JobConfig().with_overrides(["rl.recipe=dapo"]).rl.minibatches == 4


def test_two_processes_needing_one_new_base_train_it_once(tmp_path, monkeypatch):
    """A sweep and `rlscale pretrain` (or two sweeps) asking for the same new base: the lock
    makes the second wait for the first one's copy instead of training it again."""
    import threading
    import time

    import rlscale.rl.pretrain as pt

    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path / "cache"))
    config = JobConfig().with_overrides(TINY + ["pretrain.seed=7"])
    calls = []
    real = pt.pretrain

    def slow_pretrain(cfg, **kw):
        calls.append(threading.get_ident())
        time.sleep(0.3)  # the other caller arrives while this one trains
        return real(cfg, **kw)

    monkeypatch.setattr(pt, "pretrain", slow_pretrain)
    out = []
    threads = [threading.Thread(target=lambda: out.append(pt.get_base(config, progress=False)[1]))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 2 and out[0]["sha256"] == out[1]["sha256"]
