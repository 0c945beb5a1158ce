"""A damaged run never takes the store down; a crash inside --replace keeps the newest complete
copy; `rlscale check` names every problem and `rlscale clean` removes debris (issue 21, 3-4).

The store is ingested from the repository's examples/*.csv; each test damages a copy of it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.errors import DamagedRunWarning
from rlscale.store import RunMeta, Store, load_points
from rlscale.store.damage import DamagedRun

ROOT = Path(__file__).resolve().parents[1]
RUNS = ["baseline_seed0", "baseline_seed1", "scalerl_seed0", "scalerl_seed1"]
BAD = "scalerl_seed0"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store = tmp_path_factory.mktemp("built") / "store"
    csvs = sorted(str(p) for p in (ROOT / "examples").glob("*.csv"))
    out = CliRunner().invoke(main, ["ingest", *csvs, "--recipe", "grpo", "--store", str(store)])
    assert out.exit_code == 0, out.output
    assert Store(store).run_ids() == RUNS
    return store


@pytest.fixture
def store(built, tmp_path):
    dst = tmp_path / "store"
    shutil.copytree(built, dst)
    return dst


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _parquet(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


DAMAGES = {
    "run.json truncated": ("run.json", _truncate),
    "run.json a JSON list": ("run.json", lambda p: p.write_text("[1, 2]")),
    "run.json wrong types": ("run.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "metadata": "oops"}))),
    "points random bytes": ("points.parquet",
                            lambda p: p.write_bytes(bytes(range(256)) * 4)),
    "points truncated": ("points.parquet", _truncate),
    "points deleted": ("points.parquet", lambda p: p.unlink()),
    "points wrong schema": ("points.parquet", lambda p: _parquet(p, pa.table(
        {"step": pa.array(["a", "b"]), "value": [1.0, 2.0]}))),
    "points of another run": ("points.parquet", lambda p: _parquet(p, pq.read_table(p).set_column(
        0, "run_id", pa.array(["baseline_seed0"] * pq.read_table(p).num_rows)))),
}


def _damage(store: Path, name: str) -> Path:
    file, how = DAMAGES[name]
    path = store / BAD / file
    how(path)
    return path


def _cli(*args: str) -> tuple[int, str, str]:
    out = CliRunner().invoke(main, list(args))
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    return out.exit_code, out.stdout, out.stderr


def _one_warning(stderr: str, path: Path) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Warning: ") and repr(BAD) in lines[0] and str(path) in lines[0]


@pytest.mark.parametrize("name", list(DAMAGES))
def test_readers_skip_a_damaged_run_with_one_warning(store, name):
    path = _damage(store, name)
    code, out, err = _cli("runs", "--store", str(store))
    assert code == 0, err
    assert [ln.split()[0] for ln in out.splitlines()] == [r for r in RUNS if r != BAD]
    _one_warning(err, path)
    code, out, err = _cli("fit", "--metric", "reward", "--by", "run_id", "--store", str(store))
    assert code == 0, err
    assert "run_id=baseline_seed0" in out and f"run_id={BAD}" not in out
    _one_warning(err, path)
    code, out, err = _cli("show", BAD, "--store", str(store))
    assert code == 0 and out.startswith(f"run_id: {BAD}"), (out, err)
    _one_warning(err, path)


@pytest.mark.parametrize("name", list(DAMAGES))
def test_strict_refuses_with_one_line_and_check_lists_the_problem(store, name):
    path = _damage(store, name)
    for args in (["runs"], ["fit", "--metric", "reward"], ["show", BAD]):
        code, out, err = _cli(*args, "--store", str(store), "--strict")
        assert code == 1 and out == "", (args, out)
        assert len(err.splitlines()) == 1 and err.startswith("Error: ") and str(path) in err
    code, out, err = _cli("check", "--store", str(store))
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith(f"{BAD}: {path}: ") and len(lines) == 1, out
    assert err == f"Error: checked 4 run(s) in {store}: 1 problem(s) in 1 run(s)\n"


def test_library_warns_or_raises_when_strict(store, monkeypatch):
    _damage(store, "points of another run")
    with pytest.warns(DamagedRunWarning, match=BAD):
        pts = load_points(store)
    assert sorted(pts["run_id"].unique()) == [r for r in RUNS if r != BAD]
    with pytest.raises(DamagedRun, match="names other runs"):
        load_points(store, strict=True)
    monkeypatch.setenv("RLSCALE_STRICT", "1")
    with pytest.raises(DamagedRun):
        Store(store).summaries()


def test_check_finds_order_problems_and_passes_a_sound_store(store):
    code, out, _ = _cli("check", "--store", str(store))
    assert code == 0 and out == f"checked 4 run(s) in {store}: no problems\n"
    p = store / BAD / "points.parquet"
    t = pq.read_table(p)
    pq.write_table(t.take(list(range(t.num_rows))[::-1]), p)  # steps reversed
    code, out, _ = _cli("check", "--store", str(store))
    assert code == 1 and "steps decrease for metric 'reward'" in out, out
    assert _cli("runs", "--store", str(store))[0] == 0


# -- a crash inside --replace ---------------------------------------------------------------

class Killed(BaseException):
    """The process dies here: nothing after it runs, no handler, no finally that writes."""


def _replace_killed_at(monkeypatch, root: Path, step: int, *, kill: bool = True) -> None:
    """Replace run r (value 1.0) by value 2.0, dying at the ``step``-th rename (or rmtree)."""
    calls = {"n": 0}
    real_rename, real_rmtree = os.rename, shutil.rmtree

    def rename(src, dst):
        calls["n"] += 1
        if calls["n"] >= step:
            if not kill and calls["n"] == step:
                raise OSError(5, "I/O error")
            if kill:
                raise Killed
        return real_rename(src, dst)

    def rmtree(path, *a, **kw):
        if calls["n"] >= step or (step == 3 and calls["n"] == 2):
            calls["n"] = max(calls["n"], step)
            if kill:
                raise Killed
        return real_rmtree(path, *a, **kw)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    try:
        Store(root).write_run(RunMeta(run_id="r"), _points(2.0), replace=True)
    except (Killed, Exception):
        pass
    finally:
        monkeypatch.setattr(os, "rename", real_rename)
        monkeypatch.setattr(shutil, "rmtree", real_rmtree)


def _points(v: float) -> pd.DataFrame:
    return pd.DataFrame({"step": [1, 2], "metric": "reward", "value": [v, v + 0.1]})


def _value(root: Path) -> float:
    return float(Store(root).read_points_table("r")["value"][0].as_py())


@pytest.mark.parametrize("step,expect", [(1, 1.0), (2, 2.0), (3, 2.0)])
def test_a_kill_at_each_step_of_replace_keeps_the_newest_complete_copy(tmp_path, monkeypatch,
                                                                        step, expect):
    root = tmp_path / "store"
    Store(root).write_run(RunMeta(run_id="r"), _points(1.0))
    _replace_killed_at(monkeypatch, root, step)
    if step == 2:
        assert not (root / "r").exists()  # killed between the renames: both copies kept
        young = Store(root)
        assert young.run_ids() == []  # a replace this recent may be a writer still going
        for d in root.iterdir():
            os.utime(d, (0, 0))  # ... but not one from 1970: the next reader recovers it
    assert Store(root).run_ids() == ["r"] and _value(root) == expect
    code, out, _ = _cli("clean", "--store", str(root))
    assert code == 0 and not [p for p in root.iterdir() if p.name.startswith(".")], out
    assert _value(root) == expect


def test_a_failed_second_rename_puts_the_old_copy_back(tmp_path, monkeypatch):
    root = tmp_path / "store"
    Store(root).write_run(RunMeta(run_id="r"), _points(1.0))
    _replace_killed_at(monkeypatch, root, 2, kill=False)
    assert Store(root).run_ids() == ["r"] and _value(root) == 1.0
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_clean_recovers_first_then_removes_debris_and_readers_ignore_it(store):
    before = _cli("runs", "--store", str(store))
    # debris: a killed ingest's half-staged run, a killed RL append and checkpoint, a partial
    # delete, and a replace killed between its renames (old copy in .trash, new one staged)
    (store / ".tmp-aaaa" / "half").mkdir(parents=True)
    (store / ".tmp-aaaa" / "half" / "points.parquet").write_bytes(b"PAR1 half")
    (store / BAD / ".points.parquet.0123abcd.tmp").write_bytes(b"x" * 1000)
    (store / "_ckpt" / BAD).mkdir(parents=True)
    (store / "_ckpt" / BAD / ".ckpt.pt.4567.tmp").write_bytes(b"y" * 2000)
    (store / ".deleted-bbbb").mkdir()
    shutil.copytree(store / "baseline_seed1", store / ".deleted-bbbb" / "baseline_seed1")
    (store / ".trash-cccc").mkdir()
    os.rename(store / "scalerl_seed1", store / ".trash-cccc" / "scalerl_seed1")
    tree = sorted(str(p) for p in store.rglob("*"))
    # readers ignore all of it (the young interrupted replace is left for its writer)
    code, out, err = _cli("runs", "--store", str(store))
    assert code == 0 and err == "" and out == before[1].replace(
        [ln for ln in before[1].splitlines() if ln.startswith("scalerl_seed1")][0] + "\n", "")
    assert sorted(str(p) for p in store.rglob("*")) == tree
    code, out, err = _cli("check", "--store", str(store))
    assert code == 1 and "scalerl_seed1: " in out and "absent, but a complete copy" in out
    assert "5 debris entries" in err
    code, out, _ = _cli("clean", "--store", str(store), "--dry-run")
    assert code == 0 and sorted(str(p) for p in store.rglob("*")) == tree
    assert out.splitlines()[0].startswith(
        "would recover run 'scalerl_seed1' from .trash-cccc/scalerl_seed1 (")
    assert "would remove .tmp-aaaa (9 B)" in out and "nothing changed" in out
    code, out, _ = _cli("clean", "--store", str(store))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("recovered run 'scalerl_seed1' from .trash-cccc/scalerl_seed1")
    assert "removed .tmp-aaaa (9 B)" in lines and f"removed {BAD}/.points.parquet.0123abcd.tmp " \
        "(1.0 kB)" in lines and f"removed _ckpt/{BAD}/.ckpt.pt.4567.tmp (2.0 kB)" in lines
    assert lines[-1].startswith("removed 5 entries, ")
    assert _cli("runs", "--store", str(store))[1] == before[1]
    assert not [p for p in store.rglob(".*")]
    assert _cli("clean", "--store", str(store))[1] == f"nothing to clean in {store}\n"
    assert _cli("check", "--store", str(store))[0] == 0


def test_every_run_meta_field_is_known_to_the_damage_check():
    # a field added to RunMeta (e.g. the writer of a running run) must not read as damage
    import dataclasses

    from rlscale.store.damage import _META_TYPES
    from rlscale.store.schema import RunMeta

    assert {f.name for f in dataclasses.fields(RunMeta)} <= set(_META_TYPES)
