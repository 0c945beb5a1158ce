"""Fitting: parameter recovery, interval coverage, agreement with scipy, the ScaleRL grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

import rlscale
from rlscale.fit import FitResult, fit
from rlscale.fit.grid import grid_search
from rlscale.fit.solver import Space
from rlscale.fit.laws import get_law
from tests.fitsim import TABLE1, ar1_noise, curve, sigmoid


@pytest.mark.parametrize("truth", TABLE1)
def test_recovers_table1_parameters(truth):
    A, B, C_mid, R0 = truth
    rng = np.random.default_rng(1)
    fits = [fit(curve(*truth, rng=rng)) for _ in range(10)]
    assert all(f.ok for f in fits)
    a_err = np.mean([abs(f.params["A"].value - A) for f in fits])
    b_err = np.mean([abs(f.params["B"].value / B - 1) for f in fits])
    c_err = np.mean([abs(f.params["C_mid"].value / C_mid - 1) for f in fits])
    assert a_err < 0.01
    assert b_err < 0.10
    assert c_err < 0.10
    assert all("asymptote_not_identified" not in f.warning_codes for f in fits)


def test_wald_interval_for_A_covers_truth_about_95_percent():
    A, B, C_mid, R0 = TABLE1[0]
    rng = np.random.default_rng(2024)
    hits = []
    for _ in range(200):
        f = fit(curve(A, B, C_mid, R0, rng=rng))
        hits.append(f.params["A"].lower <= A <= f.params["A"].upper)
        assert f.params["A"].method.startswith("wald")
    cover = np.mean(hits)
    assert 0.90 <= cover <= 0.99, cover


def test_ar1_noise_widens_intervals_and_uses_block_bootstrap():
    A, B, C_mid, R0 = TABLE1[0]
    rng = np.random.default_rng(5)
    noise = ar1_noise(rng, 75, 0.8, 0.01)
    f = fit(curve(A, B, C_mid, R0, rng=rng, noise=noise), bootstrap=200)
    assert f.resid_ar1 > 0.4
    assert "autocorrelated_residuals" in f.warning_codes
    assert f.samples_method.startswith("bootstrap-blocks")
    assert f.params["A"].method == f.samples_method
    wald = fit(curve(A, B, C_mid, R0, rng=rng, noise=noise))
    assert wald.params["A"].method == "wald-ar1"


@pytest.mark.parametrize("truth", TABLE1)
def test_agrees_with_scipy_curve_fit(truth):
    df = curve(*truth, rng=np.random.default_rng(3))
    ours = fit(df)
    popt, pcov = curve_fit(sigmoid, df["gpu_hours"], df["value"], p0=truth, maxfev=20000)
    for name, ref, se in zip(("A", "B", "C_mid", "R0"), popt, np.sqrt(np.diag(pcov))):
        assert ours.params[name].value == pytest.approx(ref, rel=1e-4)
        # curve_fit's sd is the iid one; ours is AR(1)-widened (never narrower)
        assert ours.params[name].stderr == pytest.approx(se, rel=0.5) or \
            ours.params[name].stderr >= se * 0.999


def test_grid_search_matches_brute_force_scipy_per_cell(monkeypatch):
    truth = TABLE1[0]
    df = curve(*truth, rng=np.random.default_rng(4))
    x, y = df["gpu_hours"].to_numpy(), df["value"].to_numpy()
    law = get_law("sigmoid")
    space = Space.build(law, law.bounds(x, y), {})
    a_grid = np.array([0.600, 0.605, 0.610, 0.615, 0.620])
    c_grid = np.geomspace(1500, 4000, 7)
    best, table = grid_search(space, x, y, a_grid, c_grid)
    brute = np.empty_like(table)
    for i, a in enumerate(a_grid):
        for j, c in enumerate(c_grid):
            f = lambda xx, b, r0: sigmoid(xx, a, b, c, r0)  # noqa: E731
            p, _ = curve_fit(f, x, y, p0=(1.5, 0.45), bounds=([0.05, 0], [20, 1]))
            brute[i, j] = 0.5 * np.sum((f(x, *p) - y) ** 2)
    np.testing.assert_allclose(table, brute, rtol=1e-5)
    i, j = np.unravel_index(np.argmin(brute), brute.shape)
    assert best["A"] == a_grid[i] and best["C_mid"] == c_grid[j]
    # Large grids polish only cells near the best after the B scan: same winner, same loss.
    import rlscale.fit.grid as grid_mod

    monkeypatch.setattr(grid_mod, "POLISH_ALL", 0)
    near_best, near_table = grid_search(space, x, y, a_grid, c_grid)
    assert near_best == pytest.approx(best, rel=1e-6)
    assert near_table.min() == pytest.approx(brute.min(), rel=1e-6)
    assert np.all(near_table >= brute * (1 - 1e-6))  # unpolished cells: upper bounds


def test_scalerl_grid_method_recovers_A_on_its_grid():
    A, B, C_mid, R0 = TABLE1[2]
    f = fit(curve(A, B, C_mid, R0, rng=np.random.default_rng(6)), method="scalerl-grid")
    assert f.method == "scalerl-grid"
    assert abs(f.params["A"].value - A) < 0.01
    assert round(f.params["A"].value / 0.005) * 0.005 == pytest.approx(f.params["A"].value)
    assert abs(f.params["B"].value / B - 1) < 0.15
    off_grid = curve(A, B, C_mid, R0, rng=np.random.default_rng(6)).assign(
        value=lambda d: d.value - 0.2)  # A = 0.51, R0 = 0.28: A on the grid, R0 below it
    assert fit(off_grid, method="scalerl-grid").params["A"].value == pytest.approx(0.51, abs=0.01)
    low = curve(A, B, C_mid, R0, rng=np.random.default_rng(6)).assign(value=lambda d: d.value / 3)
    g = fit(low, method="scalerl-grid")  # A = 0.24, below the grid
    assert g.params["A"].value == 0.45 and "edge of the ScaleRL grid" in g.warnings[0].message


def test_bootstrap_over_runs_pools_seeds():
    A, B, C_mid, R0 = TABLE1[1]
    rng = np.random.default_rng(7)
    df = pd.concat([curve(A, B, C_mid, R0, rng=rng, run_id=f"s{i}", recipe="r")
                    for i in range(4)])
    f = fit(df, by="recipe", bootstrap=100, resample="runs")[0]
    assert f.n_points == 300 and f.group == {"recipe": "r"}
    assert f.samples_method == "bootstrap-runs" and len(f.samples) >= 90
    assert f.params["A"].lower < f.params["A"].value < f.params["A"].upper
    assert "few_runs" in f.warning_codes  # 4 seeds: a coarse run bootstrap, and it says so
    single = fit(df[df.run_id == "s0"], bootstrap=20, resample="runs")
    assert "resample_fallback" in single.warning_codes


def test_predict_intervals_nest():
    f = fit(curve(*TABLE1[0], rng=np.random.default_rng(8)), bootstrap=200)
    p = f.predict([100, 2542, 1e5])
    assert list(p.columns) == ["x", "mean", "mean_lower", "mean_upper", "pred_lower",
                               "pred_upper"]
    np.testing.assert_allclose(p["mean"], get_law("sigmoid").func(p["x"], **f.values))
    assert (p.pred_lower < p.mean_lower).all() and (p.mean_lower <= p["mean"]).all()
    assert (p["mean"] <= p.mean_upper).all() and (p.mean_upper < p.pred_upper).all()


def test_window_r0_and_law_options():
    df = curve(*TABLE1[0], rng=np.random.default_rng(9))
    f = fit(df, burn_in=300, max_x=20000)
    assert f.window == (300.0, 20000.0)
    assert f.data["x"].between(300, 20000).all() and f.n_points == len(f.data)
    first = fit(df, r0="first")
    assert not first.params["R0"].vary
    assert first.params["R0"].value == pytest.approx(df["value"].iloc[0])
    assert (first.samples["R0"] == first.params["R0"].value).all()
    fixed = fit(df, r0=0.45)
    assert fixed.params["R0"].value == 0.45 and fixed.params["R0"].method == "fixed"
    huber = fit(df, loss="huber")
    assert abs(huber.params["A"].value - 0.61) < 0.02


def test_law_all_ranks_laws_and_sigmoid_wins_on_sigmoid_data():
    df = curve(*TABLE1[0], rng=np.random.default_rng(10))
    fits = fit(df, law="all")
    assert [f.law for f in fits] == ["sigmoid", "power", "exp", "loglinear"]
    for key in ("rank_heldout", "rank_aic", "rank_bic"):
        assert sorted(f.gof[key] for f in fits) == [1, 2, 3, 4]
    assert fits[0].gof["rank_bic"] == 1
    power = fits[1]
    assert power.params["A"].value > fits[0].params["A"].value  # ScaleRL: power overshoots A


def test_groups_fit_independently_and_bad_group_reports_not_ok():
    rng = np.random.default_rng(11)
    good = curve(*TABLE1[0], rng=rng, run_id="good", recipe="a")
    bad = curve(*TABLE1[0], rng=rng, n=3, run_id="bad", recipe="b")
    norecipe = curve(*TABLE1[1], rng=rng, run_id="solo")
    df = pd.concat([good, bad, norecipe])
    fits = fit(df, by="recipe")
    by_group = {f.group["recipe"]: f for f in fits}
    assert set(by_group) == {"a", "b", "solo"}  # a run without recipe is its own group
    assert by_group["a"].ok and by_group["solo"].ok
    assert not by_group["b"].ok and by_group["b"].params == {}
    assert by_group["b"].warning_codes == ["too_few_points"]
    assert by_group["b"].predict([1.0])["mean"].isna().all()


def test_fit_does_not_mutate_points_and_is_deterministic():
    df = curve(*TABLE1[0], rng=np.random.default_rng(12))
    before = df.copy()
    a = fit(df, bootstrap=50, seed=3)
    b = fit(df, bootstrap=50, seed=3)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(a.samples, b.samples)


def test_round_trip_to_dict_and_top_level_call():
    import json

    df = curve(*TABLE1[0], rng=np.random.default_rng(13))
    f = rlscale.fit(df, bootstrap=30)
    back = FitResult.from_dict(json.loads(json.dumps(f.to_dict())))
    assert back.summary() == f.summary()
    pd.testing.assert_frame_equal(back.samples, f.samples)
    pd.testing.assert_frame_equal(back.predict([1e3, 1e4]), f.predict([1e3, 1e4]))
    row = f.to_frame()
    assert len(row) == 1 and row["A"].iloc[0] == f.params["A"].value
    assert "A =" in f.report()
    assert callable(rlscale.fit) and rlscale.FitResult is FitResult


def test_many_groups_in_one_batched_solve_match_one_by_one():
    rng = np.random.default_rng(14)
    runs = [curve(*TABLE1[i % 3], rng=rng, run_id=f"r{i}", n=30 + 10 * i) for i in range(6)]
    runs.append(curve(*TABLE1[0], rng=rng, run_id="tiny", n=4))
    batched = fit(pd.concat(runs), by="run_id", r0="first")
    assert [f.group["run_id"] for f in batched] == [f"r{i}" for i in range(6)] + ["tiny"]
    for f, df in zip(batched, runs):
        alone = fit(df, r0="first")
        assert f.ok == alone.ok
        for name, p in alone.params.items():
            assert f.params[name].value == pytest.approx(p.value, rel=1e-5, abs=1e-7)
        if alone.ok:
            assert f.gof["heldout_rmse"] == pytest.approx(alone.gof["heldout_rmse"], rel=1e-4)
    assert not batched[-1].ok


def test_step_axis_and_multi_key_groups():
    rng = np.random.default_rng(15)
    df = pd.concat([curve(*TABLE1[0], rng=rng, run_id=f"r{i}", recipe="a").assign(seed=i % 2)
                    for i in range(4)])
    f = fit(df[df.run_id == "r0"], x="step")
    assert f.ok and f.x == "step" and f.data["x"].max() == df["step"].max()
    groups = fit(df, by="recipe,seed")
    assert [g.group for g in groups] == [{"recipe": "a", "seed": 0}, {"recipe": "a", "seed": 1}]
    assert [g.n_points for g in groups] == [150, 150]


def test_predict_is_nan_where_the_law_is_undefined():
    f = fit(curve(*TABLE1[0], rng=np.random.default_rng(16)), law="loglinear")
    p = f.predict([0.0, 100.0])
    assert np.isnan(p.mean_lower[0]) and np.isfinite(p.mean_lower[1])


def test_profile_intervals_match_bootstrap_and_bend_when_A_is_weak():
    df = curve(*TABLE1[0], rng=np.random.default_rng(3))
    prof = fit(df, interval="profile")
    boot = fit(df, bootstrap=400)
    assert prof.params["A"].method == "profile"
    for name in ("A", "B", "C_mid", "R0"):
        p, b = prof.params[name], boot.params[name]
        width = b.upper - b.lower
        assert abs(p.lower - b.lower) < 0.25 * width and abs(p.upper - b.upper) < 0.25 * width
    early = curve(*TABLE1[0], rng=np.random.default_rng(3), hi=1.0)  # stops at C_mid
    wald, prof = fit(early), fit(early, interval="profile")
    assert wald.params["A"].lower == 0.0  # Wald is useless here: the whole [0, 1] range
    assert 0.5 < prof.params["A"].lower < 0.61 and prof.params["A"].upper == 1.0


def _loss_curve(metric, *, A=0.9, R0=2.5, rng_seed=5):
    rng = np.random.default_rng(rng_seed)
    df = curve(A, 1.5, 2000.0, R0, rng=rng, sd=0.02)
    return df.assign(metric=metric)


def test_a_loss_fits_as_a_falling_law_without_direction_warnings():
    f = fit(_loss_curve("train/loss"), metric="train/loss")
    assert f.ok
    assert f.params["A"].value < f.params["R0"].value
    assert abs(f.params["A"].value - 0.9) < 0.05 and abs(f.params["R0"].value - 2.5) < 0.1
    codes = set(f.warning_codes)
    assert not codes & {"not_increasing", "not_decreasing", "direction_mismatch"}, codes
    # the same falling values, named as a reward, are a metric that does not rise
    g = fit(_loss_curve("reward"), metric="reward")
    assert "not_increasing" in g.warning_codes


def test_a_loss_in_the_unit_interval_is_not_bounded_like_a_pass_rate():
    # falls from 0.95 towards 0.35; a pass rate's [0, 1] bounds would not bind here, but the
    # levels' bounds must come from the name (loss), not from the values lying in [0, 1]
    f = fit(_loss_curve("policy_loss", A=0.35, R0=0.95), metric="policy_loss")
    assert f.ok and f.params["A"].value < f.params["R0"].value
    assert f.params["A"].upper - f.params["A"].lower < 0.2
    assert "not_decreasing" not in f.warning_codes
    # a loss that rises is flagged
    rising = _loss_curve("policy_loss", A=0.95, R0=0.35)
    assert "not_decreasing" in fit(rising, metric="policy_loss").warning_codes


def _check_space(y, x):
    from rlscale.fit.batch import space_for
    return space_for(get_law("sigmoid"), x, y, {}, "reward")


def test_ceiling_far_above_a_levelled_curve_is_flagged():
    from rlscale.fit.checks import _ceiling_above_plateau
    from rlscale.fit.result import ParamEstimate
    x = np.geomspace(10, 5000, 60)
    rng = np.random.default_rng(3)
    flat = np.minimum(0.937, 0.5 + 0.2 * np.log10(x)) + rng.normal(0, 0.005, x.size)
    space = _check_space(flat, x)
    point = {"A": 0.996, "B": 0.6, "C_mid": 100.0, "R0": 0.4}
    u = space.vector(point)
    params = {k: ParamEstimate(v, v, v, 0.0) for k, v in point.items()}
    warns = _ceiling_above_plateau(space, x, flat, u, params, None)
    assert [w.code for w in warns] == ["ceiling_above_plateau"]
    assert "A = 0.996" in warns[0].message and "recent level 0.936" in warns[0].message
    # the same ceiling on a curve still rising over its last stretch is the law's job: no warning
    rising = 0.4 + 0.15 * np.log10(x) + rng.normal(0, 0.005, x.size)
    assert _ceiling_above_plateau(_check_space(rising, x), x, rising, u, params, None) == []
    # nor a ceiling close to the plateau
    near = {**params, "A": ParamEstimate(0.94, 0.94, 0.94, 0.0)}
    assert _ceiling_above_plateau(space, x, flat, space.vector({**point, "A": 0.94}), near,
                                  None) == []


def test_a_fitted_curve_moving_against_the_data_is_flagged():
    from rlscale.fit.checks import _direction, spearman_up
    x = np.geomspace(10, 5000, 40)
    y = 0.3 + 0.1 * np.log10(x)
    space = _check_space(y, x)
    rho, p_up = spearman_up(x, y)
    p_down = spearman_up(x, -y)[1]
    falling = space.vector({"A": 0.2, "B": 1.0, "C_mid": 300.0, "R0": 0.6})
    rising = space.vector({"A": 0.7, "B": 1.0, "C_mid": 300.0, "R0": 0.3})
    assert [w.code for w in _direction(space, x, falling, rho, p_up, p_down)] == \
        ["direction_mismatch"]
    assert _direction(space, x, rising, rho, p_up, p_down) == []
