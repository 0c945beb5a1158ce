"""The curve math behind forecasts: closed-form inverses against numeric ones, crossings, units."""

from __future__ import annotations

import numpy as np
import pytest

from rlscale.forecast.roots import (
    crossing_points,
    interval,
    numeric_inverse,
    numeric_inverse_draws,
    sigmoid_fraction_compute,
    sigmoid_inverse,
)
from rlscale.errors import InputError
from rlscale.fit.laws import get_law, sigmoid
from rlscale.forecast.pricing import Pricing, flops_per_gpu_hour

P = {"A": 0.61, "B": 1.92, "C_mid": 2542.0, "R0": 0.45}


@pytest.mark.parametrize("y", [0.46, 0.5, 0.53, 0.6, 0.6099])
def test_closed_form_inverse_matches_numeric_root(y):
    closed = float(sigmoid_inverse(y, **P))
    numeric = numeric_inverse(lambda x, **p: sigmoid(x, **p), y, P)
    assert closed == pytest.approx(numeric, rel=1e-9)
    assert float(sigmoid(closed, **P)) == pytest.approx(y, abs=1e-12)


def test_inverse_outside_the_gain_is_never_or_already():
    assert np.isinf(sigmoid_inverse(0.61, **P))  # the ceiling itself is never reached
    assert np.isinf(sigmoid_inverse(0.7, **P))
    assert sigmoid_inverse(0.45, **P) == 0.0
    assert sigmoid_inverse(0.30, **P) == 0.0
    assert np.isinf(numeric_inverse(lambda x, **p: sigmoid(x, **p), 0.7, P))
    assert numeric_inverse(lambda x, **p: sigmoid(x, **p), 0.3, P) == 0.0


def test_inverse_of_a_falling_curve():
    p = {"A": 2.0, "B": 1.3, "C_mid": 50.0, "R0": 5.0}  # a loss that falls from 5 towards 2
    x = float(sigmoid_inverse(3.0, **p))
    assert float(sigmoid(x, **p)) == pytest.approx(3.0)
    assert x == pytest.approx(numeric_inverse(lambda c, **q: sigmoid(c, **q), 3.0, p), rel=1e-9)


def test_inverse_vectorises_over_draws():
    rng = np.random.default_rng(1)
    draws = {"A": rng.uniform(0.55, 0.7, 50), "B": rng.uniform(1.2, 2.5, 50),
             "C_mid": rng.uniform(1e3, 1e4, 50), "R0": np.full(50, 0.45)}
    closed = sigmoid_inverse(0.56, **draws)
    numeric = numeric_inverse_draws(lambda x, **p: sigmoid(x, **p), 0.56, draws)
    assert np.isinf(closed).sum() == np.isinf(numeric).sum() > 0
    ok = np.isfinite(closed)
    np.testing.assert_allclose(closed[ok], numeric[ok], rtol=1e-9)


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.9, 0.99])
def test_fraction_of_gain_closed_form(frac):
    c = float(sigmoid_fraction_compute(frac, B=P["B"], C_mid=P["C_mid"]))
    y = P["R0"] + frac * (P["A"] - P["R0"])
    assert c == pytest.approx(float(sigmoid_inverse(y, **P)), rel=1e-9)
    if frac == 0.5:
        assert c == pytest.approx(P["C_mid"])


def test_fraction_outside_zero_one_is_an_input_error():
    with pytest.raises(InputError, match="between 0 and 1"):
        sigmoid_fraction_compute(1.0, B=2.0, C_mid=10.0)


