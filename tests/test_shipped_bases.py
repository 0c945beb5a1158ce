"""The bases shipped in rlscale/data/bases/: each is what its config says, and the default job and
the full demo find theirs, so a fresh install pretrains nothing for them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rlscale.rl.config import JobConfig, base_hash, stable_hash
from rlscale.sweep import load_spec, resolve_jobs

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


def test_knob_added_later_keeps_older_hashes():
    """task.shuffle came after bases were shipped: at its older behaviour it leaves hashes alone."""
    shuffled = JobConfig().with_overrides(["task.shuffle=true"])
    ordered = JobConfig().with_overrides(["task.shuffle=false"])
    assert base_hash(shuffled) != base_hash(ordered)
    legacy = shuffled.to_dict()  # the config as it was written before the knob existed
    for key in ("run_id", "device"):
        del legacy[key]
    del legacy["task"]["shuffle"]
    assert shuffled.hash() == stable_hash(legacy)
    assert base_hash(shuffled) == stable_hash({k: legacy[k] for k in ("task", "model", "pretrain")})


def test_stored_configs_without_the_knob_read_back_as_they_ran():
    legacy = JobConfig().with_overrides(["task.shuffle=true"]).to_dict()
    del legacy["task"]["shuffle"]
    assert JobConfig.from_stored(legacy).task.shuffle is True
    assert JobConfig.from_dict(legacy).task.shuffle is False  # today's default
    assert legacy["task"].get("shuffle") is None  # the caller's dict is left alone
