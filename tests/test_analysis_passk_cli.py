"""rlscale passk / sparsity on real (tiny, random) rl models: resolution, sampling, verdicts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pandas as pd
import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.store import RunMeta, Store

torch = pytest.importorskip("torch")

TINY = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "eval.problems=6",
        "eval.ops_min=1", "eval.ops_max=2", "rl.max_new_tokens=12", "run_id=r1"]


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    """A store with run r1: its base in the cache, and an RL checkpoint that moved one matrix."""
    from rlscale.rl.config import JobConfig, base_hash
    from rlscale.rl.model import Transformer
    from rlscale.rl.pretrain import cache_root

    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    cfg = JobConfig().with_overrides(TINY)
    base = Transformer(cfg.model)
    bdir = cache_root() / base_hash(cfg)
    bdir.mkdir(parents=True)
    torch.save(base.state_dict(), bdir / "model.pt")
    info = {"task": asdict(cfg.task), "model": asdict(cfg.model), "pretrain": asdict(cfg.pretrain),
            "sha256": hashlib.sha256((bdir / "model.pt").read_bytes()).hexdigest()}
    (bdir / "base.json").write_text(json.dumps(info))
    st = Store(tmp_path / "store")
    st.write_run(RunMeta(run_id="r1", config=cfg.to_dict()),
                 pd.DataFrame({"step": [0], "metric": ["eval/pass@1"], "value": [0.0]}))
    policy = {k: v.clone() for k, v in base.state_dict().items()}
    name = next(k for k, v in policy.items() if v.dim() == 2 and "emb" not in k)
    policy[name] += 0.05 * torch.outer(torch.randn(policy[name].shape[0]),
                                       torch.randn(policy[name].shape[1]))
    (st.root / "_ckpt" / "r1").mkdir(parents=True)
    torch.save({"policy": policy, "opt": {}, "ref": None, "state": {"step": 3}},
               st.root / "_ckpt" / "r1" / "ckpt.pt")
    return st.root, bdir, name


def test_passk_samples_both_models_on_the_same_problems(tiny_run, tmp_path):
    store, _, _ = tiny_run
    counts = tmp_path / "counts.csv"
    res = CliRunner().invoke(main, ["passk", "--store", str(store), "r1", "r1", "--samples", "8",
                                    "--n-boot", "50", "--counts", str(counts), "--json",
                                    "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["base"] == "base of r1" and out["difficulties"] == [1, 2] and out["problems"] == 6
    verdicts = out["comparisons"][0]["verdicts"]
    assert [v["difficulty"] for v in verdicts] == [1, 2]
    assert all(v["paired"] and v["k_max"] == 8 and v["n_problems"] == 6 for v in verdicts)
    assert all(v["verdict"] in ("expanded", "sharpened", "regressed", "no_change") for v in verdicts)
    table = pd.read_csv(counts)
    assert set(table["model"]) == {"base of r1", "r1"} and (table["n"] == 8).all()
    assert len(table) == 2 * 2 * 6 and table["c"].between(0, 8).all()
    per_model = table.groupby("model")["problem_id"].apply(lambda s: sorted(s))
    assert per_model.iloc[0] == per_model.iloc[1]  # the same held-out problems
    # beside the counts, the chance that one completion's work checks by guessing (1 digit:
    # a one-step solution is guessed right well over 1 time in 10, two steps far less often)
    chance = out["chance_verified"]
    assert set(chance) == {"1", "2"} and chance["1"] > 0.1 and chance["2"] < chance["1"]
    # re-analysing the saved counts gives the same verdicts without sampling
    again = CliRunner().invoke(main, ["passk", "--from-counts", str(counts), "base of r1", "r1",
                                      "--n-boot", "50", "--json"], catch_exceptions=False)
    assert json.loads(again.output)["comparisons"][0]["verdicts"] == verdicts
    assert "chance_verified" not in json.loads(again.output)  # no store that knows r1's task
    # with the store that holds run r1, the counts' models name their task: chance comes back
    known = CliRunner().invoke(main, ["passk", "--from-counts", str(counts), "base of r1", "r1",
                                      "--n-boot", "50", "--json", "--store", str(store)],
                               catch_exceptions=False)
    assert json.loads(known.output)["chance_verified"] == chance


def test_passk_text_from_paths_and_chart(tiny_run, tmp_path):
    store, bdir, _ = tiny_run
    ckpt = store / "_ckpt" / "r1" / "ckpt.pt"
    chart = tmp_path / "passk.json"
    res = CliRunner().invoke(main, ["passk", "--store", str(store), str(bdir), str(ckpt),
                                    "--difficulties", "2", "--problems", "3", "--samples", "4",
                                    "--n-boot", "20", "--out", str(chart), "--device", "cpu",
                                    "--threads", "1"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "ops=2: pass@1" in res.output and "pass@4" in res.output
    assert "chance: pass@1 0.0" in res.output and "verified work only" in res.output
    import torch

    assert torch.get_num_threads() == 1  # --threads reached torch before sampling
    assert "only 3 problems" in res.output  # the small-sample caveat is printed
    spec = json.loads(chart.read_text())
    assert "facet" in spec


def test_sparsity_of_a_run_finds_the_one_moved_matrix(tiny_run):
    store, _, name = tiny_run
    res = CliRunner().invoke(main, ["sparsity", "--store", str(store), "r1", "r1", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    moved = [m for m in out["matrices"] if m["n_changed"]]
    assert [m["name"] for m in moved] == [name] and moved[0]["rank"] == 1


def test_unknown_reference_is_a_clean_error(tiny_run):
    store, _, _ = tiny_run
    res = CliRunner().invoke(main, ["passk", "--store", str(store), "r1", "nope"])
    assert res.exit_code == 1 and "nope: RL is neither a file, a directory, nor a run" in res.output


def test_references_that_name_no_model_are_a_usage_error(tiny_run, tmp_path):
    from rlscale.analysis.checkpoints import NoConfigError
    from rlscale.analysis.passk_eval import plan_sampling

    store, bdir, _ = tiny_run
    bare = tmp_path / "bare.pt"
    torch.save(torch.load(bdir / "model.pt", weights_only=True), bare)
    with pytest.raises(NoConfigError):
        plan_sampling(str(bare), [str(bare)], store=Store(store))
    plan = plan_sampling(str(bare), ["r1"], store=Store(store), device="cpu")
    assert plan.difficulties == [1, 2] and plan.problems == 6 and plan.models[0].config is not None
    res = CliRunner().invoke(main, ["passk", "--store", str(store), str(bare), str(bare)])
    assert res.exit_code == 2 and "none of BASE/RL says which task and model it is" in res.output
