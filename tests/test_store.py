from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from rlscale.errors import InputError, StoreError
from rlscale.store import POINT_COLUMNS, RunMeta, RunWriter, Store, load_points, load_runs


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_and_read_round_trip(store_dir, sigmoid_points):
    st = Store(store_dir)
    meta = RunMeta(run_id="r1", recipe="grpo", metadata={"pretrain_tokens": 2e9},
                   source={"path": "x.csv", "format": "csv", "sha256": "abc"})
    assert st.write_run(meta, sigmoid_points) == "written"
    pts = load_points(store_dir)
    assert list(pts.columns) == list(POINT_COLUMNS)
    assert len(pts) == 75 and pts["flops"].isna().all() and pts["tokens"].isna().all()
    # readable with pyarrow alone, no rlscale
    table = pq.read_table(store_dir / "r1" / "points.parquet")
    assert table.num_rows == 75
    runs = load_runs(store_dir)
    assert runs.loc[0, "recipe"] == "grpo" and runs.loc[0, "pretrain_tokens"] == 2e9
    assert runs.loc[0, "max_gpu_hours"] == pytest.approx(20000)
    with_meta = load_points(store_dir, metric="reward", with_meta=True)
    assert (with_meta["recipe"] == "grpo").all()


def test_same_source_is_noop_and_conflict_needs_replace(store_dir, sigmoid_points):
    st = Store(store_dir)
    src = {"path": "x.csv", "format": "csv", "sha256": "abc"}
    st.write_run(RunMeta(run_id="r1", source=src), sigmoid_points)
    before = _snapshot(store_dir)
    assert st.write_run(RunMeta(run_id="r1", source=src), sigmoid_points) == "unchanged"
    other = dict(src, sha256="def")
    with pytest.raises(StoreError, match="already exists"):
        st.write_run(RunMeta(run_id="r1", source=other), sigmoid_points.head(5))
    assert _snapshot(store_dir) == before
    assert st.write_run(RunMeta(run_id="r1", source=other), sigmoid_points.head(5),
                        replace=True) == "replaced"
    assert len(load_points(store_dir)) == 5
    assert not [p for p in store_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.assign(value=float("nan")), "value"),
        (lambda d: d.assign(step=-1), "step"),
        (lambda d: d.assign(gpu_hours=-1.0), "gpu_hours"),
        (lambda d: pd.concat([d, d.head(1).assign(value=9.0)]), "step"),
        (lambda d: d.drop(columns=["metric"]), "metric"),
    ],
)
def test_bad_points_rejected_store_unchanged(store_dir, sigmoid_points, mutate, field):
    st = Store(store_dir)
    st.write_run(RunMeta(run_id="keep"), sigmoid_points)
    before = _snapshot(store_dir)
    with pytest.raises(InputError) as info:
        st.write_run(RunMeta(run_id="bad"), mutate(sigmoid_points))
    assert info.value.field == field
    assert _snapshot(store_dir) == before


def test_bad_run_id():
    with pytest.raises(InputError, match="run_id"):
        RunMeta(run_id="../escape")


def test_run_writer_appends_and_resumes(store_dir, sigmoid_points):
    w = RunWriter.open(store_dir, RunMeta(run_id="job", recipe="dapo"))
    assert Store(store_dir).read_meta("job").status == "running"
    w.append(sigmoid_points.head(10))
    w.append(sigmoid_points.iloc[10:20])
    r = RunWriter.resume(store_dir, "job")
    assert len(r.points) == 20
    r.truncate_after(int(sigmoid_points["step"].iloc[14]))
    r.close()
    meta = json.loads((store_dir / "job" / "run.json").read_text())
    assert meta["status"] == "complete"
    assert len(load_points(store_dir)) == 15
