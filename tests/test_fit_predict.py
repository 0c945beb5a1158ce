"""Parameter draws and predictions of FitResult: independent across groups, one predictive method
shared with the forecasts, and prediction intervals that cover at their nominal level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlscale.fit import fit
from rlscale.forecast.budgets import reward_at
from tests.fitsim import TABLE1, curve, sigmoid


def _two_recipes(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.concat([curve(*TABLE1[0], rng=rng, recipe="a", run_id="a0"),
                      curve(*TABLE1[0], rng=rng, recipe="b", run_id="b0")], ignore_index=True)


@pytest.mark.parametrize("bootstrap", [0, 200])
def test_draws_of_two_groups_fitted_with_one_seed_are_independent(bootstrap):
    fa, fb = fit(_two_recipes(), by="recipe", bootstrap=bootstrap, seed=3)
    n = min(len(fa.samples), len(fb.samples))
    assert n >= 150
    for p in ("A", "C_mid"):
        r = np.corrcoef(fa.samples[p].to_numpy()[:n], fb.samples[p].to_numpy()[:n])[0, 1]
        assert abs(r) < 4 / np.sqrt(n), (p, r)  # shared streams gave r ~ 0.9


def test_separate_fits_without_groups_are_independent_yet_reproducible():
    rng = np.random.default_rng(1)
    a, b = (curve(*TABLE1[0], rng=rng) for _ in range(2))
    fa, fb, fa2 = fit(a), fit(b), fit(a)
    r = np.corrcoef(fa.samples["A"], fb.samples["A"])[0, 1]
    assert abs(r) < 0.13
    pd.testing.assert_frame_equal(fa.samples, fa2.samples)
    assert not fit(a, seed=1).samples.equals(fa.samples)


def test_predict_and_reward_at_are_one_computation():
    f = fit(_two_recipes(), by="recipe", bootstrap=100)[0]
    xs = [300.0, 2542.0, 4e4]
    mine = f.predict(xs, level=0.9, seed=7)
    theirs = reward_at(f, xs, level=0.9, seed=7, forecast="law")
    cols = ["mean", "mean_lower", "mean_upper", "pred_lower", "pred_upper"]
    np.testing.assert_allclose(mine[cols].to_numpy(), theirs[cols].to_numpy(dtype=float))
    # default seeds agree too (the fit's seed, 0, and reward_at's default, 0)
    np.testing.assert_allclose(f.predict(xs)[cols].to_numpy(),
                               reward_at(f, xs, forecast="law")[cols].to_numpy(dtype=float))
    # the default (ensemble) forecast is the fit's own inside the window, its own beyond it
    ens = reward_at(f, xs, level=0.9, seed=7)
    inside = np.asarray(xs) <= f.data["x"].max()
    np.testing.assert_allclose(ens[cols].to_numpy(dtype=float)[inside],
                               mine[cols].to_numpy()[inside])
    assert list(ens["method"][~inside]) == ["ensemble"] * int((~inside).sum())


def test_predict_without_samples_gives_unknown_intervals_not_noise_only():
    f = fit(curve(*TABLE1[0], rng=np.random.default_rng(2)))
    f.samples = f.samples.iloc[0:0]
    p = f.predict([1e3, 1e4])
    assert np.isfinite(p["mean"]).all()
    assert p[["mean_lower", "pred_lower", "pred_upper"]].isna().all().all()


@pytest.mark.parametrize("level", [0.5, 0.9])
def test_prediction_interval_covers_new_points_at_its_level(level):
    # New evaluations at the fitted compute values: a correct predictive interval covers about
    # `level` of them; the old "largest curve half-width plus noise" covered 0.95 at 0.9.
    rng = np.random.default_rng(11)
    hits = []
    for i in range(40):
        truth = TABLE1[i % 3]
        f = fit(curve(*truth, rng=rng, n=40), seed=i)
        xs = np.geomspace(truth[2] / 20, truth[2] * 10, 8)
        p = f.predict(xs, level=level)
        y_new = sigmoid(xs, *truth) + rng.normal(0, 0.01, xs.size)
        hits.extend((p["pred_lower"] <= y_new) & (y_new <= p["pred_upper"]))
    cover = float(np.mean(hits))
    assert cover == pytest.approx(level, abs=0.05), cover


def test_an_interval_always_holds_its_own_estimate():
    """Draws that all lie to one side of the best fit (a fit at a bound, an unidentified
    parameter) would give quantiles that exclude it; the intervals are widened to hold it."""
    from rlscale.fit.laws import get_law
    from rlscale.fit.predictive import predictive

    law = get_law("sigmoid")
    point = {"A": 1.0, "B": 1.5, "C_mid": 300.0, "R0": 0.5}
    rng = np.random.default_rng(0)
    draws = {"A": rng.uniform(0.6, 0.7, 200), "B": np.full(200, 1.5),
             "C_mid": np.full(200, 300.0), "R0": np.full(200, 0.5)}
    xs = np.array([100.0, 1000.0, 10000.0])
    p = predictive(law, point, draws, 0.0, xs, level=0.9)
    plain = law.func(xs, **{**point, "A": 0.7})
    assert np.all(p["mean"] > plain)  # every draw's curve lies below the estimate
    for key in ("mean", "pred"):
        assert np.all(p[f"{key}_lower"] <= p["mean"]) and np.all(p["mean"] <= p[f"{key}_upper"])
        assert np.allclose(p[f"{key}_upper"], p["mean"])
        assert np.all(p[f"{key}_lower"] < plain)  # the lower end is still the draws' quantile
