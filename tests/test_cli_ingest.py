"""The ingest/runs/show commands, end to end through click."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rlscale.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def snapshot(root):
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_every_command_has_help_and_example():
    for name in ("ingest", "runs", "show"):
        out = run(name, "--help")
        assert "Example" in out
        cmd = main.get_command(click.Context(main), name)
        assert all(p.help for p in cmd.params if p.param_type_name == "option")


def test_ingest_examples_then_runs_and_show(store_dir):
    out = run("ingest", *sorted(EXAMPLES.glob("scalerl_seed*.csv")), "--store", store_dir,
              "--recipe", "scalerl", "--set", "pretrain_tokens=2e9")
    assert out.count("ingested:") == 2
    out = run("ingest", *sorted(EXAMPLES.glob("scalerl_seed*.csv")), EXAMPLES / "trl_grpo",
              EXAMPLES / "tensorboard", "--store", store_dir, "--recipe", "scalerl",
              "--set", "pretrain_tokens=2e9", "--json")
    status = {r["run_id"]: r["status"] for r in json.loads(out)}
    assert status == {"scalerl_seed0": "unchanged", "scalerl_seed1": "unchanged",
                      "trl_grpo": "written", "scalerl_seed2": "written"}
    out = run("ingest", EXAMPLES / "scalerl_seed0.csv", "--store", store_dir, code=1)
    assert "the same file but other ingest options or metadata" in out
    rows = json.loads(run("runs", "--store", store_dir, "--json"))
    by_id = {r["run_id"]: r for r in rows}
    assert by_id["scalerl_seed0"]["recipe"] == "scalerl"
    assert by_id["scalerl_seed0"]["pretrain_tokens"] == 2e9
    assert by_id["scalerl_seed0"]["n_points"] == 320 and by_id["scalerl_seed0"]["max_gpu_hours"] == 16000
    text = run("runs", "--store", store_dir)
    assert "scalerl_seed1  recipe=scalerl  points=320  steps<=1600  gpu_hours 100..1.6e+04" in text
    assert "pretrain_tokens=2e+09" in text
    shown = json.loads(run("show", "scalerl_seed0", "--store", store_dir, "--json"))
    reward = next(m for m in shown["metrics"] if m["metric"] == "reward")
    assert reward["n"] == 160 and reward["max_gpu_hours"] == 16000
    assert "reward" in run("show", "trl_grpo", "--store", store_dir)
    assert "no run 'nope'" in run("show", "nope", "--store", store_dir, code=1)


def test_third_bad_file_leaves_first_two_unwritten(tmp_path, store_dir):
    files = []
    for i, body in enumerate(["1,0.1", "1,0.2", "1,oops"]):
        f = tmp_path / f"f{i}.csv"
        f.write_text(f"step,reward\n{body}\n")
        files.append(f)
    run("ingest", tmp_path / "f0.csv", "--store", store_dir, "--run-id", "existing")
    before = snapshot(store_dir)
    out = run("ingest", *files, "--store", store_dir, code=1)
    assert "f2.csv, line 2, column 'reward': cannot parse 'oops'" in out
    assert out.count("\n") == 1  # one clear message
    assert snapshot(store_dir) == before


def test_reingest_noop_conflict_and_replace(tmp_path, store_dir):
    f = tmp_path / "r.csv"
    f.write_text("step,reward\n1,0.1\n")
    run("ingest", f, "--store", store_dir)
    assert "unchanged" in run("ingest", f, "--store", store_dir)
    f.write_text("step,reward\n1,0.15\n2,0.2\n")  # not a log that grew: an old value changed
    before = snapshot(store_dir)
    assert "differs from 0.1 stored for run 'r'" in run("ingest", f, "--store", store_dir, code=1)
    assert snapshot(store_dir) == before
    assert "replaced: r" in run("ingest", f, "--store", store_dir, "--replace")
    assert not [p for p in store_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "seed=abc"], "--set seed='abc' is not an integer"),
    (["--set", "novalue"], "is not KEY=VALUE"),
    (["--format", "excel"], "Invalid value for '--format'"),
    (["--x-col", "step"], "--x-col and --x-unit go together"),
    (["--step-col", "nope"], "no column 'nope' (from --step-col)"),
    (["--metric", "acc"], "no metric column(s) ['acc'] (from --metric)"),
])
def test_bad_options_are_one_clean_error(tmp_path, store_dir, args, message):
    f = tmp_path / "r.csv"
    f.write_text("step,reward\n1,0.1\n")
    out = run("ingest", f, "--store", store_dir, *args, code=2 if "Invalid" in message else 1)
    assert message in out and "Traceback" not in out
    assert not store_dir.exists()


def test_dry_run_writes_nothing(tmp_path, store_dir):
    f = tmp_path / "r.csv"
    f.write_text("step,reward\n1,0.1\n")
    assert "valid (dry run): r" in run("ingest", f, "--store", store_dir, "--dry-run")
    assert not store_dir.exists()
