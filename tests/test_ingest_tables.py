"""CSV/TSV, JSONL/JSON and Parquet tables, long and wide, including the shapes W&B writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rlscale.errors import InputError
from rlscale.ingest import ingest_path, ingest_paths, read_source
from rlscale.store import POINT_COLUMNS, Store, load_points


def snapshot(root):
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write(path, text):
    path.write_text(text)
    return path


def test_wide_csv_compute_axis_and_empty_cells(tmp_path, store_dir):
    f = write(tmp_path / "My Run (1).csv",
              "step,gpu_hours,reward,loss\n0,0,0.1,2\n10,1.5,0.2,\n\n20,3,0.3,1.5\n")
    [res] = ingest_path(f, store_dir, recipe="grpo", set=["pretrain_tokens=2e9", "seed=1"])
    assert (res.run_id, res.n_points, res.status) == ("My-Run-1", 5, "written")
    pts = load_points(store_dir)
    assert list(pts.columns) == list(POINT_COLUMNS)
    loss = pts[pts.metric == "loss"]
    assert loss["step"].tolist() == [0, 20] and loss["gpu_hours"].tolist() == [0.0, 3.0]
    assert pts["flops"].isna().all() and pts["tokens"].isna().all()
    meta = Store(store_dir).read_meta("My-Run-1")
    assert meta.recipe == "grpo" and meta.seed == 1 and meta.metadata == {"pretrain_tokens": 2e9}
    assert meta.source["format"] == "csv" and len(meta.source["sha256"]) == 64


def test_long_csv_tsv_and_run_col(tmp_path, store_dir):
    f = write(tmp_path / "all.tsv", "run_id\tstep\tmetric\tvalue\ttokens\n"
              "a\t1\treward\t0.5\t100\nb\t1\treward\t0.6\t90\na\t2\treward\t0.7\t200\n"
              "a\t2\treward\t0.7\t200\n")  # identical repeat collapses
    res = ingest_path(f, store_dir, run_col="run_id")
    assert [(r.run_id, r.n_points) for r in res] == [("a", 2), ("b", 1)]
    pts = load_points(store_dir, runs=["a"])
    assert pts["tokens"].tolist() == [100, 200] and str(pts["tokens"].dtype) == "int64"


def test_aliases_x_col_step_col_and_metric_filter(tmp_path, store_dir):
    f = write(tmp_path / "h.csv", "iteration,num_tokens,total_flos,gpu_time,acc,lr\n"
              "1,10,1e9,0.5,0.1,1e-6\n2,20,2e9,1.0,0.2,1e-6\n")
    [(meta, table)] = read_source(f, x_col="gpu_time", x_unit="gpu_hours", metrics=["acc"])
    df = table
    assert df["metric"].unique().tolist() == ["acc"]
    assert df["tokens"].tolist() == [10, 20] and df["flops"].tolist() == [1e9, 2e9]
    assert df["gpu_hours"].tolist() == [0.5, 1.0] and df["step"].tolist() == [1, 2]
    [(_, t2)] = read_source(f, x_col="iteration", x_unit="steps")
    assert sorted(set(t2["metric"])) == ["acc", "gpu_time", "lr"]
    [(_, t3)] = read_source(f, x_col="iteration", x_unit="step")  # fit --x's name, the same
    assert t3.equals(t2)


def test_cli_x_unit_takes_the_axis_names_of_fit_x(tmp_path):
    from click.testing import CliRunner

    from rlscale.cli import main
    from rlscale.store import X_AXES, Store

    f = write(tmp_path / "h.csv", "iteration,acc\n1,0.1\n2,0.2\n")
    for i, unit in enumerate(["step", "steps"]):
        store = str(tmp_path / f"s{i}")
        res = CliRunner().invoke(main, ["ingest", str(f), "--store", store, "--x-col", "iteration",
                                        "--x-unit", unit], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert Store(store).read_points()["step"].tolist() == [1, 2]
    res = CliRunner().invoke(main, ["ingest", str(f), "--x-col", "iteration", "--x-unit", "hours"])
    assert res.exit_code == 2 and all(a in res.output for a in X_AXES)


def test_wandb_chart_export_one_and_two_runs(tmp_path, store_dir):
    # The layout of the W&B chart "Export CSV" (every cell quoted, __MIN/__MAX envelopes).
    one = write(tmp_path / "wandb_export_2025.csv",
                '"Step","grpo-7b - train/reward","grpo-7b - train/reward__MIN",'
                '"grpo-7b - train/reward__MAX"\n"1","0.1","0.1","0.1"\n"2","0.3","0.2","0.4"\n')
    [(meta, table)] = read_source(one)
    assert meta.run_id == "wandb_export_2025"
    assert table["metric"].unique().tolist() == ["train/reward"]
    assert table["value"].tolist() == [0.1, 0.3]
    two = write(tmp_path / "two.csv", '"Step","run a - reward","run a - reward__MIN",'
                '"run a - reward__MAX","b - reward","b - reward__MIN","b - reward__MAX"\n'
                '"1","0.1","0.1","0.1","0.5","0.5","0.5"\n"2","0.2","0.2","0.2","","",""\n')
    runs = read_source(two)
    assert [(m.run_id, len(t)) for m, t in runs] == [("b", 1), ("run-a", 2)]


def _history():
    # What wandb's run.history() returns: _step/_runtime/_timestamp and NaN where not logged.
    return pd.DataFrame({
        "_step": [0, 1, 2, 3], "_runtime": [1.0, 2.0, 3.5, 5.0],
        "_timestamp": [1.7e9, 1.7e9 + 1, 1.7e9 + 2, 1.7e9 + 4],
        "train/reward": [0.1, np.nan, 0.3, 0.4], "eval/reward": [np.nan, 0.2, np.nan, 0.5],
    })


@pytest.mark.parametrize("kind", ["csv", "json", "jsonl", "parquet"])
def test_wandb_history_saved_by_pandas(tmp_path, kind):
    df, path = _history(), tmp_path / f"history.{kind}"
    {"csv": lambda: df.to_csv(path, index=False), "json": lambda: df.to_json(path),
     "jsonl": lambda: df.to_json(path, orient="records", lines=True),
     "parquet": lambda: df.to_parquet(path)}[kind]()
    [(meta, table)] = read_source(path)
    got = table
    assert sorted(set(got["metric"])) == ["eval/reward", "train/reward"]
    assert len(got) == 5  # NaN cells are "not logged", not errors
    ev = got[got.metric == "eval/reward"]
    assert ev["step"].tolist() == [1, 3] and ev["wall_s"].tolist() == [2.0, 5.0]


def test_jsonl_long_records(tmp_path):
    f = write(tmp_path / "log.jsonl", '{"step": 1, "metric": "reward", "value": 0.5}\n\n'
              '{"step": 2, "metric": "reward", "value": 0.6, "gpu_hours": 1}\n')
    [(_, t)] = read_source(f)
    assert t["value"].tolist() == [0.5, 0.6]


def test_parquet_in_store_reads_with_pyarrow_alone(tmp_path, store_dir):
    f = write(tmp_path / "r.csv", "step,gpu_hours,reward\n1,1,0.1\n2,2,0.2\n")
    ingest_path(f, store_dir)
    t = pq.read_table(store_dir / "r" / "points.parquet")
    assert t.column_names == list(POINT_COLUMNS) and t.num_rows == 2
    assert json.loads((store_dir / "r" / "run.json").read_text())["run_id"] == "r"


BAD = [
    ("step,metric,value\n1,reward,0.5\n\n2,reward,abc\n", 4, "value", "cannot parse 'abc'"),
    ("step,reward\n1,0.5\n2,nan\n", 3, "reward", "non-finite value nan"),
    ("step,reward\n1,0.5\n2,inf\n", 3, "reward", "non-finite value inf"),
    ("metric,value\nreward,0.5\n", None, "step", "no step column"),
    ("step,metric,value\n1,reward,0.5\n1,reward,0.6\n", 3, "value", "duplicate point"),
    ("step,gpu_hours,reward\n1,5,0.5\n2,4,0.6\n", 3, "gpu_hours", "gpu_hours decreases"),
    ("step,gpu_hours,reward\n1,-5,0.5\n", 2, "gpu_hours", "compute value -5.0"),
    # rows out of step order: the error names the line of the later step, found after sorting
    ("step,gpu_hours,reward\n30,9,0.1\n20,2,0.5\n10,3,0.6\n", 3, "gpu_hours",
     "gpu_hours decreases from 3.0 (step 10) to 2.0 (step 20)"),
    ("step,metric,value\n2,a,1\n1,b,1\n1,a,1\n2,b,1\n1,a,2\n", 6, "value",
     "2.0 here, 1.0 at line 4"),
    ("step,reward\n1.5,0.5\n", 2, "step", "bad step 1.5"),
    ("step,reward\n-1,0.5\n", 2, "step", "bad step -1"),
    ("step,reward\n1,0.5\n,0.6\n", 3, "step", "bad step an empty cell"),
    ("", None, None, "empty file"),
    ("step,reward\n", None, None, "no data rows"),
    ("step,reward\n1,0.5\n2,0.6,7\n", 3, None, "3 fields"),
    ("step,metric,value\n1,reward,\n", 2, "value", "empty cell"),
]


@pytest.mark.parametrize(("text", "line", "field", "what"), BAD)
def test_bad_tables_name_file_line_column_and_leave_store(tmp_path, store_dir, text, line,
                                                          field, what):
    good = write(tmp_path / "good.csv", "step,reward\n1,0.5\n")
    ingest_path(good, store_dir)
    before = snapshot(store_dir)
    bad = write(tmp_path / "bad.csv", text)
    with pytest.raises(InputError) as info:
        ingest_paths([good, bad], store_dir, run_id=None)
    msg = str(info.value)
    assert str(bad) in msg and what in msg
    assert info.value.line == line and info.value.field == field
    assert snapshot(store_dir) == before


def test_drop_nonfinite(tmp_path):
    f = write(tmp_path / "n.csv", "step,reward\n1,0.5\n2,nan\n3,inf\n4,0.7\n")
    [(_, t)] = read_source(f, drop_nonfinite=True)
    assert t["step"].tolist() == [1, 4]


def test_multiline_quoted_field_keeps_editor_line(tmp_path):
    f = write(tmp_path / "q.csv", 'step,note,reward\n1,"two\nlines",0.5\n2,ok,oops\n')
    with pytest.raises(InputError) as info:
        read_source(f)
    assert info.value.line == 4 and info.value.field == "reward"


def test_json_mixed_column_and_bad_json(tmp_path):
    f = write(tmp_path / "a.jsonl", '{"step": 1, "reward": 0.5}\n{"step": 2, "reward": "x"}\n')
    with pytest.raises(InputError, match=r"line 2, column 'reward'.*not a number"):
        read_source(f)
    g = write(tmp_path / "b.jsonl", '{"step": 1, "reward": 0.5}\n{"step": 2,\n')
    with pytest.raises(InputError, match=r"b.jsonl, line 2: not valid JSON"):
        read_source(g)


def test_unknown_format_and_bad_set(tmp_path):
    f = write(tmp_path / "x.xlsx", "junk")
    with pytest.raises(InputError, match="cannot tell the format"):
        read_source(f)
    g = write(tmp_path / "g.csv", "step,reward\n1,0.5\n")
    with pytest.raises(InputError, match="seed.*not an integer"):
        read_source(g, set=["seed=abc"])
    with pytest.raises(InputError, match="unknown format"):
        read_source(g, format="excel")


def test_run_column_by_name_seed_and_recipe_are_metadata(tmp_path, store_dir):
    f = write(tmp_path / "sweep.csv", "name,seed,recipe,step,reward\n"
              "grpo a,1,grpo,10,0.1\ngrpo a,1,grpo,20,0.2\nppo/b,2,ppo,10,0.3\n")
    res = ingest_path(f, store_dir)
    assert [(r.run_id, r.n_points, r.metrics) for r in res] == [
        ("grpo-a", 2, ["reward"]), ("ppo-b", 1, ["reward"])]  # seed is no metric
    pts = load_points(store_dir, with_meta=True)
    assert pts.groupby("run_id")[["seed", "recipe"]].first().to_dict("index") == {
        "grpo-a": {"seed": 1, "recipe": "grpo"}, "ppo-b": {"seed": 2, "recipe": "ppo"}}


def test_recipe_col_seed_col_and_run_prefix(tmp_path, store_dir):
    body = "run,algorithm,trial,step,reward\nbase,grpo,3,1,0.1\nbase,grpo,3,2,0.2\n"
    a, b = write(tmp_path / "a.csv", body), write(tmp_path / "b.csv", body)
    with pytest.raises(InputError, match=r"run_id 'base' comes from two logs.*--run-prefix"):
        ingest_paths([a, b], store_dir)
    res = ingest_paths([a, b], store_dir, recipe_col="algorithm", seed_col="trial",
                       run_prefix="{file}-")
    assert [r.run_id for r in res] == ["a-base", "b-base"] and res[0].metrics == ["reward"]
    [(meta, _)] = read_source(a, recipe_col="algorithm", seed_col="trial", run_prefix="x_")
    assert (meta.run_id, meta.recipe, meta.seed) == ("x_base", "grpo", 3)


def test_varying_seed_col_run_ids_that_clash_and_gpus_without_step_time(tmp_path, store_dir):
    f = write(tmp_path / "t.csv", "run,seed,step,reward\nx,1,1,0.1\nx,2,2,0.2\n")
    assert "seed" in {m for r in ingest_paths([f], store_dir, dry_run=True) for m in r.metrics}
    with pytest.raises(InputError, match=r"t.csv, line 3, column 'seed': 2 here, 1 earlier"):
        read_source(f, seed_col="seed")
    g = write(tmp_path / "g.csv", "run,step,reward\na b,1,0.1\na/b,1,0.2\n")
    with pytest.raises(InputError, match=r"line 3, column 'run': runs 'a b' and 'a/b' both give"):
        read_source(g)
    with pytest.raises(InputError, match=r"--gpus needs a per-step time"):
        read_source(f, gpus=8)
    assert not store_dir.exists()


def test_step_times_with_gaps_and_token_counter_that_decreases(tmp_path):
    f = write(tmp_path / "verl.csv", "step,timing_s/step,perf/total_num_tokens,reward\n"
              "1,10,100,0.1\n2,20,50,0.2\n4,30,300,0.3\n")
    [(meta, pts)] = read_source(f, gpus=2)
    reward = pts[pts.metric == "reward"]
    # each logged time stands for the steps since the previous log: 10, +20, +2 x 30
    assert reward["gpu_hours"].tolist() == pytest.approx([20 / 3600, 60 / 3600, 180 / 3600])
    assert reward["tokens"].isna().all()  # it decreased: not a counter, so a metric
    assert "perf/total_num_tokens" in set(pts["metric"])
