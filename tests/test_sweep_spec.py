"""Sweep specs: parsing, checks, job expansion and deterministic run ids (no jobs run here)."""

from __future__ import annotations

import pytest

from rlscale.errors import InputError
from rlscale.sweep.run import resolve_jobs
from rlscale.sweep.spec import expand_jobs, load_spec, parse_spec, run_id_for

SPEC = """
name = "study"
job = "sweep_jobs:curve_job"
seeds = [0, 1]
[base]
recipe = "toy"
steps = 6
opt = { lr = 1.0, beta = 0.9 }
[set]
steps = 8
[grid]
opt.lr = [0.5, 2e-4]
[[points]]
recipe = "grpo"
[[points]]
recipe = "dapo"
"opt.beta" = 0.95
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_expansion_points_x_grid_x_seeds(tmp_path):
    spec = load_spec(write(tmp_path, SPEC))
    assert spec.varied_keys == ["recipe", "opt.beta", "opt.lr"]
    jobs = resolve_jobs(spec)
    assert len(jobs) == 2 * 2 * 2
    ids = [j.job_id for j in jobs]
    assert ids[0] == "study-recipe=grpo-beta=0.9-lr=0.5-s0"
    assert ids[3] == "study-recipe=dapo-beta=0.95-lr=0.0002-s0"
    assert ids[-1] == "study-recipe=dapo-beta=0.95-lr=0.0002-s1"
    job = jobs[3]
    assert job.config == {"recipe": "dapo", "steps": 8, "opt": {"lr": 2e-4, "beta": 0.95},
                          "seed": 0, "run_id": job.job_id}
    assert jobs[0].config["opt"]["beta"] == 0.9  # the base value where a point does not set it
    # deterministic: the same spec always gives the same ids and configs
    assert [j.config for j in resolve_jobs(load_spec(write(tmp_path, SPEC)))] == [
        j.config for j in jobs]


def test_base_from_file_relative_to_spec(tmp_path):
    (tmp_path / "cfg").mkdir()
    write(tmp_path, 'recipe = "toy"\nsteps = 3\n', "cfg/base.toml")
    spec = load_spec(write(tmp_path, 'name = "s"\njob = "m:f"\nbase = "base.toml"\n'
                                     '[grid]\nsteps = [1, 2]\n', "cfg/spec.toml"))
    assert [j.job_id for j in resolve_jobs(spec)] == ["s-steps=1-s0", "s-steps=2-s0"]


def test_run_id_formatting_and_long_ids():
    assert run_id_for("a", {"tokens": 2e6, "flag": True, "mix": [1, 2]}, 3) == \
        "a-tokens=2e+06-flag=true-mix=1_2-s3"
    assert run_id_for("a", {"x": 200000.0, "y": 0.1234567891}, 0) == \
        "a-x=200000-y=0.1234567891-s0"
    assert run_id_for("a", {"name": "has space/slash"}, 0) == "a-name=has_space_slash-s0"
    long = run_id_for("a", {f"k{i}": "v" * 20 for i in range(12)}, 0)
    assert len(long) == 200 and long != run_id_for("a", {f"k{i}": "w" * 20 for i in range(12)}, 0)
    # a key whose last component is shared with another is labelled with its full path
    assert run_id_for("a", {"rl.lr": 1, "pretrain.lr": 2}, 0) == "a-rl.lr=1-pretrain.lr=2-s0"


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ('job = "m:f"\n', "name", "missing or empty 'name'"),
        ('name = "_x"\njob = "m:f"\n', "name", "invalid sweep name"),
        ('name = "x"\njob = "m:f"\ncolour = 1\n', "colour", "unknown key"),
        ('name = "x"\njob = "nomodule"\n', "job", "neither 'rl' nor an import path"),
        ('name = "x"\njob = "m:f"\nseeds = [1, 1]\n', "seeds", "seeds = [1, 1]"),
        ('name = "x"\njob = "m:f"\n[grid]\nlr = 3\n', "grid.lr", "a non-empty list"),
        ('name = "x"\njob = "m:f"\n[grid]\nlr = [1, 1.0]\n', "grid.lr", "repeat"),
        ('name = "x"\njob = "m:f"\n[grid]\nseed = [1, 2]\n', "seed", "cannot be set"),
        ('name = "x"\njob = "m:f"\n[set]\nlr = 1\n[grid]\nlr = [1, 2]\n', "lr", "both in [set]"),
        ('name = "x"\njob = "m:f"\nnum_gpus = -1\n', "num_gpus", "non-negative"),
        ('name = "x"\ngroup_by = ["pretrain"]\n', "group_by", "grouped by their pretrained base"),
        ('name = "x"\njob = "m:f"\nbase = "nope.toml"\n', "base", "does not exist"),
    ],
)
def test_bad_specs_name_file_and_field(tmp_path, text, field, fragment):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert info.value.field == field
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_bad_toml_and_unknown_config_key(tmp_path):
    path = write(tmp_path, 'name = "x\n')
    with pytest.raises(InputError, match="not valid TOML"):
        load_spec(path)
    spec = parse_spec({"name": "x", "job": "m:f", "base": {"opt": {"lr": 1}},
                       "grid": {"opt": {"lrr": [1, 2]}}}, path="s.toml")
    with pytest.raises(InputError, match=r"'opt.lrr' is not a setting.*one of \['lr'\]"):
        expand_jobs(spec)
    spec = parse_spec({"name": "x", "job": "m:f", "base": {"opt": {"lr": 1}},
                       "grid": {"opt": [1, 2]}}, path="s.toml")
    with pytest.raises(InputError, match="is a section"):
        expand_jobs(spec)


def test_duplicate_run_ids_are_an_error():
    spec = parse_spec({"name": "x", "job": "m:f", "base": {"a": "p q", "b": 0},
                       "points": [{"a": "p q"}, {"a": "p/q"}]}, path="s.toml")
    with pytest.raises(InputError, match="two jobs get run id 'x-a=p_q-s0'"):
        expand_jobs(spec)
