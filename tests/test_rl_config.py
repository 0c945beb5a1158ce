"""The RL job config's identities stay put: config hashes, base hashes, default and sweep run ids,
the run metadata consumers read, and run.json configs written earlier.

Every literal here was computed by the code before the config was reorganised (f7982f6); shipped
bases are found by base hash and stores by run id, so a change here orphans them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rlscale.rl.config import JobConfig, base_hash

torch = pytest.importorskip("torch")

DEFAULT_BASE = "bc7b88af32afd9509f88d7b7c7449efc0cdf566b6fd12494d193fa80dfa769fa"
TINY_BASE = "f47186b816e5c690668ca2d7b90c82e5d98af8a2abe6bf93e8df5cfb6e234c8c"

# overrides -> (hash as written, base hash, default run id of the job as it runs)
PINNED = {
    (): ("cad3cecfd67d9b07488a1a04475ae61ba40dcd9a3ec841b3d6c95084191f96b0", DEFAULT_BASE,
         "rl-grpo-d128-L4-2567dc96-s0"),
    # dapo and cispo now default to 4 minibatches: at 1 (their value before) the pins still hold
    ("rl.recipe=dapo", "rl.kl_coef=0.01", "rl.minibatches=1"): (
        "167396e5be6edd0e3281e2823696eb884b0457dcb59bcb641775b1855a395364", DEFAULT_BASE,
        "rl-dapo-d128-L4-8b9af115-s0"),
    ("rl.recipe=scalerl", "rl.lr=1e-4", "pretrain.tokens=2e6"): (
        "9032f43d49a657d99859425a976b09846e12f3f5c7cc1c6c36cf683e96fb22e7",
        "33bce8f8c9de46c6c8d76aa18975802b56012396871e6bf094f23cf9aa1028e8",
        "rl-scalerl-d128-L4-276d0ffe-s0"),
    ("model.d_model=32", "model.n_layers=2", "model.n_heads=2", "rl.recipe=drgrpo",
     "rl.edge_filter=true", "seed=3"): (
        "dab698cc138eb65b36379e94843e73b91ee55144acb3867b2c8b94d5e307acb2", TINY_BASE,
        "rl-drgrpo-d32-L2-2e9c1db5-s3"),
    ("rl.recipe=cispo", "rl.clip_high=0.3", "rl.clip_high=none", "task.shuffle=true",
     "rl.minibatches=1"): (
        "1cbe34b4888fb00044a5052b90b8de8d09ffb44d26042df6937c0497c4643641",
        "4dcd252942062b134ff2b7c0ad9f686135d93420ce84db9fe60be4929b63c92c",
        "rl-cispo-d128-L4-d34c50d0-s0"),
}


def as_run(config: JobConfig) -> JobConfig:
    """The config as the runner records and hashes it: every recipe knob at its value."""
    from rlscale.rl.recipes import resolve

    return replace(config, rl=resolve(config.rl))


@pytest.mark.parametrize("overrides", list(PINNED), ids=lambda o: ",".join(o) or "default")
def test_config_hashes_and_default_run_ids_are_pinned(overrides):
    from rlscale.rl.runner import default_run_id

    config = JobConfig().with_overrides(list(overrides))
    want_hash, want_base, want_id = PINNED[overrides]
    assert config.hash() == want_hash
    assert base_hash(config) == base_hash(as_run(config)) == want_base
    assert default_run_id(as_run(config)) == want_id
    assert JobConfig.from_dict(config.to_dict()).hash() == want_hash
    assert JobConfig.from_dict(as_run(config).to_dict()).hash() == as_run(config).hash()


SPEC = """name = "pin"
job = "rl"
seeds = [0, 1]
[base.model]
d_model = 32
n_layers = 2
n_heads = 2
[[points]]
"rl.recipe" = "grpo"
[[points]]
"rl.recipe" = "grpo"
"rl.loss_agg" = "prompt-mean"
[[points]]
"rl.recipe" = "dapo"
"rl.kl_coef" = 0.01
"""

SWEEP = [  # job id (points leave knobs to the recipe: "none"), default run id of its config
    # (the dapo ids changed when its preset took 4 minibatches)
    ("pin-recipe=grpo-loss_agg=none-kl_coef=none-s0", "rl-grpo-d32-L2-74731614-s0"),
    ("pin-recipe=grpo-loss_agg=prompt-mean-kl_coef=none-s0", "rl-grpo-d32-L2-f54af7ef-s0"),
    ("pin-recipe=dapo-loss_agg=none-kl_coef=0.01-s0", "rl-dapo-d32-L2-d26cadd1-s0"),
    ("pin-recipe=grpo-loss_agg=none-kl_coef=none-s1", "rl-grpo-d32-L2-7246d9d3-s1"),
    ("pin-recipe=grpo-loss_agg=prompt-mean-kl_coef=none-s1", "rl-grpo-d32-L2-2110d91c-s1"),
    ("pin-recipe=dapo-loss_agg=none-kl_coef=0.01-s1", "rl-dapo-d32-L2-3b26d4a5-s1"),
]


def test_sweep_run_ids_and_groups_are_pinned(tmp_path):
    from rlscale.rl.runner import default_run_id
    from rlscale.sweep.run import load_spec, resolve_jobs

    (tmp_path / "spec.toml").write_text(SPEC)
    jobs = resolve_jobs(load_spec(tmp_path / "spec.toml"))
    got = [(j.job_id, default_run_id(JobConfig.from_dict({**j.config, "run_id": None})))
           for j in jobs]
    assert got == SWEEP
    assert {j.group for j in jobs} == {TINY_BASE}
    dapo = JobConfig.from_dict(jobs[2].config)
    assert (dapo.rl.recipe, dapo.rl.kl_coef, dapo.rl.edge_filter, dapo.rl.clip_high) == (
        "dapo", 0.01, True, 0.28)


# A run.json config as the runner wrote it before (dapo, kl_coef overridden): every knob explicit.
STORED = {
    "run_id": "x", "seed": 0, "device": "auto",
    "task": {"name": "arith-graph", "operators": "+-*", "n_base": 1, "const_prob": 1.0,
             "eval_fraction": 0.05, "eval_seed": 12345, "shuffle": False},
    "model": {"d_model": 128, "n_layers": 4, "n_heads": 4, "ff_mult": 4, "max_len": 256,
              "rope_base": 10000.0},
    "pretrain": {"tokens": 16000000, "ops_min": 1, "ops_max": 4, "mix_worked": 0.75,
                 "mix_compact": 0.0, "mix_direct": 0.25, "batch_size": 64, "lr": 0.003,
                 "warmup_frac": 0.03, "weight_decay": 0.1, "seed": 0, "precision": "bf16"},
    "rl": {"recipe": "dapo", "steps": 120, "lr": 0.0003, "prompts_per_step": 32, "group_size": 8,
           "max_new_tokens": 128, "ops_min": 1, "ops_max": 4, "edge_filter": True,
           "zero_var_filter": True, "adv_norm": "group", "loss_agg": "token-mean",
           "objective": "ppo", "clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.01,
           "ref_reset_every": 0, "minibatches": 1, "fp32_logits": False, "precision": "bf16"},
    "eval": {"every": 5, "problems": 32, "samples": 8, "ops_min": 1, "ops_max": 5,
             "temperature": 1.0},
}


# What it writes out today: the knobs added since, at the values that reproduce that run.
WRITTEN = {**STORED, "task": {**STORED["task"], "digits": 1, "reward": "answer"},
           "pretrain": {**STORED["pretrain"], "hard_share": 0.0, "hard_ops": 2},
           "rl": {**STORED["rl"], "warmup_steps": 0, "max_flops": 0.0, "trainer": "rl"},
           "eval": {**STORED["eval"], "kl_base": False, "keep_checkpoints": False}}


def test_stored_configs_read_back_and_write_out_unchanged():
    from rlscale.rl.runner import default_run_id

    for read in (JobConfig.from_dict, JobConfig.from_stored):
        config = read(STORED)
        assert config.to_dict() == WRITTEN
        assert default_run_id(replace(config, run_id=None)) == "rl-dapo-d128-L4-8b9af115-s0"
        assert config == as_run(config)  # every knob was already explicit
    fresh = JobConfig().with_overrides(["rl.recipe=dapo", "rl.kl_coef=0.01", "rl.minibatches=1",
                                        "run_id=x"])  # dapo took 4 minibatches since
    assert as_run(fresh).to_dict() == WRITTEN


# The run metadata (run.json) of that job with a stand-in base, as the runner wrote it before.
METADATA = {
    "pretrain_tokens": 16000000, "pretrain_ops_min": 1, "pretrain_ops_max": 4,
    "pretrain_mix_worked": 0.75, "pretrain_mix_compact": 0.0, "pretrain_mix_direct": 0.25,
    "pretrain_seed": 0, "pretrain_flops": 1.5e12, "pretrain_wall_s": 12.5,
    "base_hash": DEFAULT_BASE, "model_params": 793728, "d_model": 128, "n_layers": 4,
    "lr": 0.0003, "group_size": 8, "prompts_per_step": 32, "rl_steps": 120, "rl_ops_min": 1,
    "rl_ops_max": 4, "max_new_tokens": 128, "minibatches": 1, "ref_reset_every": 0,
    "device": "cpu", "gpu_hours_means": "device wall-hours", "edge_filter": True,
    "zero_var_filter": True, "adv_norm": "group", "loss_agg": "token-mean", "objective": "ppo",
    "clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.01, "fp32_logits": False,
}


def test_run_metadata_keeps_every_key_consumers_read():
    from rlscale.rl.runner import _meta

    config = as_run(JobConfig.from_dict(STORED))
    meta = _meta(config, {"flops": 1.5e12, "wall_s": 12.5, "n_params": 793728}, "cpu")
    assert {k: meta.metadata[k] for k in METADATA} == METADATA
    assert meta.metadata["threads"] == torch.get_num_threads()
    assert (meta.run_id, meta.recipe, meta.seed, meta.task, meta.model) == (
        "x", "dapo", 0, "arith-graph", "d128-L4")
    assert meta.config == WRITTEN


def test_a_recipe_is_a_value_and_a_config_overrides_its_knobs(tmp_path):
    from rlscale.errors import InputError
    from rlscale.rl.config import RLConfig
    from rlscale.rl.recipes import DAPO, GRPO, RECIPES

    c = JobConfig().with_overrides(["rl.recipe=dapo", "rl.kl_coef=0.01"])
    assert c.rl.overrides == {"kl_coef": 0.01}
    assert c.rl.knobs == replace(DAPO, kl_coef=0.01) and c.rl.kl_coef == 0.01
    assert c.to_dict()["rl"]["kl_coef"] == 0.01 and c.to_dict()["rl"]["edge_filter"] is None
    back = c.with_overrides(["rl.recipe=grpo"])  # the override stays, the rest follow the recipe
    assert back.rl.knobs == replace(GRPO, kl_coef=0.01)
    assert c.with_overrides(["rl.kl_coef=none"]).rl.knobs == DAPO
    assert JobConfig().rl == RLConfig() and JobConfig().rl.knobs == RECIPES["grpo"]
    assert RLConfig(recipe="cispo", overrides={"clip_high": None}) == RLConfig(recipe="cispo")
    path = tmp_path / "job.toml"
    path.write_text('[rl]\nrecipe = "scalerl"\nzero_var_filter = false\nclip_low = 0\n')
    rl = JobConfig.from_toml(path).rl
    assert rl.overrides == {"zero_var_filter": False, "clip_low": 0.0}
    assert (rl.objective, rl.zero_var_filter, rl.fp32_logits) == ("cispo", False, True)
    with pytest.raises(InputError, match=r"unknown recipe knob 'rl.kl'.*rl.kl_coef"):
        RLConfig(overrides={"kl": 0.1})
    with pytest.raises(InputError, match=r"unknown key 'rl.overrides'"):
        JobConfig.from_dict({"rl": {"overrides": {}}})
    with pytest.raises(InputError, match=r"rl.clip_low='wide'.*a number or none"):
        JobConfig().with_overrides(["rl.clip_low=wide"])


def test_run_metadata_is_every_config_field_by_one_naming_rule():
    from rlscale.rl.runner import META_PREFIX, _meta, config_metadata, metadata_name

    config = JobConfig().with_overrides(["rl.recipe=scalerl", "rl.kl_coef=0.01"])
    data = as_run(config).to_dict()
    want = {metadata_name(s, k): v for s in META_PREFIX for k, v in data[s].items()}
    del want["recipe"], want["task_name"]  # RunMeta's own fields
    assert config_metadata(config) == want
    assert len(want) == sum(len(data[s]) for s in META_PREFIX) - 2  # no two fields share a name
    shown = ("pretrain_batch_size", "n_heads", "rl_precision", "task_shuffle", "eval_samples",
             "kl_coef", "fp32_logits")
    assert {k: want[k] for k in shown} == {
        "pretrain_batch_size": 64, "n_heads": 4, "rl_precision": "bf16", "task_shuffle": False,
        "eval_samples": 8, "kl_coef": 0.01, "fp32_logits": True}
    base_info = {"flops": 1.0, "wall_s": 2.0, "n_params": 3}
    meta = _meta(replace(as_run(config), run_id="x"), base_info, "cpu")
    measured = set(meta.metadata) - set(want)
    assert measured == {"pretrain_flops", "pretrain_wall_s", "base_hash", "model_params",
                        "device", "threads", "gpu_hours_means"}


@pytest.mark.parametrize("override,want", [
    ("rl.lr=nan", "a finite number >= 0"), ("rl.lr=-1", "a finite number >= 0"),
    ("rl.steps=-5", "an integer >= 0"), ("seed=-1", "an integer from 0 to 9223372036854775807"),
    ("pretrain.lr=inf", "a finite number >= 0"), ("rl.kl_coef=-0.1", "a finite number >= 0"),
    ("rl.clip_low=1.5", "a number from 0 to 1"), ("eval.temperature=0", "a finite number > 0"),
    ("task.const_prob=nan", "a number from 0 to 1"), ("pretrain.warmup_frac=-0.5", "from 0 to 1"),
])
def test_every_numeric_config_value_is_range_checked_at_the_cli(override, want):
    from click.testing import CliRunner

    from rlscale.cli import main

    res = CliRunner().invoke(main, ["run", "--dry-run", "--set", override])
    out = res.output.strip()
    key = override.split("=")[0]
    assert res.exit_code != 0 and len(out.splitlines()) == 1 and "Traceback" not in out, out
    assert f"'{key}'" in out and "out of range" in out and want in out, out


def test_out_of_range_values_in_toml_and_sweep_specs_are_errors(tmp_path):
    from rlscale.errors import InputError
    from rlscale.sweep.spec import load_spec

    job = tmp_path / "job.toml"
    job.write_text("seed = 1\n[rl]\nlr = nan\n")
    with pytest.raises(InputError, match=r"job.toml.*rl.lr=nan is out of range"):
        JobConfig.from_toml(job)
    for value in ("nan", "inf", "-1"):
        spec = tmp_path / "s.toml"
        spec.write_text(f'name = "s"\njob = "rl"\nnum_cpus = {value}\n')
        with pytest.raises(InputError, match=r"num_cpus.*non-negative finite number \(from 0 to 1e9\)"):
            load_spec(spec)
    # in range stays as it was: edge values load and hash as before
    config = JobConfig().with_overrides(["rl.lr=0", "rl.steps=0", "seed=0", "rl.clip_low=0"])
    assert (config.rl.lr, config.rl.steps, config.seed) == (0.0, 0, 0)
