"""Forecasts across scale: the laws of A, B, C_mid, R0 recovered from simulated multi-size stores,
leave-largest-out where the law holds and where it breaks, the warnings, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _charts import validate_vegalite
from _scale_sim import SIZES, TRUTH, make_scale_store, true_params
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.errors import InputError
from rlscale.forecast.scale import fit_scale_laws
from rlscale.forecast.scale_forecast import (
    fit_scales,
    scale_backtest,
    scale_forecast,
    summary_line,
)
from rlscale.plot.scale import curve_frame, law_frame, scale_chart
from rlscale.store import load_points

KEY = "model_params"


def _fits(root, **kw):
    make_scale_store(root, **kw)
    points = load_points(root, with_meta=True)
    return fit_scales(points, key=KEY, metric="reward", x="gpu_hours", level=0.9)


@pytest.fixture(scope="module")
def holds(tmp_path_factory):
    return _fits(tmp_path_factory.mktemp("holds") / "st")


@pytest.fixture(scope="module")
def breaks(tmp_path_factory):
    return _fits(tmp_path_factory.mktemp("breaks") / "st", plateau_after=7e9)


def _param(laws, name, key):
    return laws.laws[name].summary(0.9)["params"][key]


def test_near_noiseless_store_recovers_every_scale_law(tmp_path):
    laws = fit_scale_laws(_fits(tmp_path / "st", noise=1e-4), key=KEY)
    a = laws.laws["A"]
    assert a.form == "saturating" and a.dof == 2
    assert _param(laws, "A", "A_max")["value"] == pytest.approx(TRUTH["A_max"], abs=0.01)
    assert _param(laws, "A", "alpha")["value"] == pytest.approx(TRUTH["alpha"], rel=0.03)
    assert laws.laws["C_mid"].form == "power"
    assert _param(laws, "C_mid", "b")["value"] == pytest.approx(TRUTH["gamma"], abs=0.005)
    assert laws.laws["B"].form == "shared"          # B is the same at every size
    assert _param(laws, "B", "a")["value"] == pytest.approx(TRUTH["B"], abs=0.01)
    assert laws.laws["R0"].form == "loglinear"      # R0 rises with log N
    assert _param(laws, "R0", "b")["value"] == pytest.approx(TRUTH["r0_slope"], abs=0.003)
    point, _, _ = laws.params_at(3e10)
    truth = true_params(3e10)
    assert point["A"] == pytest.approx(truth["A"], abs=0.005)
    assert point["C_mid"] == pytest.approx(truth["C_mid"], rel=0.02)
    assert laws.warnings == []


def test_noisy_store_has_the_truth_inside_its_intervals(holds):
    laws = fit_scale_laws(holds, key=KEY)
    for name, key, truth in (("A", "alpha", TRUTH["alpha"]), ("A", "A_max", TRUTH["A_max"]),
                             ("C_mid", "b", TRUTH["gamma"])):
        est = _param(laws, name, key)
        assert est["lower"] <= truth <= est["upper"], (name, key, est)
    assert _param(laws, "A", "alpha")["value"] == pytest.approx(TRUTH["alpha"], abs=0.12)
    assert _param(laws, "C_mid", "b")["value"] == pytest.approx(TRUTH["gamma"], abs=0.03)
    fc = scale_forecast(laws, [3e10], metric="reward", x_axis="gpu_hours", target=0.7)
    truth = true_params(3e10)
    top = fc.curve.iloc[-1]  # the last grid point sits on the ceiling
    assert top["mean_lower"] <= truth["A"] + 0.01 and top["mean"] == pytest.approx(truth["A"],
                                                                                  abs=0.02)
    row = fc.compute.iloc[0]
    x_true = truth["C_mid"] * ((0.7 - truth["R0"]) / (truth["A"] - 0.7)) ** (1 / truth["B"])
    assert row["status"] == "reached" and row["x"] == pytest.approx(x_true, rel=0.15)
    over = fc.overtakes.iloc[0]
    assert over["status"] == "crosses" and over["x_lower"] < over["x"] < over["x_upper"]


def test_leave_largest_out_beats_the_naive_forecast_where_the_law_holds(holds):
    bt = scale_backtest(holds, key=KEY, metric="reward", x_axis="gpu_hours")
    s = bt.summary
    assert bt.held_out == SIZES[-1] and bt.fitted == list(SIZES[:-1])
    assert bt.beats_naive and s["vs_naive"] < 0.6
    assert s["mae"] < 1.5 * s["mae_own_fit"]           # close to the noise floor
    assert 0.3 <= s["coverage@0.5"] <= 0.8 and s["coverage@0.9"] >= 0.8
    assert bt.params.set_index("param").loc["A", "inside"]
    assert bt.warnings == [] and "does NOT" not in summary_line(bt)


def test_leave_largest_out_says_so_where_the_law_breaks(breaks):
    bt = scale_backtest(breaks, key=KEY, metric="reward", x_axis="gpu_hours")
    assert not bt.beats_naive and bt.summary["vs_naive"] > 1.5
    assert bt.summary["coverage@0.9"] < 0.7
    line = summary_line(bt)
    assert "does NOT beat" in line and "do not hold" in line


def test_warnings_few_scales_exact_fit_and_far_extrapolation(holds):
    two = fit_scale_laws(holds[:2], key=KEY)
    assert [w.code for w in two.warnings] == ["few_scales"]
    assert two.laws["A"].form == "loglinear" and two.laws["B"].form == "shared"
    three = fit_scale_laws(holds[:3], key=KEY)
    assert "exact_fit" in [w.code for w in three.warnings]
    laws = fit_scale_laws(holds, key=KEY)
    far = [w for w in laws.warnings_at(1.4e11) if w.code == "far_extrapolation"]
    assert len(far) == 1 and "10x the largest" in far[0].message
    assert not [w for w in laws.warnings_at(5e10) if w.code == "far_extrapolation"]


def test_exponent_not_identified_and_law_misfit(tmp_path):
    def linear_a(n):  # A straight in log N: no bend, so no ceiling to find
        return {**true_params(n), "A": 0.6 + 0.08 * np.log10(n / 1e9)}

    codes = [w.code for w in fit_scale_laws(_fits(tmp_path / "a", noise=0.002,
                                                  params_of=linear_a), key=KEY).warnings]
    assert "exponent_not_identified" in codes

    def zigzag(n):  # C_mid jumps up and down with size: no power law holds
        i = SIZES.index(n)
        return {**true_params(n), "C_mid": 2000.0 * (3.0 if i % 2 else 1.0)}

    laws = fit_scale_laws(_fits(tmp_path / "z", params_of=zigzag), key=KEY)
    misfit = [w for w in laws.warnings if w.code == "law_misfit"]
    assert misfit and misfit[0].message.startswith("C_mid: chi2/dof")


def test_bad_inputs_raise_input_errors(holds, tmp_path):
    points = load_points(make_scale_store(tmp_path / "st", sizes=(1e9, 2e9)).root,
                         with_meta=True)
    with pytest.raises(InputError, match="no metadata key 'pretrain_tokens'"):
        fit_scales(points, key="pretrain_tokens", metric="reward", x="gpu_hours")
    with pytest.raises(InputError, match="at least 3 scales"):
        scale_backtest(fit_scales(points, key=KEY, metric="reward", x="gpu_hours"), key=KEY,
                       metric="reward", x_axis="gpu_hours")
    with pytest.raises(InputError, match="at least 2 fitted scales"):
        fit_scale_laws(holds[:1], key=KEY)
    with pytest.raises(InputError, match="law=sigmoid|sigmoid"):
        fit_scales(points, key=KEY, metric="reward", x="gpu_hours", law="power")


def test_plot_frames_and_chart(holds):
    laws = fit_scale_laws(holds, key=KEY)
    fc = scale_forecast(laws, [3e10], metric="reward", x_axis="gpu_hours")
    lf = law_frame(fc)
    pred = lf[lf["kind"] == "predicted"].set_index("param")
    point, _, _ = laws.params_at(3e10)
    assert pred.loc["A", "value"] == pytest.approx(point["A"])
    assert sorted(lf.loc[lf["kind"] == "fitted", "scale"].unique()) == list(SIZES)
    law = lf[(lf["kind"] == "law") & (lf["param"] == "C_mid")]
    assert law["scale"].max() == pytest.approx(3e10) and (np.diff(law["value"]) > 0).all()
    cf = curve_frame(fc)
    assert set(cf["kind"]) == {"observed", "observed fit", "predicted"}
    p = cf[cf["kind"] == "predicted"]
    assert (p["lower"] <= p["y"]).all() and (p["y"] <= p["upper"]).all()
    validate_vegalite(scale_chart(fc).to_dict())


def test_curve_frame_leaves_out_points_at_zero_compute(tmp_path):
    # RL jobs log their first evaluation at compute 0, which a log axis cannot show (it squashed
    # every curve against the left edge of the width study's figure)
    laws = fit_scale_laws(_fits(tmp_path / "st", sizes=SIZES[:3], seeds=(0,), zero_start=True),
                          key=KEY)
    assert all((f.data["x"] == 0).any() for f in laws.fits)
    cf = curve_frame(scale_forecast(laws, [1e10], metric="reward", x_axis="gpu_hours"))
    assert (cf["x"] > 0).all()
    assert (cf["kind"] == "observed").sum() == sum(len(f.data) - 1 for f in laws.fits)


# -- the CLI -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "st"
    make_scale_store(root)
    return str(root)


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_forecast_backtest_and_plot(store, tmp_path):
    out = _run("forecast", "--store", store, "--metric", "reward", "--scale-by", KEY,
               "--at", "3e10", "--ceiling-frac", "0.9", "--plot", str(tmp_path / "s.json"))
    assert out.exit_code == 0, out.output
    assert "B     shared" in out.output and "R0    loglinear" in out.output
    assert "overtakes model_params=1.4e+10 at" in out.output
    assert "wrote" in out.output and (tmp_path / "s.json").exists()
    data = json.loads(_run("forecast", "--store", store, "--metric", "reward", "--scale-by", KEY,
                           "--at", "3e10,7e10", "--json").output)
    assert data["laws"]["A"]["form"] == "saturating" and len(data["curve"]) == 14
    assert [w["code"] for w in data["warnings"]] == ["far_extrapolation"]
    bt = _run("backtest", "--store", store, "--metric", "reward", "--scale-by", KEY,
              "--leave-largest-out")
    assert bt.exit_code == 0 and "beats the naive forecast" in bt.output


@pytest.mark.parametrize("args, message", [
    (["forecast", "--scale-by", KEY], "--scale-by needs --at"),
    (["forecast", "--at", "3e10", "--budget", "1e4"], "--at need --scale-by"),
    (["forecast", "--scale-by", "nope", "--at", "3e10"], "no metadata key 'nope'"),
    (["forecast", "--scale-by", KEY, "--at", "3e10", "--by", "run_id"],
     "--by cannot be used with --scale-by"),
    (["forecast", "--scale-by", KEY, "--at", "3e10", "--rank-at", "5"],
     "--rank-at cannot be used with --scale-by"),
    (["forecast", "--scale-by", KEY, "--at", "big"], "'big' is not a comma-separated list"),
    (["forecast", "--scale-by", "recipe", "--at", "3e10"], "is not a positive number"),
    (["backtest", "--leave-largest-out"], "--leave-largest-out and --scale-by KEY go together"),
    (["backtest", "--scale-by", KEY, "--leave-largest-out", "--cut", "0.5"],
     "--cut cannot be used with --scale-by"),
])
def test_cli_bad_input_is_one_line(store, args, message):
    out = CliRunner().invoke(main, [args[0], "--store", store, "--metric", "reward", *args[1:]])
    assert out.exit_code != 0 and message in out.output
    errors = [ln for ln in out.output.splitlines() if ln.startswith("Error:")]
    assert "Traceback" not in out.output and len(errors) == 1, out.output
