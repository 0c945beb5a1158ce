"""The RL job in a sweep: spec -> JobConfig, runs recorded with the job's config, shared base."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.errors import InputError
from rlscale.sweep.executors import InProcessExecutor
from rlscale.store import Store
from rlscale.sweep.run import estimate_jobs, resolve_jobs, run_sweep
from rlscale.sweep.spec import load_spec

torch = pytest.importorskip("torch")

TINY = """
device = "cpu"
[model]
d_model = 32
n_layers = 2
n_heads = 2
max_len = 96
[pretrain]
tokens = 10000
ops_max = 2
[rl]
steps = 3
prompts_per_step = 4
group_size = 4
max_new_tokens = 40
ops_max = 2
[eval]
every = 2
problems = 2
samples = 4
ops_max = 2
"""


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def spec_file(tmp_path, grid='"rl.recipe" = ["grpo", "scalerl"]'):
    (tmp_path / "tiny.toml").write_text(TINY)
    path = tmp_path / "spec.toml"
    path.write_text(f'name = "t"\nbase = "tiny.toml"\n[grid]\n{grid}\n')
    return path


def test_rl_sweep_runs_jobs_with_their_configs_and_one_base(tmp_path, store_dir, cache):
    from rlscale.rl.config import JobConfig
    from rlscale.rl.runner import run_job

    spec = load_spec(spec_file(tmp_path))
    assert spec.metric == "train/reward"
    jobs = resolve_jobs(spec)
    assert [j.job_id for j in jobs] == ["t-recipe=grpo-s0", "t-recipe=scalerl-s0"]
    assert jobs[0].group == jobs[1].group  # same pretrained base
    torch.set_num_threads(1)
    result = run_sweep(spec, store=store_dir, executor=InProcessExecutor(), refresh_s=0.01)
    assert result.counts() == {"complete": 2}, result.failed
    store = Store(store_dir)
    for job in jobs:
        meta = store.read_meta(job.job_id)
        assert meta.status == "complete" and meta.config == job.config
        assert meta.recipe == job.config["rl"]["recipe"]
    assert len(list((cache / "bases").iterdir())) == 1
    # the same job run directly gives the same curve as the sweep did
    direct = run_job(JobConfig.from_dict({**jobs[1].config, "run_id": "direct"}),
                     store=tmp_path / "direct", progress=False)
    a = store.read_points(runs=[jobs[1].job_id]).drop(columns=["run_id", "wall_s", "gpu_hours"])
    b = Store(tmp_path / "direct").read_points(runs=[direct]).drop(
        columns=["run_id", "wall_s", "gpu_hours"])
    assert len(a) > 0 and a.equals(b)
    again = run_sweep(spec, store=store_dir, executor=InProcessExecutor(), resume=True)
    assert again.counts() == {"skipped": 2}


def test_rl_dry_run_counts_a_shared_base_once(tmp_path, store_dir):
    from rlscale.rl.config import JobConfig
    from rlscale.rl.flops import estimate_job

    spec = load_spec(spec_file(tmp_path))
    jobs = resolve_jobs(spec)
    est = estimate_jobs(spec, jobs)
    want = [estimate_job(JobConfig.from_dict(j.config)) for j in jobs]
    assert [e["flops"] for e in est] == [w["flops"] for w in want]
    assert est[0]["shared_flops"] == want[0]["pretrain_flops"] > 0
    out = CliRunner().invoke(main, ["sweep", str(spec.path), "--store", str(store_dir),
                                    "--dry-run"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    total = sum(w["flops"] for w in want) - want[1]["pretrain_flops"]
    assert f"estimated compute to run: {total:.3g} FLOPs" in out.output
    assert not store_dir.exists()


def test_rl_spec_errors_name_the_spec_and_key(tmp_path):
    spec = load_spec(spec_file(tmp_path, grid='"rl.recipe" = ["grpo", "sgd"]'))
    with pytest.raises(InputError, match=r"spec.toml, column 'rl.recipe'.*'sgd' is not allowed"):
        resolve_jobs(spec)
    spec = load_spec(spec_file(tmp_path, grid='"rl.lrate" = [1e-4, 3e-4]'))
    with pytest.raises(InputError, match=r"'rl.lrate' is not a setting.*'lr'"):
        resolve_jobs(spec)


SPECS = sorted((Path(__file__).resolve().parents[1] / "runs").glob("*.toml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_reference_specs_expand(path):
    spec = load_spec(path)
    jobs = resolve_jobs(spec)
    assert len({j.job_id for j in jobs}) == len(jobs) >= 2
    assert all(j.job_id.startswith(spec.name + "-") for j in jobs)
