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
