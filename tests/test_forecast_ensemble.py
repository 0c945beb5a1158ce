"""The default forecast (rlscale.forecast.ensemble) on constructed cases, and backtest's baselines.

These check the method's properties, not the benchmark's numbers (benchmarks/extrapolation.py
measures those on real curves).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rlscale import load_points
from rlscale.cli import main
from rlscale.fit import fit
from rlscale.forecast.backtest import backtest, forecast_fit
from rlscale.forecast.baselines import baseline_forecast
from rlscale.forecast.ensemble import MIN_POINTS, ensemble
from rlscale.store import Store


def sigmoid(x, A=0.8, B=1.6, C_mid=50.0, R0=0.1):
    return R0 + (A - R0) / (1 + (C_mid / x) ** B)


def frame(x, y, run="r"):
    return pd.DataFrame({"run_id": run, "metric": "reward", "step": np.arange(len(x)),
                         "gpu_hours": x, "value": y})


def noisy_curve(n=80, sd=0.01, seed=0, x_max=200.0):
    rng = np.random.default_rng(seed)
    x = np.linspace(2.0, x_max, n)
    return x, sigmoid(x) + rng.normal(0, sd, n)


def test_intervals_widen_with_distance_from_the_data():
    x, y = noisy_curve()
    ens = ensemble(fit(frame(x, y), x="gpu_hours"))
    far = np.array([210.0, 300.0, 500.0, 1000.0])
    for level in (0.5, 0.9):
        p = ens.predict(far, level=level)
        half = (p["pred_upper"] - p["pred_lower"]) / 2
        assert np.all(np.diff(half) > 0)
    # and the 90% interval holds the 50% one
    p50, p90 = ens.predict(far, level=0.5), ens.predict(far, level=0.9)
    assert np.all(p90["pred_lower"] < p50["pred_lower"]) and np.all(p50["pred_upper"] < p90["pred_upper"])


def test_a_curve_that_sits_above_its_law_is_forecast_from_its_recent_level():
    # the last third of the run sits 0.05 above the law (a real curve's long deviation)
    x, y = noisy_curve(sd=0.005, seed=1)
    y = y + np.where(np.arange(x.size) >= 2 * x.size // 3, 0.05, 0.0)
    fitted = fit(frame(x, y), x="gpu_hours")
    recent = float(np.median(y[-10:]))
    nxt = np.array([x[-1] + 5.0])
    law = forecast_fit(fitted, nxt, levels=(0.9,), forecast="law")["mean"][0]
    ens = forecast_fit(fitted, nxt, levels=(0.9,))["mean"][0]
    assert abs(ens - recent) < abs(law - recent)
    assert abs(ens - recent) < 0.02


def test_one_crashed_evaluation_at_the_end_barely_moves_the_forecast():
    x, y = noisy_curve(seed=2)
    crashed = y.copy()
    crashed[-1] = 0.05  # one evaluation that failed
    at = np.array([250.0, 400.0])
    ok = ensemble(fit(frame(x, y), x="gpu_hours")).mean(at)
    bad = ensemble(fit(frame(x, crashed), x="gpu_hours")).mean(at)
    assert np.all(np.abs(ok - bad) < 0.1 * (y[-1] - 0.05))
    # carrying the last value forward would have moved by the whole crash
    last = baseline_forecast("last", x, crashed, at)["mean"]
    assert np.all(np.abs(last - ok) > 0.5)


def test_where_the_law_is_right_the_ensemble_forecast_is_close_to_the_truth():
    x, y = noisy_curve(n=60, sd=0.005, seed=3, x_max=120.0)
    ens = ensemble(fit(frame(x, y), x="gpu_hours"))
    assert ens.weights.sum() == pytest.approx(1.0)
    assert np.all(ens.weights >= 0)
    far = np.array([150.0, 240.0])
    np.testing.assert_allclose(ens.mean(far), sigmoid(far), atol=0.02)
    p = ens.predict(far, level=0.9)
    assert np.all((p["pred_lower"] < sigmoid(far)) & (sigmoid(far) < p["pred_upper"]))


def test_too_few_points_fall_back_to_the_single_fit():
    x, y = noisy_curve(n=MIN_POINTS - 1, seed=4)
    fitted = fit(frame(x, y), x="gpu_hours")
    assert ensemble(fitted) is None
    at = np.array([300.0])
    np.testing.assert_allclose(forecast_fit(fitted, at, levels=(0.9,))["mean"],
                               forecast_fit(fitted, at, levels=(0.9,), forecast="law")["mean"])


def test_inside_the_window_the_fit_answers():
    x, y = noisy_curve(seed=5)
    fitted = fit(frame(x, y), x="gpu_hours")
    inside = np.array([20.0, 100.0])
    np.testing.assert_allclose(forecast_fit(fitted, inside, levels=(0.9,))["mean"],
                               forecast_fit(fitted, inside, levels=(0.9,), forecast="law")["mean"])


def test_backtest_scores_the_baselines_beside_the_forecast():
    x, y = noisy_curve(seed=6)
    pts = pd.concat([frame(x, y, "a"), frame(x, y + 0.02, "b")], ignore_index=True)
    bt = backtest(pts, metric="reward", x="gpu_hours", by="run_id", cut=0.5, level=0.9)
    s = bt.summary.set_index("group")
    for g in ("run_id=a", "run_id=b"):
        row = s.loc[g]
        test_x = x[x > 0.5 * x.max()]
        truth = (y if g.endswith("a") else y + 0.02)[x > 0.5 * x.max()]
        train_y = (y if g.endswith("a") else y + 0.02)[x <= 0.5 * x.max()]
        assert row["mae_last"] == pytest.approx(np.mean(np.abs(truth - train_y[-1])))
        assert row["mae_last_k"] == pytest.approx(np.mean(np.abs(truth - train_y[-5:].mean())))
        best = min(row["mae_last"], row["mae_last_k"], row["mae_log_linear"])
        assert row["vs_best"] == pytest.approx(row["mae"] / best)
        assert len(test_x) == row["n_test"]


def test_backtest_cli_says_plainly_whether_the_forecast_beats_the_baselines(tmp_path):
    # a flat noisy run: nothing beats the recent level by much, and the output says which won
    rng = np.random.default_rng(7)
    x = np.arange(1, 61, dtype=float)
    flat = 0.5 + rng.normal(0, 0.01, x.size)
    rising = sigmoid(x * 4) + rng.normal(0, 0.005, x.size)
    st = Store(tmp_path / "s")
    for run, y in (("flat", flat), ("rising", rising)):
        p = tmp_path / f"{run}.csv"
        pd.DataFrame({"step": x.astype(int), "reward": y}).to_csv(p, index=False)
        assert CliRunner().invoke(main, ["ingest", str(p), "--store", str(st.root)]).exit_code == 0
    res = CliRunner().invoke(main, ["backtest", "--store", str(st.root), "--metric", "reward",
                                    "--by", "run_id", "--cut", "0.5"])
    assert res.exit_code == 0, res.output
    assert "ensemble forecast" in res.output.splitlines()[0]
    assert "last value" in res.output and "vs best" in res.output
    verdict = res.output.strip().splitlines()[-1]
    assert verdict.startswith("the forecast ")
    bt = backtest(load_points(st.root, with_meta=True), metric="reward", x="step", by="run_id",
                  cut=0.5)
    losing = [r["group"] for r in bt.summary.to_dict("records")
              if r["group"] != "overall" and r["vs_best"] >= 1]
    if losing:
        assert "does not beat" in verdict and all(g in verdict for g in losing)
    else:
        assert "beats every naive baseline" in verdict


def test_a_forecast_far_beyond_anything_the_curve_has_shown_is_flagged():
    from rlscale.forecast.budgets import reward_at

    rng = np.random.default_rng(8)
    # seen only up to its midpoint: the law expects a large rise the data have not shown yet
    x = np.linspace(2.0, 50.0, 40)
    early = fit(frame(x, sigmoid(x) + rng.normal(0, 0.005, x.size)), x="gpu_hours")
    rows = reward_at(early, [55.0, 2000.0])
    assert "far_from_recent" not in rows["warnings"].iloc[0]  # just past the data: near it
    assert "far_from_recent" in rows["warnings"].iloc[1]
    # a run that has levelled off: forecasts stay near its level, nothing is flagged
    flat = fit(frame(x, 0.6 + rng.normal(0, 0.01, x.size)), x="gpu_hours")
    assert not ensemble(flat).far(np.array([100.0, 1000.0])).any()
    assert not any("far_from_recent" in w for w in reward_at(flat, [100.0, 1000.0])["warnings"])


def test_a_forecast_made_just_after_the_curve_broke_is_flagged():
    # a real collapse (the last evaluation fell to 0, and stayed there) looks like one crashed
    # evaluation: the forecast keeps the level before it, and says it may be wrong
    x, y = noisy_curve(seed=2)
    at = np.array([250.0, 400.0])
    assert not ensemble(fit(frame(x, y), x="gpu_hours")).far(at).any()
    crashed = y.copy()
    crashed[-1] = 0.0
    ens = ensemble(fit(frame(x, crashed), x="gpu_hours"))
    assert ens.far(at).all()
    assert ens.last_value == 0.0 and ens.tol_before < ens.tol  # the break inflates the wobble
    # a last point within the wobble is no break
    wiggle = y.copy()
    wiggle[-1] -= 0.01
    assert not ensemble(fit(frame(x, wiggle), x="gpu_hours")).far(at).any()


def test_an_unidentified_ceiling_flags_a_smaller_move_past_the_data():
    """Where the fit cannot identify its ceiling, how far the forecast climbs past the data rests
    on a parameter the data do not pin down: 2 wobbles past its value at the last point flag it,
    where an identified fit needs 4 from the recent level."""
    from dataclasses import replace

    from rlscale.forecast.ensemble import FAR, FAR_UNIDENTIFIED

    rng = np.random.default_rng(8)
    x = np.linspace(2.0, 50.0, 40)
    ens = ensemble(fit(frame(x, sigmoid(x) + rng.normal(0, 0.005, x.size)), x="gpu_hours"))
    xs = np.geomspace(51.0, 5000.0, 400)
    moved = np.abs(ens.mean(xs) - ens.mean(ens.x_last)[0]) / ens.tol
    from_level = np.abs(ens.mean(xs) - ens.level_value) / ens.tol
    between = (moved > FAR_UNIDENTIFIED) & (from_level < FAR)
    assert between.any()  # the curve keeps rising past the data, so some forecasts lie there
    at = xs[between]
    assert not replace(ens, identified=True).far(at).any()
    assert replace(ens, identified=False).far(at).all()
    near = xs[(moved < FAR_UNIDENTIFIED) & (from_level < FAR)]
    assert near.size and not replace(ens, identified=False).far(near).any()
    noisy = frame(x, 0.2 + 0.05 * np.log(x) + rng.normal(0, 0.01, x.size))  # no bend at all
    unbent = fit(noisy, x="gpu_hours")
    assert any(w.code == "asymptote_not_identified" for w in unbent.warnings)
    assert not ensemble(unbent).identified


def test_the_last_value_is_a_member_weighted_like_the_others_unless_the_curve_broke():
    x, y = noisy_curve(seed=2)
    ens = ensemble(fit(frame(x, y), x="gpu_hours"))
    last = ens.members.index("last value")
    assert ens.last_value == y[-1]
    assert 0 < ens.weights[last] < 1
    # the member forecasts the last value at every future compute
    from dataclasses import replace

    alone = replace(ens, weights=np.eye(len(ens.members))[last])
    assert np.allclose(alone.mean(np.array([250.0, 1000.0])), y[-1])
    # where the law is right (this curve), its members forecast better in-window than the noisy
    # last point: the law gets most of the weight
    laws = [i for i, m in enumerate(ens.members) if m.startswith("law")]
    assert ens.weights[laws].sum() > 0.5
    # a last point that broke away from the curve (a crash) gets no weight: the forecast keeps
    # the level before it (and far() flags it: test above)
    crashed = y.copy()
    crashed[-1] = 0.05
    broke = ensemble(fit(frame(x, crashed), x="gpu_hours"))
    assert broke.weights[last] == 0.0 and broke.weights.sum() == pytest.approx(1.0)


def _pass_rate_near_its_top():
    """A curve that is still climbing fast at its end, at 0.9: its later points alone (a
    burn-in member) extrapolate a ceiling far above 1 unless the metric's range bounds it."""
    rng = np.random.default_rng(5)
    x = np.linspace(1.0, 60.0, 60)
    y = np.clip(0.1 + 0.8 * (x / 60.0) ** 1.5 + rng.normal(0, 0.01, x.size), 0.0, 1.0)
    return x, y


@pytest.mark.parametrize("metric, bounded", [("reward", True), ("episode_return", False)])
def test_a_pass_rate_forecast_stays_in_its_range_and_only_a_pass_rate_is_bounded(metric, bounded):
    x, y = _pass_rate_near_its_top()
    fitted = fit(frame(x, y).assign(metric=metric), metric=metric, x="gpu_hours")
    ens = ensemble(fitted)
    ceilings = [p["A"] for p in ens.params if p is not None]
    assert ceilings
    far = np.array([200.0, 1000.0, 10000.0])
    pred = forecast_fit(fitted, far, levels=(0.9,))
    if bounded:  # every member's ceiling, and the forecast and its interval, within [0, 1]
        assert max(ceilings) <= 1.0
        assert np.all(pred["mean"] <= 1.0) and np.all(pred["upper@0.9"] <= 1.0)
    else:  # the same numbers named as a return are not a pass rate: nothing clips them
        assert max(ceilings) > 1.0
        assert np.any(pred["upper@0.9"] > 1.0)