def test_crossing_of_a_known_pair():
    # b has a higher ceiling but is slower: equal at x where both curves meet, found by algebra
    a = {"A": 0.61, "B": 1.92, "C_mid": 2542.0, "R0": 0.45}
    b = {"A": 0.645, "B": 1.70, "C_mid": 10909.0, "R0": 0.45}
    xs = crossing_points(lambda x: float(sigmoid(x, **a)), lambda x: float(sigmoid(x, **b)),
                         x_range=(1.0, 1e8))
    assert len(xs) == 1
    assert float(sigmoid(xs[0], **a)) == pytest.approx(float(sigmoid(xs[0], **b)), abs=1e-12)
    assert float(sigmoid(xs[0] * 0.9, **a)) > float(sigmoid(xs[0] * 0.9, **b))
    assert float(sigmoid(xs[0] * 1.1, **a)) < float(sigmoid(xs[0] * 1.1, **b))
    # same B and C_mid, different A: the curves never cross
    c = dict(a, A=0.7)
    assert crossing_points(lambda x: float(sigmoid(x, **a)), lambda x: float(sigmoid(x, **c)),
                           x_range=(1.0, 1e8)) == []


def test_interval_with_infinite_draws():
    v = np.r_[np.arange(1.0, 91.0), np.full(10, np.inf)]
    lo, hi = interval(v, 0.9)
    assert lo == 5.0 and np.isinf(hi)  # 10% of draws never reach: the upper bound is unbounded
    lo, hi = interval(v, 0.8)
    assert np.isfinite(hi)


def test_units_round_trip_and_dollars():
    fpgh = flops_per_gpu_hour(peak_flops=1e15, mfu=0.4)
    assert fpgh == pytest.approx(1.44e18)
    p = Pricing.create(axis="flops", usd_per_gpu_hour=2.5, peak_flops=1e15, mfu=0.4)
    assert float(p.gpu_hours(2.88e18)) == pytest.approx(2.0)
    assert float(p.usd(2.88e18)) == pytest.approx(5.0)
    assert float(p.x_from_usd(5.0)) == pytest.approx(2.88e18)
    g = Pricing.create(axis="gpu_hours", usd_per_gpu_hour=3.0)
    assert float(g.usd(100.0)) == pytest.approx(300.0)


def test_units_refuse_what_cannot_be_priced():
    with pytest.raises(InputError, match="state a throughput"):
        Pricing.create(axis="flops", usd_per_gpu_hour=2.0)
    with pytest.raises(InputError, match="cannot convert compute axis 'tokens'"):
        Pricing.create(axis="tokens", usd_per_gpu_hour=2.0)
    with pytest.raises(InputError, match="both --peak-flops and --mfu"):
        Pricing.create(axis="flops", peak_flops=1e15)
    with pytest.raises(InputError, match="MFU"):
        flops_per_gpu_hour(peak_flops=1e15, mfu=1.5)


def test_law_inverse_agrees_inside_its_range_and_marks_the_outside():
    law = get_law("sigmoid")
    ys = np.array([0.3, 0.45, 0.5, 0.6, 0.61, 0.7])
    mine, theirs = sigmoid_inverse(ys, **P), law.inverse(ys, **P)
    inside = (ys > P["R0"]) & (ys < P["A"])
    np.testing.assert_allclose(mine[inside], theirs[inside], rtol=1e-12)
    assert np.isnan(theirs[~inside]).all()  # the law says "no"; the forecast says 0 or inf
    assert list(mine[~inside]) == [0.0, 0.0, np.inf, np.inf]


def test_add_costs_prices_every_x_column():
    import pandas as pd

    from rlscale.forecast.pricing import add_costs, stated_pricing

    df = pd.DataFrame({"x": [1.44e21], "x_lower": [7.2e20], "x_upper": [np.inf], "mean": [0.5]})
    assert stated_pricing(axis="flops") is None and add_costs(df, None) is df
    p = stated_pricing(axis="flops", peak_flops=1e15, mfu=0.4, usd_per_gpu_hour=2.0)
    out = add_costs(df, p)
    assert out["gpu_hours"].tolist() == pytest.approx([1000.0])
    assert out["usd_lower"].tolist() == pytest.approx([1000.0]) and np.isinf(out["usd_upper"][0])
    assert "gpu_hours" not in df  # a copy
    assert stated_pricing(axis="tokens", required=True).active is False
