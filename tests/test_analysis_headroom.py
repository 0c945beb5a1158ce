from __future__ import annotations

import numpy as np
import pytest

from rlscale.analysis.headroom import headroom_from_levels
from rlscale.fit.scale_law import fit_headroom_law

LEVELS = np.array([1e7, 3e7, 1e8, 3e8, 1e9])
TRUTH = {"A_max": 0.85, "D": 0.3, "alpha": 0.4}


def _truth(p, ref=1e8):
    return TRUTH["A_max"] - TRUTH["D"] * (np.asarray(p) / ref) ** -TRUTH["alpha"]


def _draws(a_hat, se, n, seed):
    return a_hat + np.random.default_rng(seed).normal(0, se, (n, len(a_hat)))


def test_law_recovers_exact_parameters():
    fit = fit_headroom_law(LEVELS, _truth(LEVELS), law="saturating")
    assert fit.p_ref == pytest.approx(1e8 * np.sqrt(np.sqrt(0.3 * 3)), rel=0.05)
    a_at_ref = _truth(fit.p_ref)
    assert fit.params["A_max"][0] == pytest.approx(0.85, abs=1e-3)
    assert fit.params["alpha"][0] == pytest.approx(0.4, rel=2e-3)
    assert TRUTH["A_max"] - fit.params["D"][0] == pytest.approx(a_at_ref, abs=1e-3)
    assert fit.predict(np.array([1e10]))[0, 0] == pytest.approx(_truth(1e10), abs=1e-3)
    capped = fit_headroom_law(LEVELS, _truth(LEVELS), law="saturating", cap=0.85)
    assert capped.params["alpha"][0] == pytest.approx(0.4, rel=2e-3) and capped.rss[0] < 1e-10


def test_noisy_levels_recover_truth_within_the_interval():
    rng = np.random.default_rng(0)
    a_hat = _truth(LEVELS) + rng.normal(0, 0.01, LEVELS.size)
    out = headroom_from_levels(LEVELS, a_hat, draws=_draws(a_hat, 0.01, 1000, 1), at=[1e10])
    assert out.headroom_law == "saturating" and out.dof == 2 and not out.exact_fit
    amax = out.params["A_max"]
    assert amax["lower"] < 0.85 < amax["upper"]
    fc = out.forecast.iloc[0]
    assert fc["lower"] < _truth(1e10) < fc["upper"]
    assert fc["upper"] - fc["lower"] < 0.15
    assert out.chi2_dof is not None and out.chi2_dof < 3
    assert list(out.levels.columns[:6]) == ["level", "A", "A_lower", "A_upper", "A_se", "A_law"]


def test_interval_grows_with_level_noise_and_with_extrapolation():
    a_hat = _truth(LEVELS)
    small = headroom_from_levels(LEVELS, a_hat, draws=_draws(a_hat, 0.005, 800, 2), at=[3e9, 1e11])
    big = headroom_from_levels(LEVELS, a_hat, draws=_draws(a_hat, 0.02, 800, 2), at=[3e9, 1e11])
    w_small = (small.forecast["upper"] - small.forecast["lower"]).to_numpy()
    w_big = (big.forecast["upper"] - big.forecast["lower"]).to_numpy()
    assert np.all(w_big > 2.5 * w_small)
    assert w_small[1] > w_small[0]  # further out, wider
    assert any("extrapolation" in n for n in small.notes)


def test_interval_coverage_over_repeated_experiments():
    hits, reps = 0, 30
    for seed in range(reps):
        rng = np.random.default_rng(100 + seed)
        a_hat = _truth(LEVELS) + rng.normal(0, 0.01, LEVELS.size)
        out = headroom_from_levels(LEVELS, a_hat, draws=_draws(a_hat, 0.01, 400, seed),
                                   at=[3e9], level=0.9)
        fc = out.forecast.iloc[0]
        hits += fc["lower"] < _truth(3e9) < fc["upper"]
    assert hits / reps >= 0.75  # nominal 0.9; a parametric bootstrap around noisy centres


def test_three_levels_is_reported_as_an_exact_fit():
    p = LEVELS[[0, 2, 4]]
    a_hat = _truth(p)
    out = headroom_from_levels(p, a_hat, draws=_draws(a_hat, 0.01, 500, 3), at=[1e10])
    assert out.exact_fit and out.dof == 0 and out.chi2_dof is None
    assert any(n.startswith("exact fit") for n in out.notes)
    assert np.allclose(out.levels["A_law"], a_hat, atol=1e-4)
    assert out.params["A_max"]["value"] == pytest.approx(0.85, abs=2e-3)
    assert "lower" in out.params["A_max"]  # the per-level uncertainty still propagates
    capped = headroom_from_levels(p, a_hat, draws=_draws(a_hat, 0.01, 500, 3), cap=0.85)
    assert capped.dof == 1 and capped.params["A_max"]["fixed"]


def test_fallbacks_and_errors():
    out = headroom_from_levels([1e7, 1e9], [0.4, 0.6], at=[1e11])
    assert out.headroom_law == "loglinear" and out.exact_fit
    assert out.forecast["A"].iloc[0] == pytest.approx(0.8)
    assert "lower" not in out.forecast.columns  # no draws, no interval
    with pytest.raises(ValueError, match="only 1 pretraining level"):
        headroom_from_levels([1e7], [0.4])
    with pytest.raises(ValueError, match="distinct positive"):
        headroom_from_levels([1e7, 1e7, 1e8], [0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="3 free parameters but there are only 2"):
        headroom_from_levels([1e7, 1e8], [0.4, 0.5], law="saturating")


def test_a_misfitting_law_is_flagged():
    # a ceiling that jumps (logistic in log P) cannot be a power law within tiny errors
    a_hat = np.array([0.1, 0.1, 0.5, 0.9, 0.9])
    out = headroom_from_levels(LEVELS, a_hat, draws=_draws(a_hat, 0.002, 400, 4))
    assert out.chi2_dof > 3 and any("chi2/dof" in n for n in out.notes)
