"""verl, Stable-Baselines3 and MLflow logs in with no options, checked against the raw files.

Each expectation is parsed here, independently of rlscale's readers, from the real sample files
under examples/logs/ (see examples/logs/SOURCE.md for where they come from).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rlscale import load_points
from rlscale.cli import main

LOGS = Path(__file__).resolve().parent.parent / "examples" / "logs"
VERL = LOGS / "verl" / "gemma-2-2b-it-ppo-gsm8k.log"
MONITOR = LOGS / "sb3" / "LunarLander-v2_1" / "0.monitor.csv"
PROGRESS = LOGS / "sb3" / "PPO_cartpole" / "progress.csv"
MLRUNS = LOGS / "mlflow" / "mlruns"
FULL_VERL = Path("/work/shared/real-logs/verl-gsm8k-ppo/"
                 "Qwen2.5-0.5B-bsz256_2-prompt512-resp256-0.538.log")


def run(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def snapshot(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def points_of(store, run_id):
    df = load_points(store, runs=[run_id])
    return {(int(s), m): v for s, m, v in zip(df["step"], df["metric"], df["value"])}, df


def fails_cleanly(bad: Path, store: Path, *expected: str) -> str:
    """Ingesting ``bad`` fails with one line naming what ``expected`` says; the store is unchanged."""
    run("ingest", MONITOR, "--store", store)  # something already stored
    before = snapshot(store)
    out = run("ingest", bad, "--store", store, code=1)
    assert out.startswith("Error: ") and len(out.strip().splitlines()) == 1, out
    assert "Traceback" not in out
    for text in expected:
        assert text in out, out
    assert snapshot(store) == before
    return out


# --- verl ---------------------------------------------------------------------------------------

def verl_console_points(path: Path) -> dict[tuple[int, str], float]:
    """(step, key) -> value of every 'step:N - k:v - ...' line, colours and Ray prefix removed."""
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r"pid=\d+\) step:(\d+) - (.*)$", plain)
        if m:
            for piece in m.group(2).split(" - "):
                key, value = piece.split(":", 1)
                assert (int(m.group(1)), key) not in out or out[int(m.group(1)), key] == float(value)
                out[int(m.group(1)), key] = float(value)
    return out


def test_verl_console_log_reads_with_no_options(store_dir):
    expected = verl_console_points(VERL)
    out = run("ingest", VERL, "--store", store_dir)
    assert out.startswith("ingested: gemma-2-2b-it-ppo-gsm8k <- ")
    assert "[verl] 925 points" in out
    got, df = points_of(store_dir, "gemma-2-2b-it-ppo-gsm8k")
    assert got == expected and len(got) == 925
    # the validation-only line "step:0 - test_score/openai/gsm8k:0.521" merged with step 0
    at0 = set(df.loc[df["step"] == 0, "metric"])
    assert "test_score/openai/gsm8k" in at0 and "critic/score/mean" in at0
    assert sorted(df.loc[df["metric"] == "val/test_score/openai/gsm8k", "step"]) == [9, 19]
    assert sorted(df.loc[df["metric"] == "critic/score/mean", "step"]) == list(range(23))


@pytest.mark.skipif(not FULL_VERL.exists(), reason="the full shared log is not on this machine")
def test_verl_full_shared_log(store_dir):
    expected = verl_console_points(FULL_VERL)
    run("ingest", FULL_VERL.parent, "--store", store_dir)
    got, df = points_of(store_dir, FULL_VERL.stem)
    assert got == expected
    assert len(df[df["metric"] == "critic/score/mean"]) == 435
    val = df[df["metric"] == "val/test_score/openai/gsm8k"].sort_values("step")
    assert len(val) == 43 and val["value"].max() == 0.538  # the 0.538 of its name


def test_verl_file_logger_jsonl(tmp_path, store_dir):
    """The console log's values in the file logger's layout, one nested `data` dict per step."""
    expected = verl_console_points(VERL)
    by_step: dict[int, dict] = {}
    for (step, key), value in expected.items():
        group, _, rest = key.partition("/")
        by_step.setdefault(step, {}).setdefault(group, {})[rest] = value
    path = tmp_path / "gemma.jsonl"
    path.write_text("".join(json.dumps({"step": s, "data": d}) + "\n" for s, d in by_step.items()))
    assert "[verl] 925 points" in run("ingest", path, "--store", store_dir)
    assert points_of(store_dir, "gemma")[0] == expected
    # --format jsonl is the same file logger, not a misreading of it
    out = run("ingest", path, "--store", store_dir, "--run-id", "again", "--format", "jsonl")
    assert "[verl] 925 points" in out
    path.write_text(path.read_text() + '{"step": 22, "data": {"critic": {"sco')  # cut mid-write
    fails_cleanly(path, tmp_path / "s2", f"{path}, line {len(by_step) + 1}", "not valid JSON")


def test_verl_bad_lines_name_line_and_field(tmp_path, store_dir):
    lines = VERL.read_bytes().split(b"\n")
    last = max(i for i, line in enumerate(lines) if b"step:21 - " in line)
    cut = tmp_path / "cut.log"
    cut.write_bytes(b"\n".join(lines[:last] + [lines[last][:lines[last].index(b"timing/ref") + 6]]))
    fails_cleanly(cut, store_dir, f"{cut}, line {last + 1}, column 'timing'",
                  "'timing' is not key:value")
    garbled = tmp_path / "garbled.log"
    garbled.write_bytes(VERL.read_bytes().replace(b"timing/gen:44.738", b"timing/gen:44.7x8"))
    fails_cleanly(garbled, tmp_path / "s2", f"{garbled}, line ", "column 'timing/gen'",
                  "cannot parse '44.7x8' as a number")


def test_a_log_without_step_lines_is_not_verl(tmp_path, store_dir):
    notes = tmp_path / "notes.txt"
    notes.write_text("Let's solve this step by step:\nstep: first we add\n")
    out = run("ingest", notes, "--store", store_dir, code=1)
    assert "cannot tell the format" in out and "verl console log" in out


# --- Stable-Baselines3 ---------------------------------------------------------------------------

def test_sb3_monitor_steps_are_the_running_sum_of_episode_lengths(store_dir):
    with open(MONITOR, newline="") as fh:
        head = json.loads(fh.readline()[1:])
        rows = list(csv.DictReader(fh))
    steps = np.cumsum([int(r["l"]) for r in rows])
    out = run("ingest", MONITOR.parent.parent, "--store", store_dir)
    assert "ingested: LunarLander-v2_1-0 <- " in out and "[sb3] 324 points" in out
    got, df = points_of(store_dir, "LunarLander-v2_1-0")
    assert got == {**{(int(s), "episode_reward"): float(r["r"]) for s, r in zip(steps, rows)},
                   **{(int(s), "episode_length"): float(r["l"]) for s, r in zip(steps, rows)}}
    rew = df[df["metric"] == "episode_reward"].sort_values("step")
    assert rew["wall_s"].tolist() == [float(r["t"]) for r in rows]
    meta = {r["run_id"]: r for r in json.loads(run("runs", "--store", store_dir, "--json"))}
    assert meta["LunarLander-v2_1-0"]["task"] == head["env_id"] == "LunarLander-v2"
    for path in (MONITOR, MONITOR.parent):  # the same run id from the file or its folder
        out = run("ingest", path, "--store", store_dir, "--dry-run")
        assert out.startswith("valid (dry run): LunarLander-v2_1-0 <- ")


def test_sb3_progress_csv_with_two_appended_runs_is_split(store_dir):
    with open(PROGRESS, newline="") as fh:
        rows = list(csv.DictReader(fh))
    runs: list[list[dict]] = []
    for r in rows:  # a new run wherever the step count goes back
        if not runs or int(r["time/total_timesteps"]) < int(runs[-1][-1]["time/total_timesteps"]):
            runs.append([])
        runs[-1].append(r)
    assert len(runs) == 2
    out = run("ingest", PROGRESS, "--store", store_dir)
    assert "note: progress.csv holds 2 runs (time steps restart at line 6): PPO_cartpole-1, " \
           "PPO_cartpole-2" in out
    for k, rows_k in enumerate(runs, start=1):
        got, df = points_of(store_dir, f"PPO_cartpole-{k}")
        expected = {(int(r["time/total_timesteps"]), key): float(v) for r in rows_k
                    for key, v in r.items() if v != "" and key not in
                    ("time/total_timesteps", "time/time_elapsed")}
        assert got == expected
        rew = df[df["metric"] == "rollout/ep_rew_mean"].sort_values("step")
        assert rew["wall_s"].tolist() == [float(r["time/time_elapsed"]) for r in rows_k]
    # the first dump has no train/ values: empty cells are not logged, not errors
    first, _ = points_of(store_dir, "PPO_cartpole-1")
    assert (512, "rollout/ep_rew_mean") in first and (512, "train/approx_kl") not in first


def test_sb3_bad_rows_name_line_and_column(tmp_path, store_dir):
    bad = tmp_path / "0.monitor.csv"
    bad.write_text(MONITOR.read_text().replace("-132.210287,101,", "-132.2x0287,101,"))
    fails_cleanly(bad, store_dir, f"{bad}, line 4, column 'r'", "cannot parse '-132.2x0287'")
    cut = tmp_path / "cut.monitor.csv"
    cut.write_text(MONITOR.read_text().rsplit(",", 1)[0] + "\n")  # the last t lost
    fails_cleanly(cut, tmp_path / "s2", f"{cut}, line 164", "2 fields", "3 fields")
    progress = tmp_path / "PPO_9" / "progress.csv"
    progress.parent.mkdir()
    progress.write_text(PROGRESS.read_text().replace(",1024,2,382,", ",1024,2,3x2,"))
    fails_cleanly(progress, tmp_path / "s3", f"{progress}, line 3, column 'time/fps'",
                  "cannot parse '3x2' as a number")


# --- MLflow ---------------------------------------------------------------------------------------

def mlflow_runs(root: Path) -> dict[str, dict]:
    """runName -> {"points": {(step, metric): value}, "ts": {(step, metric): ms}, "params": {...}}"""
    out = {}
    for meta in root.rglob("meta.yaml"):
        run_dir = meta.parent
        if not (run_dir / "metrics").is_dir():
            continue
        points, ts = {}, {}
        for f in (run_dir / "metrics").rglob("*"):
            if f.is_file():
                name = f.relative_to(run_dir / "metrics").as_posix()
                for line in f.read_text().splitlines():
                    t, v, s = line.split()
                    points[int(s), name] = float(v)
                    ts[int(s), name] = int(t)
        params = {f.relative_to(run_dir / "params").as_posix(): f.read_text()
                  for f in (run_dir / "params").rglob("*") if f.is_file()}
        name = (run_dir / "tags" / "mlflow.runName").read_text()
        out[name] = {"points": points, "ts": ts, "params": params, "dir": run_dir}
    return out


def test_mlflow_file_store_one_run_per_mlflow_run(store_dir):
    expected = mlflow_runs(MLRUNS)
    assert sorted(expected) == ["ppo lr=1e-06 seed0", "ppo lr=3e-06 seed1"]
    out = run("ingest", MLRUNS, "--store", store_dir)
    assert out.count("ingested:") == 2 and "[mlflow] 13 points" in out
    meta = {r["run_id"]: r for r in json.loads(run("runs", "--store", store_dir, "--json"))}
    for name, exp in expected.items():
        rid = re.sub(r"[^A-Za-z0-9._=+-]+", "-", name)
        got, df = points_of(store_dir, rid)
        assert got == exp["points"]
        assert {m for _, m in got} == {"critic/score/mean", "response_length/mean",
                                       "val/test_score"}
        first = min(exp["ts"].values())
        for s, m, w in zip(df["step"], df["metric"], df["wall_s"]):
            assert w == (exp["ts"][int(s), m] - first) / 1000
        assert meta[rid]["seed"] == int(exp["params"]["seed"])
        assert meta[rid]["actor/lr"] == float(exp["params"]["actor/lr"])
        assert meta[rid]["algorithm"] == "ppo" and meta[rid]["mlflow_run_id"] == exp["dir"].name
        assert meta[rid]["mlflow_experiment"] == "gsm8k-ppo"


def test_mlflow_experiment_dir_or_one_run_dir(store_dir, tmp_path):
    experiment = next(p for p in MLRUNS.iterdir() if p.name not in ("0", ".trash"))
    assert run("ingest", experiment, "--store", store_dir, "--dry-run").count("valid") == 2
    one = mlflow_runs(MLRUNS)["ppo lr=3e-06 seed1"]["dir"]
    out = run("ingest", one, "--store", store_dir, "--dry-run")
    assert out.startswith("valid (dry run): ppo-lr=3e-06-seed1 <- ") and out.count("valid") == 1
    copy = tmp_path / "mlruns"
    shutil.copytree(MLRUNS, copy)
    runs = sorted(p for p in copy.rglob("mlflow.runName"))
    runs[1].write_text(runs[0].read_text())  # a rerun under the same name
    out = run("ingest", copy, "--store", store_dir, "--dry-run")
    ids = re.findall(r"valid \(dry run\): (\S+) <-", out)
    assert len(set(ids)) == 2 and all(i.startswith(re.sub(r"[ ]", "-", runs[0].read_text()))
                                      for i in ids)
    meta = runs[0].parent.parent / "meta.yaml"
    meta.write_text(meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted"))
    assert run("ingest", copy, "--store", store_dir, "--dry-run").count("valid") == 1


def test_mlflow_bad_metric_line_names_file_line_and_field(tmp_path, store_dir):
    copy = tmp_path / "mlruns"
    shutil.copytree(MLRUNS, copy)
    metric = sorted(copy.rglob("critic/score/mean"))[0]
    lines = metric.read_text().splitlines()
    ts, value, step = lines[1].split()
    lines[1] = f"{ts} {value}x {step}"
    metric.write_text("\n".join(lines) + "\n")
    fails_cleanly(copy, store_dir, f"{metric.parents[3]}, metrics/critic/score/mean, "
                  "line 2, column 'value'", f"cannot parse '{value}x'")


def test_mlflow_metric_named_like_a_compute_axis_is_that_axis(tmp_path, store_dir):
    """A constructed case (not a real log): the sample run plus a num_tokens metric file."""
    copy = tmp_path / "mlruns"
    shutil.copytree(MLRUNS, copy)
    run_dir = mlflow_runs(copy)["ppo lr=1e-06 seed0"]["dir"]
    score = (run_dir / "metrics" / "critic" / "score" / "mean").read_text().splitlines()
    tokens = {int(line.split()[2]): 1000 * int(line.split()[2]) for line in score}
    (run_dir / "metrics" / "num_tokens").write_text(
        "".join(f"{line.split()[0]} {tokens[int(line.split()[2])]} {line.split()[2]}\n"
                for line in score))
    run("ingest", run_dir, "--store", store_dir)
    _, df = points_of(store_dir, "ppo-lr=1e-06-seed0")
    assert "num_tokens" not in set(df["metric"])
    rows = df[df["metric"] == "critic/score/mean"]
    assert rows["tokens"].tolist() == [tokens[int(s)] for s in rows["step"]]
    val = df[df["metric"] == "val/test_score"]  # logged at steps 1, 3, 5: tokens of those steps
    assert val["tokens"].tolist() == [tokens[int(s)] for s in val["step"]]


def test_verl_values_written_as_numpy_or_torch_reprs(tmp_path, store_dir):
    expected = verl_console_points(VERL)
    text = VERL.read_bytes()
    text = re.sub(rb"critic/score/mean:([-0-9.]+)", rb"critic/score/mean:np.float64(\1)", text)
    text = re.sub(rb"critic/kl:([-0-9.]+)", rb"critic/kl:tensor(\1, device='cuda:0')", text)
    assert b"np.float64(" in text and b"tensor(" in text
    path = tmp_path / "reprs.log"
    path.write_bytes(text)
    run("ingest", path, "--store", store_dir)
    assert points_of(store_dir, "reprs")[0] == expected
