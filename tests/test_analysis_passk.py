from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from rlscale.analysis.passk import (
    check_counts,
    compare_passk,
    pass_at_k_curve,
    passk_curves,
    verdict,
)
from rlscale.errors import InputError


def _table(counts, *, n, difficulty=3, start=0):
    return pd.DataFrame({"problem_id": np.arange(start, start + len(counts)),
                         "difficulty": difficulty, "n": n, "c": counts})


def test_pass_at_k_curve_matches_the_binomial_formula():
    for n in (1, 5, 16):
        for c in range(n + 1):
            curve = pass_at_k_curve(n, c)
            for k in range(1, n + 1):
                exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
                assert curve[k - 1] == pytest.approx(float(exact), abs=1e-12)


def test_pass_at_k_curve_agrees_with_the_rl_jobs_estimator():
    pytest.importorskip("torch")
    from rlscale.rl.evaluate import pass_at_k

    for n, c in ((8, 0), (8, 3), (64, 1), (64, 63), (200, 17)):
        curve = pass_at_k_curve(n, c)
        assert all(curve[k - 1] == pytest.approx(pass_at_k(n, c, k), abs=1e-12)
                   for k in range(1, n + 1))


def test_pass_at_k_curve_is_stable_for_large_n():
    # C(9999, 5000)/C(10000, 5000) = 5000/10000 exactly; factorials would overflow floats.
    assert pass_at_k_curve(10000, 1)[4999] == pytest.approx(0.5, abs=1e-12)
    curve = pass_at_k_curve(10000, 3, k_max=200)
    exact = 1 - Fraction(math.comb(9997, 200), math.comb(10000, 200))
    assert curve[-1] == pytest.approx(float(exact), rel=1e-12)
    assert np.all(np.diff(curve) >= 0)


def test_pass_at_k_curve_rejects_bad_arguments():
    with pytest.raises(ValueError, match="1 <= k_max <= n"):
        pass_at_k_curve(4, 1, k_max=5)


def test_check_counts_names_row_and_column():
    bad = _table([1, 5, 2], n=4)
    with pytest.raises(InputError, match=r"counts.csv, line 1, column 'c'.*0 <= c <= n"):
        check_counts(bad, source="counts.csv")
    with pytest.raises(InputError, match="missing column 'n'"):
        check_counts(bad.drop(columns="n"), source="counts.csv")
    dup = pd.concat([_table([1], n=4), _table([2], n=4)])
    with pytest.raises(InputError, match="appears twice"):
        check_counts(dup)


def test_curves_average_problems_and_bracket_the_mean():
    # one problem never solved, one always: pass@k = 0.5 at every k
    cur = passk_curves(_table([0, 4], n=4), n_boot=200)
    assert list(cur["k"]) == [1, 2, 3, 4]
    assert np.allclose(cur["pass_at_k"], 0.5)
    assert (cur["lower"] <= 0.5).all() and (cur["upper"] >= 0.5).all()
    assert (cur["lower"] < cur["upper"]).all()


def test_interval_covers_the_population_value():
    rng = np.random.default_rng(1)
    p = rng.beta(0.5, 1.5, 400)  # population mean pass@1 = 0.25
    counts = rng.binomial(32, p)
    cur = passk_curves(_table(counts, n=32), n_boot=500, level=0.95, seed=2)
    one = cur[cur["k"] == 1].iloc[0]
    assert one["lower"] < 0.25 < one["upper"]
    assert one["upper"] - one["lower"] < 0.1


def test_sharpened_when_rl_wins_at_one_and_loses_coverage():
    # base solves every problem now and then (c=2/16); RL always solves half and never the rest
    base = _table([2] * 100, n=16)
    rl = _table([16] * 50 + [0] * 50, n=16)
    out = compare_passk(base, rl, n_boot=300)
    row = out.verdicts.iloc[0]
    assert row["verdict"] == "sharpened" and row["crossover"] and row["paired"]
    assert row["base_pass1"] == pytest.approx(0.125) and row["rl_pass1"] == pytest.approx(0.5)
    assert row["base_passk"] == pytest.approx(1.0) and row["rl_passk"] == pytest.approx(0.5)
    assert row["k_max"] == 16 and row["d_pass1_lower"] > 0 and row["d_passk_upper"] < 0


def test_expanded_when_rl_solves_new_problems():
    base = _table([0] * 50 + [8] * 50, n=16)
    rl = _table([8] * 100, n=16)
    row = compare_passk(base, rl, n_boot=300).verdicts.iloc[0]
    assert row["verdict"] == "expanded" and not row["crossover"]
    assert row["d_passk"] == pytest.approx(0.5)


def test_regressed_and_no_change():
    base = _table([8] * 100, n=16)
    worse = _table([8] * 50 + [0] * 50, n=16)
    assert compare_passk(base, worse, n_boot=300).verdicts.iloc[0]["verdict"] == "regressed"
    same = compare_passk(base, base.copy(), n_boot=300).verdicts.iloc[0]
    assert same["verdict"] == "no_change" and same["d_pass1_lower"] == same["d_pass1_upper"] == 0


