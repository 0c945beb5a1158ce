"""Real logs, as their frameworks wrote them, ingest with no options or the one an error names.

The files are copies (some cut to their first rows) of ../shared/real-logs and
../shared/real-curves/raw, each folder with its SOURCE.txt, under tests/fixtures/real-logs/.
Every test parses the raw file on its own (csv / json) and checks the store against it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.errors import InputError
from rlscale.ingest import ingest_paths, read_source
from rlscale.store import load_points

REAL = Path(__file__).resolve().parent / "fixtures" / "real-logs"


def rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def snapshot(root):
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli_error(store, *args):
    """Run ``rlscale ingest ARGS`` into a store that holds one run; it must fail in one line
    starting with ``Error:``, exit 1, and leave the store byte for byte as it was."""
    runner = CliRunner()
    seed = REAL / "tbcsv-ppo-auv" / "PPO_19_head.csv"
    assert runner.invoke(main, ["ingest", str(seed), "--store", str(store)]).exit_code == 0
    before = snapshot(store)
    res = runner.invoke(main, ["ingest", *map(str, args), "--store", str(store)])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    assert snapshot(store) == before
    return lines[0]


def test_all_fixtures_keep_their_source():
    folders = sorted(p for p in REAL.iterdir() if p.is_dir())
    assert len(folders) == 6
    for folder in folders:
        text = (folder / "SOURCE.txt").read_text()
        assert "repo: github.com/" in text and "commit: " in text, folder


# --- TensorBoard "Download CSV" -------------------------------------------------------------

def test_tensorboard_download_csv(tmp_path):
    path = REAL / "tbcsv-ppo-auv" / "PPO_19_head.csv"
    raw = rows(path)
    [res] = ingest_paths([path], tmp_path / "s")
    assert (res.run_id, res.n_points, res.metrics) == ("PPO_19_head", 40, ["PPO_19_head"])
    pts = load_points(tmp_path / "s")
    assert pts["step"].tolist() == [int(r["Step"]) for r in raw]
    assert pts["value"].tolist() == [float(r["Value"]) for r in raw]
    wall = [float(r["Wall time"]) for r in raw]
    assert pts["wall_s"].tolist() == pytest.approx([w - wall[0] for w in wall], abs=1e-6)
    assert pts["gpu_hours"].isna().all() and "Wall time" not in set(pts["metric"])
    [(_, renamed)] = read_source(path, metrics=("rollout/ep_rew_mean",))
    assert set(renamed["metric"]) == {"rollout/ep_rew_mean"} and len(renamed) == 40


# --- a long table of many models' curves (ColPret) ------------------------------------------

COLPRET = REAL / "colpret-lang" / "revisiting_lang.csv"


def test_colpret_errors_name_the_step_column_then_the_run_columns(tmp_path):
    msg = cli_error(tmp_path / "s", COLPRET)
    assert "no step column" in msg and "--step-col 'Seen Examples'" in msg
    msg = cli_error(tmp_path / "s", COLPRET, "--step-col", "Seen Examples")
    assert "duplicate point for metric 'Loss'" in msg
    assert "--run-col Task --run-col Model" in msg


def test_colpret_with_the_named_options(tmp_path):
    raw = rows(COLPRET)
    results = ingest_paths([COLPRET], tmp_path / "s", step_col="Seen Examples",
                           run_col=("Task", "Model"))
    curves: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for r in raw:  # identical repeated rows are one point
        curves.setdefault((r["Task"], r["Model"]), {})[int(float(r["Seen Examples"]))] = (
            float(r["Loss"]), float(r["Training"]))
    assert len(results) == len(curves) == 20
    pts = load_points(tmp_path / "s", with_meta=True)
    for res in results:
        assert res.metrics == ["Loss", "Training"]
    nmt = next(k for k in curves if k[1] == "6 Enc, 6 Dec")
    run = pts[pts.run_id == "log_perplexity-6-Enc-6-Dec"]
    loss = run[run.metric == "Loss"]
    assert loss["step"].tolist() == sorted(curves[nmt])
    assert loss["value"].tolist() == [curves[nmt][s][0] for s in sorted(curves[nmt])]
    assert sum(r.n_points for r in results) == 2 * sum(len(c) for c in curves.values())
    assert set(run["Domain"]) == {"NMT"}  # text constant within each run: its metadata


# --- TRL / HF trainer_state.json -------------------------------------------------------------

def _history(path):
    # HF writes NaN as a bare literal; Python's json reads it.
    return json.loads(path.read_text())["log_history"]


def test_trl_dpo_literal_nan_needs_the_option_its_error_names(tmp_path):
    path = REAL / "trl-dpo-nan" / "results" / "trainer_state.json"
    msg = cli_error(tmp_path / "s", path)
    assert "log_history[0], column 'grad_norm': non-finite value nan" in msg
    assert "--drop-nonfinite" in msg
    [res] = ingest_paths([path], tmp_path / "s", drop_nonfinite=True)
    history = _history(path)
    values = [(e["step"], k, v) for e in history for k, v in e.items()
              if k not in ("step", "num_tokens")]
    finite = [x for x in values if math.isfinite(x[2])]
    assert res.n_dropped == len(values) - len(finite) == 2
    assert res.n_points == len(finite)
    pts = load_points(tmp_path / "s")
    pts = pts[pts.run_id == res.run_id]
    gn = pts[pts.metric == "grad_norm"]
    assert gn["step"].tolist() == [s for s, k, v in finite if k == "grad_norm"]
    loss = pts[pts.metric == "loss"]
    assert loss["tokens"].tolist() == [int(e["num_tokens"]) for e in history]


def test_trl_orpo_final_summary_is_metadata(tmp_path):
    path = REAL / "trl-orpo-recsys" / "trainer_state.json"
    history = _history(path)
    summary = history[-1]
    assert "train_runtime" in summary
    [(meta, pts)] = read_source(path)
    assert meta.metadata == {k: v for k, v in summary.items() if k not in ("step", "epoch")}
    want = [(e["step"], k, v) for e in history[:-1] for k, v in e.items() if k != "step"]
    assert len(pts) == len(want) == 462
    assert set(pts["metric"]) == {k for _, k, _ in want}
    assert pts["flops"].isna().all()  # total_flos (a total) makes no one-step flops axis
    loss = pts[pts.metric == "loss"]
    assert loss["step"].tolist() == [s for s, k, _ in want if k == "loss"]
    assert loss["value"].tolist() == [v for _, k, v in want if k == "loss"]


# --- W&B run.history() dump (prime-rl) ----------------------------------------------------------

PRIMERL = REAL / "wandb-history-primerl" / "1y33h9zr_history_head.csv"


def test_wandb_history_tokens_and_wall_axes(tmp_path):
    raw = rows(PRIMERL)
    [(meta, pts)] = read_source(PRIMERL)
    internal = {"step", "_step", "_runtime", "_timestamp", "progress/total_tokens"}
    metrics = sorted(set(raw[0]) - internal)
    assert sorted(set(pts["metric"])) == metrics and len(pts) == len(metrics) * len(raw)
    reward = pts[pts.metric == "reward/mean"]
    assert reward["step"].tolist() == [int(float(r["step"])) for r in raw]
    assert reward["value"].tolist() == [float(r["reward/mean"]) for r in raw]
    assert reward["wall_s"].tolist() == [float(r["_runtime"]) for r in raw]
    assert reward["tokens"].tolist() == [int(float(r["progress/total_tokens"])) for r in raw]
    assert pts["gpu_hours"].isna().all() and "derived" not in meta.source


def test_wandb_history_gpus_give_gpu_hours_from_step_times(tmp_path):
    raw = rows(PRIMERL)
    [(meta, pts)] = read_source(PRIMERL, gpus=8)
    reward = pts[pts.metric == "reward/mean"]
    total, want = 0.0, []
    for r in raw:  # steps 0..7, one log per step
        total += float(r["time/step"])
        want.append(total * 8 / 3600)
    assert reward["gpu_hours"].tolist() == pytest.approx(want, rel=1e-12)
    assert "time/step" in meta.source["derived"]["gpu_hours"]
    assert "time/step" in set(pts["metric"])  # the step time itself stays a metric


def test_metric_filter_keeps_the_columns_that_make_axes():
    [(_, pts)] = read_source(PRIMERL, gpus=8, metrics=("reward/mean",))
    assert set(pts["metric"]) == {"reward/mean"}  # time/step and the counter were read, not kept
    assert pts["gpu_hours"].notna().all() and pts["tokens"].notna().all()


# --- W&B chart exports (Deep-GRPO) ----------------------------------------------------------

DEEP = REAL / "wandb-export-deepgrpo"


def _export_curves(path, x="Step"):
    curves: dict[str, list[tuple[int, float]]] = {}
    raw = rows(path)
    for col in raw[0]:
        if col == x or col.endswith(("__MIN", "__MAX")) or col.endswith(" - _step"):
            continue
        run, metric = col.split(" - ", 1)
        step_col = x if x == "Step" else f"{run} - _step"
        curves[run] = [(int(float(r[step_col])), float(r[col])) for r in raw if r[col] != ""]
    return curves, metric


def test_wandb_export_one_run_per_column(tmp_path):
    path = DEEP / "loss_weight.csv"
    curves, metric = _export_curves(path)
    results = ingest_paths([path], tmp_path / "s")
    assert sorted(r.run_id for r in results) == sorted(curves) and len(results) == 4
    pts = load_points(tmp_path / "s")
    assert set(pts["metric"]) == {metric} == {"val-core/GSM8K/reward/mean@1"}
    for run, curve in curves.items():
        got = pts[pts.run_id == run]
        assert list(zip(got["step"], got["value"])) == curve


def test_wandb_export_of_one_run_is_named_like_its_file(tmp_path):
    path = DEEP / "test_reward.csv"
    curves, metric = _export_curves(path)
    [(meta, pts)] = read_source(path)
    [(run, curve)] = curves.items()
    assert meta.run_id == "test_reward" and meta.metadata == {"wandb_run": run}
    assert list(zip(pts["step"], pts["value"])) == curve and len(curve) == 186


def test_wandb_export_against_time_takes_steps_from_each_run(tmp_path):
    path = DEEP / "scale_budget.csv"
    curves, _ = _export_curves(path, x="Relative Time (Process)")
    raw = rows(path)
    results = ingest_paths([path], tmp_path / "s")
    assert sorted(r.run_id for r in results) == sorted(curves) and len(results) == 4
    pts = load_points(tmp_path / "s")
    for run, curve in curves.items():
        got = pts[pts.run_id == run]
        assert list(zip(got["step"], got["value"])) == curve
        col = next(c for c in raw[0] if c.startswith(run + " - val"))
        assert got["wall_s"].tolist() == [float(r["Relative Time (Process)"]) for r in raw
                                          if r[col] != ""]


def test_two_exports_sharing_a_run_need_run_prefix(tmp_path):
    a, b = DEEP / "grpo_scale_rollout.csv", DEEP / "loss_weight.csv"
    msg = cli_error(tmp_path / "s", a, b)
    assert "comes from two logs" in msg and "--run-prefix '{file}-'" in msg
    results = ingest_paths([a, b], tmp_path / "s", run_prefix="{file}-")
    ids = {r.run_id for r in results}
    shared = "Qwen2.5-0.5B-Instruct-GSM8K-CRPO-sp-p1-b8-gamma2.0-lam1.0-01161659"
    assert {f"grpo_scale_rollout-{shared}", f"loss_weight-{shared}"} <= ids
    assert len(ids) == len(_export_curves(a)[0]) + len(_export_curves(b)[0]) == 9


# --- TensorBoard event files as TRL writes them ------------------------------------------------

tb = pytest.importorskip("torch.utils.tensorboard")


def _trl_events(log_dir, last_epoch=0.4):
    """TRL's pattern: train/epoch at every log, and once more (same step) at the end."""
    with tb.SummaryWriter(log_dir=str(log_dir)) as w:
        for s in (1, 2, 3, 4):
            w.add_scalar("train/loss", 1.0 / s, s)
            w.add_scalar("train/epoch", 0.1 * s, s)
        w.add_scalar("train/epoch", last_epoch, 4)
    return log_dir


def test_trl_tensorboard_repeated_epoch_is_one_point(tmp_path):
    run = _trl_events(tmp_path / "trl")
    [res] = ingest_paths([run], tmp_path / "s")
    assert (res.n_points, res.metrics) == (8, ["train/epoch", "train/loss"])
    ep = load_points(tmp_path / "s").query("metric == 'train/epoch'")
    assert ep["step"].tolist() == [1, 2, 3, 4]
    assert ep["value"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4], rel=1e-6)


def test_trl_tensorboard_unequal_repeat_shows_both_values(tmp_path):
    run = _trl_events(tmp_path / "trl", last_epoch=0.4000001)
    with pytest.raises(InputError) as info:
        read_source(run)
    msg = str(info.value)
    assert "duplicate point for metric 'train/epoch' at step 4" in msg
    assert "0.4000000059604645 at" in msg and "0.40000009536743164 here" in msg
