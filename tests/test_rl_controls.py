"""The SFT / RFT controls (rl.trainer) and the KL / kept-checkpoint eval knobs."""

from __future__ import annotations

import pytest

from rlscale.errors import InputError
from rlscale.rl.config import JobConfig
from rlscale.rl.step import gold_rollout
from rlscale.rl.tasks import EOS, decode, sample_problems


def test_new_knobs_leave_hashes_unchanged_at_legacy_values():
    cfg = JobConfig()
    same = cfg.with_overrides(["rl.trainer=rl", "eval.kl_base=false",
                               "eval.keep_checkpoints=false"])
    assert same.hash() == cfg.hash()
    assert cfg.with_overrides(["rl.trainer=sft"]).hash() != cfg.hash()
    assert cfg.with_overrides(["eval.kl_base=true"]).hash() != cfg.hash()


def test_trainer_is_checked():
    with pytest.raises(InputError, match="rl.trainer"):
        JobConfig().with_overrides(["rl.trainer=dpo"]).validate()


def test_gold_rollout_holds_the_worked_solutions():
    probs = sample_problems("t", 4, ops_min=2, ops_max=3, split="train", eval_fraction=0.2)
    ro = gold_rollout(probs, device="cpu")
    assert ro.group_size == 1 and ro.rewards.shape == (4, 1)
    for i, p in enumerate(probs):
        n = ro.response_lens[i]
        ids = ro.response_ids[i, :n].tolist()
        assert ids[-1] == EOS and decode(ids[:-1]) == p.solution("worked")
        assert ro.response_mask[i].sum().item() == n


def test_sft_job_logs_kl_to_base_and_keeps_checkpoints(tmp_path, monkeypatch):
    """A tiny sft run: KL 0 at step 0 and > 0 after, kept step-N.pt files, the gold NLL falls."""
    pytest.importorskip("torch")
    from test_rl_run import TINY

    from rlscale.rl.runner import run_job
    from rlscale.store import Store

    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path / "cache"))
    config = JobConfig().with_overrides(TINY + ["rl.trainer=sft", "rl.lr=3e-3", "rl.steps=4",
                                                "eval.kl_base=true", "eval.keep_checkpoints=true",
                                                "run_id=sft"])
    run_job(config, store=tmp_path / "s", progress=False)
    df = Store(tmp_path / "s").read_points(runs=["sft"])
    kl = df[df.metric == "eval/kl_base"].sort_values("step")
    assert kl.value.iloc[0] == 0.0 and (kl.value.iloc[1:] > 0).all()
    loss = df[df.metric == "train/loss"].sort_values("step").value
    assert loss.iloc[-1] < loss.iloc[0]
    kept = sorted(p.name for p in (tmp_path / "s" / "_ckpt" / "sft").glob("step-*.pt"))
    assert kept == ["step-000000.pt", "step-000002.pt", "step-000004.pt"]


def test_sft_job_runs_with_its_progress_bar(tmp_path, monkeypatch):
    """sft samples nothing, so it logs no train/reward: the progress bar shows its loss instead."""
    pytest.importorskip("torch")
    from test_rl_run import TINY

    from rlscale.rl.runner import run_job
    from rlscale.store import Store

    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path / "cache"))
    config = JobConfig().with_overrides(TINY + ["rl.trainer=sft", "rl.steps=2", "run_id=sftbar"])
    run_job(config, store=tmp_path / "s", progress=True)
    df = Store(tmp_path / "s").read_points(runs=["sftbar"])
    assert df[df.metric == "train/loss"].step.max() == 2
