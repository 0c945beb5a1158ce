"""Laws: values, inverses, guesses and bounds."""

from __future__ import annotations

import numpy as np
import pytest

from rlscale.errors import InputError
from rlscale.fit.batch import space_for
from rlscale.fit.laws import LAWS, get_law

PARAMS = {
    "sigmoid": {"A": 0.61, "B": 1.92, "C_mid": 2542.0, "R0": 0.45},
    "power": {"A": 0.7, "B": 0.5, "D": 3.0},
    "exp": {"A": 0.65, "C_s": 3000.0, "R0": 0.4},
    "loglinear": {"a": 0.1, "b": 0.05},
}


def test_sigmoid_matches_scalerl_equation():
    law = get_law("sigmoid")
    c = np.array([0.0, 2542.0, 1e12])
    y = law.func(c, **PARAMS["sigmoid"])
    assert y[0] == pytest.approx(0.45)  # R0 at zero compute
    assert y[1] == pytest.approx((0.61 + 0.45) / 2)  # half the gain at C_mid
    assert y[2] == pytest.approx(0.61, abs=1e-9)  # A at infinite compute


@pytest.mark.parametrize("name", sorted(LAWS))
def test_inverse_round_trips(name):
    law = get_law(name)
    x = np.geomspace(10, 2e4, 20)  # past ~10 C_s the exponential is flat to float precision
    y = law.func(x, **PARAMS[name])
    np.testing.assert_allclose(law.inverse(y, **PARAMS[name]), x, rtol=1e-8)


def test_inverse_is_nan_where_unreachable():
    law = get_law("sigmoid")
    out = law.inverse(np.array([0.3, 0.61, 0.7, 0.5]), **PARAMS["sigmoid"])
    assert np.isnan(out[:3]).all() and np.isfinite(out[3])


@pytest.mark.parametrize("name", sorted(LAWS))
def test_guess_is_inside_bounds(name):
    law = get_law(name)
    x = np.geomspace(100, 40000, 50)
    y = get_law("sigmoid").func(x, **PARAMS["sigmoid"])
    bounds = law.bounds(x, y)
    for start in law.starts(x, y):
        assert set(start) == set(law.param_names)
        for p, v in start.items():
            lo, hi = bounds[p]
            assert lo <= v <= hi, (p, v, lo, hi)


def test_levels_are_bounded_to_unit_interval_only_for_pass_rates():
    x = np.geomspace(1, 100, 10)
    y = np.linspace(0.2, 0.6, 10)
    sig = get_law("sigmoid")
    # values in [0, 1] alone are not a pass rate (a loss of 0.9, a DPO margin) ...
    lo, hi = sig.bounds(x, y)["A"]
    assert lo < 0 and hi > 1
    for metric in ("train/loss", "rewards/margins", "value"):
        space = space_for(sig, x, y, {}, metric)
        assert space.lower[space.free.index("A")] < 0, metric
    # ... a pass-rate name is, for both levels A and R0
    for metric in ("reward", "eval/answer_accuracy", "pass@8", "val/mean@4", "win_rate"):
        space = space_for(sig, x, y, {}, metric)
        for p in ("A", "R0"):
            i = space.free.index(p)
            assert (space.lower[i], space.upper[i]) == (0.0, 1.0), (metric, p)
    # a pass-rate name on values outside [0, 1] (returns in the thousands) is not bounded
    space = space_for(sig, x, np.linspace(10, 60, 10), {}, "reward")
    assert space.lower[space.free.index("A")] < 10 < 60 < space.upper[space.free.index("A")]
    # exact 0/1 values are a pass rate whatever the name
    assert sig.bounds(x, np.array([0.0, 1.0] * 5))["A"] == (0.0, 1.0)


def test_unknown_law_is_an_input_error():
    with pytest.raises(InputError, match="unknown law 'sigmod'.*sigmoid"):
        get_law("sigmod")
