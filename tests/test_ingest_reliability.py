"""Malformed input never crashes or touches the store; concurrent and killed writers are safe."""

from __future__ import annotations

import json
import multiprocessing
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlscale.cli import main
from rlscale.errors import InputError, StoreError
from rlscale.ingest import ingest_paths
from rlscale.store import RunMeta, Store, load_points, normalize_points

ROOT = Path(__file__).resolve().parent.parent


def snapshot(root):
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


HEADERS = ["step", "Step", "_step", "metric", "value", "reward", "gpu_hours", "tokens", "_runtime",
           "run_id", "a - reward", "loss", ""]
CELLS = ["0", "1", "2", "10", "-1", "1.5", "0.25", "1e3", "nan", "inf", "-inf", "", "abc", "reward",
         "x y", '"q"', "\"a,b\"", "True", "9" * 25, " 3 "]

tables = st.tuples(
    st.lists(st.sampled_from(HEADERS), min_size=0, max_size=5),
    st.lists(st.lists(st.sampled_from(CELLS), min_size=0, max_size=6), max_size=6),
    st.sampled_from([",", "\t"]),
    st.booleans(),
)


def render(table) -> str:
    header, rows, sep, trailing_newline = table
    text = "\n".join(sep.join(r) for r in [header, *rows])
    return text + ("\n" if trailing_newline else "")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables, suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_malformed_tables_fail_cleanly_and_leave_store(tmp_path, table, suffix):
    store = tmp_path / "store"
    good = tmp_path / "good.csv"
    good.write_text("step,reward\n1,0.5\n")
    ingest_paths([good], store)
    before = snapshot(store)
    bad = tmp_path / f"bad{suffix}"
    bad.write_text(render(table))
    try:
        results = ingest_paths([bad], store, replace=False)
    except (InputError, StoreError) as exc:
        assert str(bad) in str(exc) or "run_id" in str(exc)
        assert snapshot(store) == before
        return
    pts = load_points(store, runs=[r.run_id for r in results])
    assert np.isfinite(pts["value"]).all() and (pts["step"] >= 0).all()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables)
def test_malformed_tables_through_cli_never_traceback(tmp_path, table):
    bad = tmp_path / "bad.csv"
    bad.write_text(render(table))
    store = tmp_path / "clistore"
    before = snapshot(store)
    result = CliRunner().invoke(main, ["ingest", str(bad), "--store", str(store)])
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.output.startswith("Error: ") and "Traceback" not in result.output
        assert snapshot(store) == before


def _ingest_one(path: str, store: str, recipe: str, start_at: float) -> str:
    time.sleep(max(0.0, start_at - time.time()))  # all eight write at the same moment
    [result] = ingest_paths([path], store, recipe=recipe)
    return result.status


@pytest.mark.slow
def test_eight_processes_ingest_into_one_store(tmp_path):
    store = tmp_path / "store"
    files = []
    for i in range(8):
        f = tmp_path / f"run{i}.csv"
        f.write_text("step,gpu_hours,reward\n" + "".join(f"{s},{s * 0.5},{i + s / 1e3}\n"
                                                        for s in range(2000)))
        files.append([str(f), str(store), f"r{i % 2}"])
    # forkserver with the package preloaded: 8 real processes without paying 8 interpreter imports
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["rlscale.ingest", "rlscale.store"])
    with ctx.Pool(8) as pool:
        pool.map(time.sleep, [0.01] * 8)  # workers up before the clock starts
        start_at = time.time() + 0.3
        assert pool.starmap(_ingest_one, [(*f, start_at) for f in files]) == ["written"] * 8
    st_ = Store(store)
    assert st_.run_ids() == [f"run{i}" for i in range(8)]
    pts = load_points(store)
    assert len(pts) == 8 * 2000
    for i in range(8):
        mine = pts[pts.run_id == f"run{i}"].sort_values("step")
        assert mine["value"].to_numpy() == pytest.approx(i + np.arange(2000) / 1e3)
        assert st_.read_meta(f"run{i}").recipe == f"r{i % 2}"
    assert not [p for p in store.iterdir() if p.name.startswith(".")]


WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np, pandas as pd
    from rlscale.store import RunMeta, Store
    n = int(sys.argv[2])
    st = Store(sys.argv[1])
    df = pd.DataFrame({"step": np.arange(n), "metric": "reward", "value": np.linspace(0, 1, n),
                       "gpu_hours": np.arange(n) * 0.1})
    print("ready", flush=True)
    for k in range(1000):
        st.write_run(RunMeta(run_id=f"big{os.getpid()}-{k}"), df)
""")


@pytest.mark.slow
def test_sigkill_mid_write_leaves_no_partial_run(tmp_path):
    rng = random.Random(0)
    n = 200_000
    store = tmp_path / "store"
    store.mkdir()
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(n)], cwd=ROOT,
                             stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.3))
        deadline = time.time() + 20
        while not any(q.name.startswith(".tmp-") for q in store.iterdir()):  # a write under way
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.02))
        p.send_signal(signal.SIGKILL)
        p.wait()
        st_ = Store(store)
        for run_id in st_.run_ids():
            table = st_.read_points_table(run_id)
            assert table.num_rows == n and st_.read_meta(run_id).status == "complete"
        assert len(load_points(store)) == n * len(st_.run_ids())
        # what a plain reader globs (DuckDB/polars read_parquet('<store>/*/points.parquet'))
        globbed = sorted(store.glob("*/points.parquet"))
        assert [g.parent.name for g in globbed] == st_.run_ids()
        st_.clean()
        assert not [q for q in store.iterdir() if q.name.startswith(".")]


def test_run_in_flight_is_invisible_to_readers_and_globs(tmp_path):
    store = Store(tmp_path / "store")
    store.write_run(RunMeta(run_id="done"), pd.DataFrame({"step": [1], "metric": "r", "value": 1.0}))
    table = normalize_points(pd.DataFrame({"step": [1], "metric": "r", "value": 2.0}), "wip")
    store.root.mkdir(exist_ok=True)
    staged = store._stage(RunMeta(run_id="wip"), table, store._scratch(".tmp-"))  # killed writer
    assert (staged / "points.parquet").is_file()
    assert store.run_ids() == ["done"]
    assert [p.parent.name for p in store.root.glob("*/points.parquet")] == ["done"]
    assert load_points(store.root)["run_id"].tolist() == ["done"]
    assert store.clean() and not [p for p in store.root.iterdir() if p.name.startswith(".")]


json_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20),
                        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["x", "1"]),
                        st.lists(st.integers(), max_size=2))
entries = st.dictionaries(st.sampled_from(["step", "reward", "loss", "num_tokens", "total_flos",
                                           "eval_reward", "epoch"]), json_values, max_size=5)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.one_of(st.lists(entries, max_size=6), json_values))
def test_malformed_trainer_state_fails_cleanly(tmp_path, history):
    path = tmp_path / "out" / "trainer_state.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"global_step": 1, "log_history": history}))
    store = tmp_path / "trlstore"
    before = snapshot(store)
    try:
        ingest_paths([path], store, replace=True)
    except InputError as exc:
        assert str(path) in str(exc)
        assert snapshot(store) == before
        return
    pts = load_points(store)
    assert np.isfinite(pts["value"]).all()
