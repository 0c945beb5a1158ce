"""The scoring rules of benchmarks/verdicts.py and benchmarks/targets.py on constructed curves
(the scripts themselves run on ../shared/real-curves/, which CI does not have)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest


def _sigmoid(x, A=0.8, B=1.6, C_mid=50.0, R0=0.1):
    return R0 + (A - R0) / (1 + (C_mid / x) ** B)


def test_verdict_outcomes_are_read_against_the_wobble(benchmark_script):
    v = benchmark_script("verdicts")
    assert [v.outcome(c, 0.1) for c in (0.2, 0.05, -0.05, -0.2)] == ["rose", "flat", "flat",
                                                                     "fell"]
    rng = np.random.default_rng(0)
    x = np.linspace(1.0, 400.0, 80)
    plateau = ("t", "plateau", pd.DataFrame({"x": x, "y": 0.6 + rng.normal(0, 0.005, x.size)}))
    early = ("t", "early", pd.DataFrame({"x": x, "y": _sigmoid(x, C_mid=300.0)
                                         + rng.normal(0, 0.005, x.size)}))
    res = v.evaluate([plateau, early], (0.5,)).set_index("curve")
    assert res.loc["plateau", "outcome"] == "flat"
    assert res.loc["plateau", "verdict"] == "plateaued"
    assert res.loc["early", "outcome"] == "rose"
    assert res.loc["early", "verdict"] == "still rising"
    s = v.score(res.reset_index(), "verdict")
    assert s["right"] == 1.0 and s["plateaued_but_rose"] == 0


def test_targets_truth_is_the_first_compute_where_the_median_reaches_it(benchmark_script):
    t = benchmark_script("targets")
    x = np.linspace(1.0, 100.0, 50)
    assert t.log_linear_x(x, 0.2 + 0.1 * np.log(x), 0.2 + 0.1 * np.log(70.0)) == \
        pytest.approx(70.0)
    assert t.log_linear_x(x, 0.5 - 0.01 * np.log(x), 0.6) == math.inf
    y = _sigmoid(x, C_mid=40.0)
    res = t.evaluate([("t", "s", pd.DataFrame({"x": x, "y": y}))], (0.3,))
    reached = res[res["reached"]]
    assert len(reached) == 2 and len(res) == 3
    smooth = pd.Series(y).rolling(5, min_periods=5).median().to_numpy()
    later = x > 1.0 + 0.3 * 99.0
    for _, row in reached.iterrows():
        hit = later & (smooth >= row["level"])
        assert row["truth"] == x[np.flatnonzero(hit)[0]]
        assert not np.any(later & (x < row["truth"]) & (smooth >= row["level"]))
    # a noiseless sigmoid is the law exactly: the fit's compute for each reached target is close
    assert np.allclose(reached["law"], reached["truth"], rtol=0.15)
    unreached = res[~res["reached"]].iloc[0]
    assert unreached["truth"] == math.inf
