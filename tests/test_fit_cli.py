"""`rlscale fit` and saved fits."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.fit import fit, load_fits, save_fits
from rlscale.store import RunMeta, Store, load_points
from tests.fitsim import TABLE1, curve


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "store")
    rng = np.random.default_rng(0)
    for recipe, truth in (("base", TABLE1[0]), ("big", TABLE1[2])):
        for seed in range(2):
            pts = curve(*truth, rng=rng, n=40).drop(columns=["run_id"])
            st.write_run(RunMeta(run_id=f"{recipe}-{seed}", recipe=recipe, seed=seed), pts)
    st.write_run(RunMeta(run_id="tiny", recipe="tiny"),
                 curve(*TABLE1[0], rng=rng, n=3).drop(columns=["run_id"]))
    return st.root


def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run(*args):
    return CliRunner().invoke(main, ["fit", *args], catch_exceptions=False)


def test_table_lists_every_group_and_flags_the_tiny_one(store):
    before = digest(store)
    res = run("--store", str(store), "--metric", "reward")
    assert res.exit_code == 0, res.output
    assert "recipe=base" in res.output and "recipe=big" in res.output
    tiny = [ln for ln in res.output.splitlines() if "recipe=tiny" in ln][0]
    assert "NOT FITTED" in tiny and "too_few_points" in tiny
    assert digest(store) == before  # fitting never writes without --save


def test_json_format(store):
    res = run("--store", str(store), "--metric", "reward", "--json", "--by", "run_id",
              "--bootstrap", "20")
    doc = json.loads(res.output)
    assert [f["group"]["run_id"] for f in doc["fits"]] == ["base-0", "base-1", "big-0", "big-1",
                                                          "tiny"]
    f = doc["fits"][0]
    for key in ("group", "law", "metric", "x", "n_points", "window", "params", "gof",
                "warnings"):
        assert key in f
    assert set(f["params"]) == {"A", "B", "C_mid", "R0"}
    assert set(f["params"]["A"]) >= {"value", "lower", "upper"}
    assert f["params"]["A"]["method"].startswith("bootstrap-")
    assert doc["fits"][-1]["warnings"][0]["code"] == "too_few_points"


def test_save_then_load_round_trip(store):
    res = run("--store", str(store), "--metric", "reward", "--save", "--burn-in", "100")
    assert res.exit_code == 0 and "saved fits to" in res.output
    path = store / "_fits" / "reward__gpu_hours__sigmoid__recipe.json"
    assert path.is_file()
    assert sorted(Store(store).run_ids()) == ["base-0", "base-1", "big-0", "big-1", "tiny"]
    fits = load_fits(store, metric="reward", law="sigmoid", by="recipe")
    assert [f.group["recipe"] for f in fits] == ["base", "big", "tiny"]
    assert fits[0].window[0] == 100.0 and fits[0].options["burn_in"] == 100.0
    fresh = fit(load_points(store, metric="reward", with_meta=True), by="recipe", burn_in=100)
    assert fits[0].params["A"].value == pytest.approx(fresh[0].params["A"].value)
    pd.testing.assert_frame_equal(fits[0].predict([5e3]), fresh[0].predict([5e3]))
    assert load_fits(store, metric="kl") == []


def test_save_fits_python_api_names_files(tmp_path):
    f = fit(curve(*TABLE1[0], rng=np.random.default_rng(1)), law="all")
    paths = save_fits(tmp_path, f)
    assert sorted(p.name for p in paths) == sorted(
        f"reward__gpu_hours__{law}__all.json" for law in ("sigmoid", "power", "exp", "loglinear"))
    assert len(load_fits(tmp_path, law="exp")) == 1


def test_law_all_table_shows_ranks(store):
    res = run("--store", str(store), "--metric", "reward", "--law", "all", "--x", "flops")
    assert res.exit_code == 0
    assert "rank(heldout/aic/bic)" in res.output and "loglinear" in res.output


@pytest.mark.parametrize("args, match", [
    (["--metric", "kl"], "no points for metric 'kl'"),
    (["--metric", "reward", "--r0", "low"], "'low' is not 'fit', 'first' or a number"),
    (["--metric", "reward", "--law", "sigmod"], "unknown law 'sigmod'"),
    (["--metric", "reward", "--by", "lr"], "cannot group by 'lr'"),
])
def test_bad_input_is_a_clean_error(store, args, match):
    before = digest(store)
    res = CliRunner().invoke(main, ["fit", "--store", str(store), *args])
    assert res.exit_code != 0 and match in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert digest(store) == before


def test_empty_store_is_a_clean_error(tmp_path):
    res = CliRunner().invoke(main, ["fit", "--store", str(tmp_path / "none"), "--metric", "r"])
    assert res.exit_code == 1 and "no runs in store" in res.output


def test_help_has_an_example():
    res = run("--help")
    assert "Example" in res.output and "--bootstrap" in res.output
