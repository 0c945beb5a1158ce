"""`rlscale forecast` and `rlscale backtest` on a tiny simulated store."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.fit.laws import sigmoid
from rlscale.store import RunMeta, Store

TRUE = {"a": dict(A=0.610, B=1.92, C_mid=2542.0), "c": dict(A=0.710, B=1.65, C_mid=4242.0)}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("fstore") / "store"
    st = Store(root)
    rng = np.random.default_rng(5)
    for recipe, p in TRUE.items():
        for seed in range(2):
            x = np.geomspace(100.0, 30000.0, 30)
            y = sigmoid(x, R0=0.45, **p) + rng.normal(0, 0.006, x.size)
            pts = pd.DataFrame({"step": np.arange(x.size), "metric": "reward", "value": y,
                                "gpu_hours": x, "flops": x * 1.44e18})
            st.write_run(RunMeta(run_id=f"{recipe}-{seed}", recipe=recipe, seed=seed), pts)
    return str(root)


def _run(*args: str, ok: bool = True):
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert (res.exit_code == 0) == ok, res.output
    return res


def _digest(root: str) -> str:
    h = hashlib.sha256()
    for path in sorted(Store(root).root.rglob("*")):
        if path.is_file():
            h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


def test_budget_json_has_the_documented_keys(store):
    res = _run("forecast", "--store", store, "--metric", "reward", "--budget", "1e3,2e4", "--json")
    data = json.loads(res.output)
    rows = data["forecasts"]
    assert len(rows) == 4 and data["level"] == 0.9
    for key in ("group", "x", "mean", "mean_lower", "mean_upper", "pred_lower", "pred_upper",
                "level", "law", "method"):
        assert key in rows[0]
    c = [r for r in rows if r["group"] == {"recipe": "c"} and r["x"] == 2e4][0]
    assert c["mean"] == pytest.approx(float(sigmoid(2e4, R0=0.45, **TRUE["c"])), abs=0.01)
    assert c["pred_lower"] < c["mean_lower"] < c["mean"] < c["mean_upper"] < c["pred_upper"]


def test_target_never_is_null_and_unreachable(store):
    data = json.loads(_run("forecast", "--store", store, "--metric", "reward", "--target", "0.68",
                           "--json").output)
    by = {r["group"]["recipe"]: r for r in data["forecasts"]}
    assert by["a"]["reachable"] is False and by["a"]["x"] is None and by["a"]["status"] == "never"
    assert by["c"]["reachable"] is True and by["c"]["x_lower"] < by["c"]["x"] < by["c"]["x_upper"]
    table = _run("forecast", "--store", store, "--metric", "reward", "--target", "0.68").output
    assert "never" in table


def test_ceiling_frac_with_dollars(store):
    data = json.loads(_run("forecast", "--store", store, "--metric", "reward", "--ceiling-frac",
                           "0.9", "--usd-per-gpu-hour", "2.5", "--json").output)
    for r in data["forecasts"]:
        assert r["usd"] == pytest.approx(2.5 * r["x"])
        assert r["usd_lower"] == pytest.approx(2.5 * r["x_lower"])
        p = TRUE[r["group"]["recipe"]]
        assert r["x"] == pytest.approx(p["C_mid"] * 9 ** (1 / p["B"]), rel=0.25)


def test_flops_axis_converts_through_the_stated_throughput(store):
    gh = json.loads(_run("forecast", "--store", store, "--metric", "reward", "--budget", "5000",
                         "--usd-per-gpu-hour", "2", "--json").output)["forecasts"]
    fl = json.loads(_run("forecast", "--store", store, "--metric", "reward", "--x", "flops",
                         "--budget", str(5000 * 1.44e18), "--peak-flops", "1e15", "--mfu", "0.4",
                         "--usd-per-gpu-hour", "2", "--json").output)["forecasts"]
    for a, b in zip(gh, fl):
        assert b["gpu_hours"] == pytest.approx(5000.0) and b["usd"] == pytest.approx(10000.0)
        assert a["usd"] == pytest.approx(10000.0)
        assert b["mean"] == pytest.approx(a["mean"], abs=1e-3)  # the same curves, rescaled x


def test_rank_at_in_dollars(store):
    data = json.loads(_run("forecast", "--store", store, "--metric", "reward", "--rank-at", "50000",
                           "--usd-budget", "--usd-per-gpu-hour", "2.5", "--json").output)
    rows = data["forecasts"]
    assert [r["group"]["recipe"] for r in rows] == ["c", "a"] and rows[0]["rank"] == 1
    assert rows[0]["x"] == pytest.approx(20000.0) and rows[0]["usd"] == pytest.approx(50000.0)
    assert data["p_leader_leads"] > 0.95
    assert sum(r["p_best"] for r in rows) == pytest.approx(1.0)
    assert isinstance(data["crossovers"], list)
    text = _run("forecast", "--store", store, "--metric", "reward", "--rank-at", "20000").output
    assert "P(leader really leads" in text and "crossovers:" in text


def test_backtest_table_and_json(store):
    before = _digest(store)
    data = json.loads(_run("backtest", "--store", store, "--metric", "reward", "--cut", "0.3",
                           "--json").output)
    assert [s["group"] for s in data["summary"]] == ["recipe=a", "recipe=c", "overall"]
    overall = data["summary"][-1]
    assert overall["n_test"] == len(data["points"]) > 10 and 0 <= overall["coverage"] <= 1
    assert {"group", "x", "y", "mean", "pred_lower", "pred_upper", "covered"} <= set(data["points"][0])
    text = _run("backtest", "--store", store, "--metric", "reward", "--cut-x", "8000").output
    assert "coverage" in text and "overall" in text
    assert _digest(store) == before  # forecasts and backtests never write to the store


@pytest.mark.parametrize("args, message", [
    (["--budget", "1e3", "--target", "0.6"], "exactly one of --budget"),
    ([], "exactly one of --budget"),
    (["--budget", "1e3,abc"], "comma-separated list of numbers"),
    (["--budget", "0"], "positive finite"),
    (["--budget", "1e3", "--x", "tokens", "--usd-per-gpu-hour", "2"], "cannot convert compute axis 'tokens'"),
    (["--budget", "1e3", "--x", "flops", "--usd-per-gpu-hour", "2"], "state a throughput"),
    (["--budget", "1e3", "--peak-flops", "1e15"], "both --peak-flops and --mfu"),
    (["--target", "0.6", "--usd-budget", "--usd-per-gpu-hour", "2"], "--usd-budget applies"),
    (["--budget", "1e3", "--law", "all"], "one law"),
    (["--budget", "1e3", "--metric", "loss"], "no points for metric 'loss'"),
])
def test_bad_input_is_a_clear_error(store, args, message):
    base = ["forecast", "--store", store] + ([] if "--metric" in args else ["--metric", "reward"])
    res = CliRunner().invoke(main, base + args)
    assert res.exit_code != 0
    assert message in res.output


def test_backtest_needs_one_cut(store):
    res = CliRunner().invoke(main, ["backtest", "--store", store, "--metric", "reward"])
    assert res.exit_code != 0 and "exactly one of --cut" in res.output


def test_help_shows_shared_fit_options_and_examples():
    for cmd in ("forecast", "backtest"):
        text = _run(cmd, "--help").output
        assert "--burn-in" in text and "--bootstrap" in text and "--resample" in text
        assert "Example" in text
    assert "--max-x" not in _run("backtest", "--help").output


def test_saved_fits_give_the_same_forecast(store, tmp_path):
    import shutil

    copy = str(tmp_path / "store")
    shutil.copytree(store, copy)
    args = ["forecast", "--store", copy, "--metric", "reward", "--budget", "3000", "--json"]
    res = CliRunner().invoke(main, args + ["--saved"])
    assert res.exit_code != 0 and "rlscale fit --metric reward --save" in res.output
    _run("fit", "--store", copy, "--metric", "reward", "--level", "0.9", "--save")
    fresh = json.loads(_run(*args).output)["forecasts"]
    reused = json.loads(_run(*args, "--saved").output)["forecasts"]
    for a, b in zip(fresh, reused):
        assert b["group"] == a["group"]
        assert b["mean"] == pytest.approx(a["mean"], rel=1e-9)
        assert b["mean_upper"] == pytest.approx(a["mean_upper"], rel=1e-9)


def test_fit_options_reach_the_fit_including_interval():
    from rlscale.cli._fitopts import fit_kwargs

    opts = {"x": "gpu_hours", "by": "recipe,seed", "law": "sigmoid", "burn_in": None, "r0": "fit",
            "loss": "linear", "bootstrap": 0, "resample": "points", "method": "lmfit",
            "level": 0.9, "seed": 0, "drop_nan": False, "interval": "profile"}
    kw = fit_kwargs(opts)
    assert kw["interval"] == "profile" and kw["by"] == ["recipe", "seed"]
    assert "max_x" not in kw  # backtest drops --max-x; it must not be invented


@pytest.fixture(scope="module")
def step_store(tmp_path_factory):
    """Runs logged against the step only (as most real logs are): no gpu_hours, flops, tokens."""
    root = tmp_path_factory.mktemp("sstore") / "store"
    st = Store(root)
    rng = np.random.default_rng(6)
    for seed in range(2):
        steps = np.arange(10, 610, 10)
        y = sigmoid(steps.astype(float), R0=0.3, A=0.7, B=1.6, C_mid=150.0)
        pts = pd.DataFrame({"step": steps, "metric": "eval/accuracy",
                            "value": y + rng.normal(0, 0.006, steps.size)})
        st.write_run(RunMeta(run_id=f"s{seed}", recipe="grpo", seed=seed), pts)
    return str(root)


def test_x_defaults_to_the_first_axis_the_runs_have_and_the_output_names_it(store, step_store):
    res = _run("fit", "--store", step_store, "--metric", "eval/accuracy")
    assert res.output.splitlines()[0].startswith("eval/accuracy vs step: sigmoid law")
    assert "NOT FITTED" not in res.output and "too_few_points" not in res.output
    res = _run("forecast", "--store", step_store, "--metric", "eval/accuracy", "--budget", "2000")
    assert res.output.startswith("eval/accuracy vs step: reward at budget")
    # a store with GPU-hours uses them first
    res = _run("fit", "--store", store, "--metric", "reward")
    assert res.output.startswith("reward vs gpu_hours:")
    data = json.loads(_run("backtest", "--store", step_store, "--metric", "eval/accuracy",
                           "--cut", "0.5", "--json").output)
    assert data["x"] == "step"


def test_an_axis_the_runs_lack_is_one_line_naming_the_axes_they_have(step_store):
    before = _digest(step_store)
    res = _run("fit", "--store", step_store, "--metric", "eval/accuracy", "--x", "gpu_hours",
               ok=False)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:")
    assert "gpu_hours" in lines[0] and "the runs have step" in lines[0]
    assert "--x step" in lines[0] and "Traceback" not in res.output
    assert _digest(step_store) == before


def test_fit_and_forecast_give_a_verdict_per_group(store):
    res = _run("fit", "--store", store, "--metric", "reward")
    tail = res.output.split("verdicts:")[1].strip().splitlines()
    assert [ln.split(":")[0].strip() for ln in tail] == ["recipe=a", "recipe=c"]
    doc = json.loads(_run("fit", "--store", store, "--metric", "reward", "--json").output)
    for f in doc["fits"]:
        v = f["verdict"]
        assert v["verdict"] in ("still rising", "plateaued", "declining")
        assert v["remaining_gain_lower"] <= v["remaining_gain"] <= v["remaining_gain_upper"]
    data = json.loads(_run("forecast", "--store", store, "--metric", "reward", "--budget", "1e5",
                           "--json").output)
    assert [v["group"] for v in data["verdicts"]] == [{"recipe": "a"}, {"recipe": "c"}]
    assert all(v["level"] == 0.9 for v in data["verdicts"])
    text = _run("forecast", "--store", store, "--metric", "reward", "--budget", "1e5").output
    assert "\nverdicts:\n  recipe=a: " in text


def _near_one(metric, seed=7):
    rng = np.random.default_rng(seed)
    x = np.geomspace(100.0, 30000.0, 40)
    y = sigmoid(x, R0=0.6, A=0.97, B=1.5, C_mid=1000.0) + rng.normal(0, 0.02, x.size)
    y = np.clip(y, 0, 1)
    return pd.DataFrame({"run_id": "r", "step": np.arange(x.size), "metric": metric,
                         "value": y, "gpu_hours": x})


def test_a_pass_rate_forecast_is_clipped_to_its_range_and_says_so():
    from rlscale.fit import fit
    from rlscale.forecast.budgets import reward_at
    row = reward_at(fit(_near_one("eval/accuracy"), metric="eval/accuracy"), [1e5],
                    level=0.99).iloc[0]
    assert row["pred_upper"] == 1.0 and "interval_clipped" in row["warnings"]
    assert 0 <= row["pred_lower"] <= row["mean"] <= 1
    # the same values under a name that is no pass rate are not bounded
    other = reward_at(fit(_near_one("rewards/margins"), metric="rewards/margins"), [1e5],
                      level=0.99).iloc[0]
    assert other["pred_upper"] > 1.0 and "interval_clipped" not in other["warnings"]


def test_a_ranking_from_fits_that_cannot_identify_their_ceilings_says_so(tmp_path):
    root = tmp_path / "store"
    st = Store(root)
    rng = np.random.default_rng(8)
    for recipe, hi in (("early", 2500.0), ("late", 30000.0)):
        x = np.geomspace(100.0, hi, 30)  # "early" stops at C_mid: its A is an extrapolation
        y = sigmoid(x, R0=0.45, A=0.65, B=1.8, C_mid=2500.0) + rng.normal(0, 0.006, x.size)
        st.write_run(RunMeta(run_id=recipe, recipe=recipe, seed=0),
                     pd.DataFrame({"step": np.arange(x.size), "metric": "reward", "value": y,
                                   "gpu_hours": x}))
    data = json.loads(_run("forecast", "--store", str(root), "--metric", "reward",
                           "--rank-at", "1e5", "--json").output)
    assert data["unidentified"] == ["recipe=early"]
    text = _run("forecast", "--store", str(root), "--metric", "reward", "--rank-at", "1e5").output
    assert "warning: the ceilings of recipe=early are not identified" in text
