"""TRL / transformers trainer_state.json, written by transformers' own TrainerState."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from rlscale.errors import InputError
from rlscale.ingest import read_source


def save_state(path, log_history):
    """Write trainer_state.json with transformers' writer (its exact layout if it is absent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from transformers.trainer_callback import TrainerState
    except ImportError:  # the layout TrainerState.save_to_json writes
        state = {"global_step": log_history[-1]["step"], "log_history": log_history}
        path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        return path
    state = TrainerState(global_step=log_history[-1]["step"], log_history=log_history)
    state.save_to_json(str(path))
    assert "log_history" in asdict(state)
    return path


GRPO = [
    {"completions/mean_length": 312.5, "epoch": 0.1, "kl": 0.0, "loss": 0.01, "num_tokens": 4096.0,
     "reward": 0.25, "rewards/accuracy_reward/mean": 0.25, "step": 10},
    {"epoch": 0.1, "eval_loss": 0.02, "eval_reward": 0.2, "step": 10},
    {"completions/mean_length": 330.0, "epoch": 0.2, "kl": 0.01, "loss": 0.02, "num_tokens": 8192.0,
     "reward": 0.35, "rewards/accuracy_reward/mean": 0.35, "step": 20},
    {"epoch": 0.2, "step": 20, "total_flos": 0.0, "train_loss": 0.015, "train_runtime": 60.5},
]


def test_grpo_trainer_state(tmp_path):
    path = save_state(tmp_path / "out" / "checkpoint-20" / "trainer_state.json", GRPO)
    [(meta, table)] = read_source(path)
    assert meta.run_id == "out" and meta.source["format"] == "trl"
    df = table
    reward = df[df.metric == "reward"]
    assert reward["value"].tolist() == [0.25, 0.35] and reward["tokens"].tolist() == [4096, 8192]
    ev = df[df.metric == "eval_reward"]
    assert ev["step"].tolist() == [10] and ev["tokens"].tolist() == [4096]  # same-step join
    assert set(df.metric) >= {"rewards/accuracy_reward/mean", "completions/mean_length", "kl"}
    # The final summary is the run's metadata: no one-point metrics, no flops axis at one step.
    assert not set(df.metric) & {"num_tokens", "total_flos", "train_loss", "train_runtime"}
    assert df["flops"].isna().all()
    assert meta.metadata == {"total_flos": 0.0, "train_loss": 0.015, "train_runtime": 60.5}


def test_decreasing_tokens_and_missing_step(tmp_path):
    bad = [dict(GRPO[0]), dict(GRPO[2], num_tokens=1.0)]
    path = save_state(tmp_path / "a" / "trainer_state.json", bad)
    with pytest.raises(InputError, match=r"log_history\[1\], column 'num_tokens': tokens decreases"):
        read_source(path)
    nostep = [dict(GRPO[0]), {"loss": 0.1}]
    path = save_state(tmp_path / "b" / "trainer_state.json", [*nostep, {"step": 30, "loss": 1}])
    with pytest.raises(InputError, match=r"log_history\[1\], column 'step'"):
        read_source(path)
