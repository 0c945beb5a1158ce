"""The bases shipped in rlscale/data/bases/: each is what its config says, and the default job and
the full demo find theirs, so a fresh install pretrains nothing for them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rlscale.rl.config import JobConfig, base_hash, stable_hash
from rlscale.sweep.run import load_spec, resolve_jobs

SHIPPED = Path(__file__).resolve().parent.parent / "rlscale" / "data" / "bases"
BASES = sorted(d for d in SHIPPED.iterdir() if d.is_dir())


def test_there_are_shipped_bases():
    assert BASES


@pytest.mark.parametrize("d", BASES, ids=lambda d: d.name[:8])
def test_shipped_base_matches_its_config_and_weights(d):
    info = json.loads((d / "base.json").read_text())
    config = JobConfig.from_stored({k: info[k] for k in ("task", "model", "pretrain")})
    assert base_hash(config) == info["hash"] == d.name
    assert hashlib.sha256((d / "model.pt").read_bytes()).hexdigest() == info["sha256"]


def test_default_job_and_full_demo_use_shipped_bases():
    names = {d.name for d in BASES}
    assert base_hash(JobConfig()) in names
    jobs = resolve_jobs(load_spec(SHIPPED.parent / "demo.toml"))
    needed = {base_hash(JobConfig.from_dict(j.config)) for j in jobs}
    assert needed <= names, sorted(needed - names)


ADDED = [("task", "shuffle", True, False), ("pretrain", "precision", "fp32", "bf16"),
         ("rl", "precision", "auto", "bf16"), ("task", "digits", 1, 2),
         ("task", "reward", "answer", "verified"), ("pretrain", "hard_share", 0.0, 0.05),
         ("pretrain", "hard_ops", 2, 3), ("rl", "warmup_steps", 0, 5),
         ("rl", "max_flops", 0.0, 1e12), ("rl", "trainer", "rl", "sft"),
         ("eval", "kl_base", False, True), ("eval", "keep_checkpoints", False, True)]  # (section, knob, value before it existed, another)


@pytest.mark.parametrize(("section", "knob", "legacy_value", "other"), ADDED)
def test_knob_added_later_keeps_older_hashes(section, knob, legacy_value, other):
    """A knob that came after bases were shipped leaves hashes alone at its older behaviour."""
    old = JobConfig().with_overrides([f"{section}.{knob}={legacy_value}".lower()])
    new = JobConfig().with_overrides([f"{section}.{knob}={other}".lower()])
    assert old.hash() != new.hash()
    legacy = old.to_dict()  # the config as it was written before the knob existed
    for key in ("run_id", "device"):
        del legacy[key]
    del legacy[section][knob]
    if legacy["rl"]["minibatches"] is None:  # written as a plain field before it became a knob
        legacy["rl"]["minibatches"] = old.rl.minibatches
    assert old.hash() == stable_hash(legacy)
    assert base_hash(old) == stable_hash({k: legacy[k] for k in ("task", "model", "pretrain")})
    if section not in ("rl", "eval"):  # RL and evaluation knobs do not change the base
        assert base_hash(old) != base_hash(new)


@pytest.mark.parametrize(("section", "knob", "legacy_value", "other"), ADDED)
def test_stored_configs_without_the_knob_read_back_as_they_ran(section, knob, legacy_value, other):
    legacy = JobConfig().with_overrides([f"{section}.{knob}={legacy_value}".lower()]).to_dict()
    del legacy[section][knob]
    assert getattr(getattr(JobConfig.from_stored(legacy), section), knob) == legacy_value
    today = getattr(getattr(JobConfig(), section), knob)  # == other for the first three knobs
    assert getattr(getattr(JobConfig.from_dict(legacy), section), knob) == today
    assert legacy[section].get(knob) is None  # the caller's dict is left alone