def test_same_model_resampled_is_no_change():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 150)
    base, rl = _table(rng.binomial(16, p), n=16), _table(rng.binomial(16, p), n=16)
    assert compare_passk(base, rl, n_boot=500, seed=4).verdicts.iloc[0]["verdict"] == "no_change"


def test_pairing_narrows_the_interval():
    # problems differ a lot in difficulty; RL adds a small uniform gain
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.9, 60)
    base = _table(np.round(p * 20).astype(int), n=20)
    rl = _table(np.minimum(np.round(p * 20).astype(int) + 2, 20), n=20)
    paired = compare_passk(base, rl, n_boot=400).verdicts.iloc[0]
    unpaired = compare_passk(base, rl.assign(problem_id=rl["problem_id"] + 1000),
                             n_boot=400).verdicts.iloc[0]
    assert paired["paired"] and not unpaired["paired"]
    width = lambda r: r["d_pass1_upper"] - r["d_pass1_lower"]  # noqa: E731
    assert width(paired) < 0.5 * width(unpaired)
    assert paired["verdict"] == "expanded" or paired["verdict"] == "sharpened"
    assert paired["d_pass1_lower"] > 0


def test_per_difficulty_verdicts_and_k_max_is_common_minimum():
    base = pd.concat([_table([8] * 40, n=16, difficulty=2), _table([2] * 40, n=8, difficulty=6)])
    rl = pd.concat([_table([8] * 40, n=16, difficulty=2), _table([16] * 20 + [0] * 20, n=16,
                                                                 difficulty=6)])
    out = compare_passk(base, rl, n_boot=200)
    v = out.verdicts.set_index("difficulty")
    assert list(v.index) == [2, 6]
    assert v.loc[2, "verdict"] == "no_change" and v.loc[6, "verdict"] == "sharpened"
    assert v.loc[6, "k_max"] == 8
    assert set(out.curves["model"]) == {"base", "rl"}
    d = out.to_dict()
    assert d["verdicts"][1]["verdict"] == "sharpened" and isinstance(d["verdicts"][1]["k_max"], int)


def test_verdict_table_is_exhaustive():
    got = {(a, b): verdict(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    assert got[(0, 0)] == "no_change"
    assert all(got[(a, 1)] == "expanded" for a in (-1, 0, 1))
    assert got[(1, 0)] == got[(1, -1)] == "sharpened"
    assert got[(-1, 0)] == got[(-1, -1)] == got[(0, -1)] == "regressed"


def test_no_common_difficulty_is_an_input_error():
    with pytest.raises(InputError, match="no difficulty in common"):
        compare_passk(_table([1], n=2, difficulty=1), _table([1], n=2, difficulty=2))


def test_a_difficultys_interval_does_not_depend_on_the_others():
    base = pd.concat([_table([2] * 30, n=8, difficulty=1), _table([3] * 30, n=8, difficulty=2)])
    rng = np.random.default_rng(7)
    rl = base.assign(c=np.clip(base["c"] + rng.integers(-2, 3, len(base)), 0, 8))
    both = compare_passk(base, rl, n_boot=200, seed=3).verdicts.set_index("difficulty")
    one = compare_passk(base[base["difficulty"] == 2], rl[rl["difficulty"] == 2], n_boot=200,
                        seed=3).verdicts.set_index("difficulty")
    assert both.loc[2, "d_pass1_lower"] == one.loc[2, "d_pass1_lower"]
    assert both.loc[2, "d_passk_upper"] == one.loc[2, "d_passk_upper"]
    other_seed = compare_passk(base, rl, n_boot=200, seed=4).verdicts.set_index("difficulty")
    assert other_seed.loc[2, "d_pass1_lower"] != both.loc[2, "d_pass1_lower"]


def test_counts_csv_round_trip_and_comparison_per_rl_model(tmp_path):
    from rlscale.analysis.passk_counts import PasskCounts, compare_to_base, read_counts, write_counts

    base = _table([1] * 12, n=4)
    tables = {"b": base, "r1": _table([4] * 12, n=4), "r2": base.copy()}
    counts = PasskCounts(tables=tables, sources={m: m for m in tables}, info={"samples": 4})
    path = tmp_path / "c.csv"
    write_counts(counts, path)
    back = read_counts(path, base="b", rl=["r2", "r1", "r2"])
    assert list(back.tables) == ["b", "r2", "r1"] and back.base == "b"
    assert back.info == {"counts": path}
    pd.testing.assert_frame_equal(back.tables["r1"].reset_index(drop=True),
                                  tables["r1"].reset_index(drop=True), check_dtype=False)
    report = compare_to_base(back, n_boot=50)
    assert [label for label, _ in report.comparisons] == ["r2", "r1"]
    assert report.to_dict()["comparisons"][1]["rl"] == "r1"
    assert report.comparisons[0][1].verdicts["verdict"].tolist() == ["no_change"]
    with pytest.raises(InputError, match="column 'model': no model 'x'"):
        read_counts(path, base="b", rl=["x"])
