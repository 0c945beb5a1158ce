"""Bad or weak data: never a traceback, never a silent garbage number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlscale.errors import InputError
from rlscale.fit import WARNING_CODES, fit
from tests.fitsim import TABLE1, curve, sigmoid

C = np.geomspace(50, 20000, 60)
LAWS = ["sigmoid", "power", "exp", "loglinear"]


def frame(y, c=C):
    return pd.DataFrame({"run_id": "r", "step": np.arange(len(c)), "metric": "reward",
                         "value": y, "gpu_hours": c})


def check(f):
    """Every warning has a known code; an ok fit has finite values and a finite loss."""
    assert set(f.warning_codes) <= set(WARNING_CODES)
    if f.ok:
        assert all(np.isfinite(p.value) for p in f.params.values())
        assert np.isfinite(f.gof["rmse"])
    else:
        assert f.params == {} and f.warnings


@pytest.mark.parametrize("law", LAWS)
def test_flat_curve_is_flagged(law):
    f = fit(frame(np.full(C.size, 0.5)), law=law, bootstrap=20)
    check(f)
    assert "not_increasing" in f.warning_codes


@pytest.mark.parametrize("law", ["sigmoid", "exp"])
def test_flat_noisy_curve_has_no_identified_asymptote(law):
    y = 0.5 + np.random.default_rng(0).normal(0, 0.01, C.size)
    f = fit(frame(y), law=law)
    check(f)
    assert {"not_increasing", "asymptote_not_identified"} <= set(f.warning_codes)


@pytest.mark.parametrize("law", LAWS)
def test_decreasing_curve_is_flagged(law):
    y = 0.6 - 0.2 / (1 + (2000 / C) ** 1.5) + np.random.default_rng(1).normal(0, 0.01, C.size)
    f = fit(frame(y), law=law)
    check(f)
    assert "not_increasing" in f.warning_codes


@pytest.mark.parametrize("law", LAWS)
def test_pure_noise_is_flagged(law):
    y = np.random.default_rng(2).uniform(0, 1, C.size)
    f = fit(frame(y), law=law, bootstrap=20)
    check(f)
    assert "not_increasing" in f.warning_codes


@pytest.mark.parametrize("law", LAWS)
def test_three_points_cannot_be_fitted(law):
    f = fit(frame([0.4, 0.5, 0.55], c=np.array([10.0, 100.0, 1000.0])), law=law)
    check(f)
    assert not f.ok and f.warning_codes == ["too_few_points"]
    assert "3 points" in f.warnings[0].message


def test_duplicated_compute_values():
    c = np.repeat(C[::3], 3)  # three evaluations at each compute value
    y = sigmoid(c, 0.61, 1.92, 2542, 0.45) + np.random.default_rng(3).normal(0, 0.01, c.size)
    f = fit(frame(y, c=c))
    check(f)
    assert f.ok and abs(f.params["A"].value - 0.61) < 0.02
    same = fit(frame(np.full(20, 0.5), c=np.full(20, 100.0)))
    assert not same.ok and "distinct" in same.warnings[0].message


def test_nan_values_error_by_default_and_drop_on_request():
    df = curve(*TABLE1[0], rng=np.random.default_rng(4))
    df.loc[5, "value"] = np.nan
    with pytest.raises(InputError, match="non-finite value.*run 'r0', step 50.*drop"):
        fit(df)
    f = fit(df, nan="drop")
    check(f)
    assert f.ok and f.n_points == 74 and "dropped_points" in f.warning_codes


def test_missing_compute_axis_drops_points_or_fails_the_group():
    df = curve(*TABLE1[0], rng=np.random.default_rng(5))
    df.loc[:9, "gpu_hours"] = np.nan
    f = fit(df)
    assert f.ok and f.n_points == 65 and "dropped_points" in f.warning_codes
    # no point on the axis at all: an error that names the axes the runs do have
    df["gpu_hours"] = np.nan
    with pytest.raises(InputError, match="has a gpu_hours value; the runs have flops, step"):
        fit(df)
    # only one group lacks it: that group fails, the others are fitted
    both = pd.concat([curve(*TABLE1[0], rng=np.random.default_rng(5), recipe="a"),
                      df.assign(recipe="b", run_id="rb")])
    fa, fb = fit(both, by="recipe")
    assert fa.ok and not fb.ok and "too_few_points" in fb.warning_codes


def test_curve_stopping_before_c_mid_says_asymptote_not_identified():
    f = fit(curve(*TABLE1[0], rng=np.random.default_rng(6), lo=1 / 30, hi=0.9))
    check(f)
    assert "asymptote_not_identified" in f.warning_codes


def test_param_at_bound_and_power_law_overshoot():
    f = fit(curve(*TABLE1[0], rng=np.random.default_rng(7)), law="power")
    check(f)
    assert "param_at_bound" in f.warning_codes  # A runs to the pass-rate ceiling of 1


def test_zero_compute_points_are_dropped_for_power_law():
    df = curve(*TABLE1[0], rng=np.random.default_rng(8))
    df.loc[0, "gpu_hours"] = 0.0
    f = fit(df, law="power")
    assert f.n_points == 74 and "dropped_points" in f.warning_codes
    assert fit(df).n_points == 75  # the sigmoid is defined at C = 0 (it equals R0)


@pytest.mark.parametrize("kwargs, match", [
    ({"law": "sigmod"}, "unknown law"), ({"x": "hours"}, "x='hours'"),
    ({"loss": "l1"}, "loss"), ({"r0": "middle"}, "r0"), ({"level": 1.5}, "level"),
    ({"by": "lr"}, "cannot group by 'lr'"), ({"metric": "kl"}, "no points for metric 'kl'"),
    ({"method": "scalerl-grid", "law": "power"}, "only the sigmoid"),
    ({"bootstrap": -1}, "negative"),
])
def test_bad_options_are_input_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        fit(curve(*TABLE1[0], rng=np.random.default_rng(9)), **kwargs)


def test_two_metrics_need_a_choice():
    df = curve(*TABLE1[0], rng=np.random.default_rng(10))
    df2 = pd.concat([df, df.assign(metric="pass@8")])
    with pytest.raises(InputError, match=r"metrics \['pass@8', 'reward'\]; choose one"):
        fit(df2)
    assert fit(df2, metric="pass@8").metric == "pass@8"


def test_random_messy_inputs_never_raise(recwarn):
    rng = np.random.default_rng(123)
    for _ in range(15):
        n = int(rng.integers(1, 30))
        x = np.round(rng.uniform(0, 5, n)) * 10 ** rng.uniform(-3, 6)
        y = rng.normal(0, 10 ** rng.uniform(-6, 3), n) if rng.random() < 0.5 else \
            rng.uniform(0, 1, n)
        df = pd.DataFrame({"run_id": rng.choice(["a", "b"], n), "step": np.arange(n),
                           "metric": "m", "value": y, "gpu_hours": x})
        out = fit(df, law="all", by=str(rng.choice(["run_id", "metric"])),
                  bootstrap=int(rng.choice([0, 10])), r0=str(rng.choice(["fit", "first"])))
        for f in out:
            check(f)
            f.predict([1.0, 10.0])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
