"""The across-seed verdict of ``rlscale passk --arm``: constructed counts where the answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rlscale.analysis.passk_arms import arm_verdicts, parse_arm
from rlscale.analysis.passk_counts import PasskCounts, compare_to_base
from rlscale.cli import main
from rlscale.errors import InputError


def _table(cs, n=16, diff=5):
    return pd.DataFrame({"problem_id": range(len(cs)), "difficulty": diff, "n": n, "c": cs})


BASE = [0] * 20 + [2] * 20  # half the problems never solved, half solved 2/16


def _arms(models, arms, *, base=BASE, n=16, level=0.95, n_boot=300):
    tables = {"base": _table(base, n=n), **{m: _table(cs, n=n) for m, cs in models.items()}}
    counts = PasskCounts(tables=tables, sources={m: m for m in tables}, info={})
    report = compare_to_base(counts, n_boot=n_boot, level=level)
    return arm_verdicts(counts, report.comparisons, arms, level=level, n_boot=n_boot)


def _expanding(seed):
    """RL solves some never-solved problems once in 16 (pass@16 up, pass@1 about the same)."""
    rng = np.random.default_rng(seed)
    return [int(rng.random() < 0.6) for _ in range(20)] + [2] * 20


def test_a_consistent_small_gain_across_seeds_is_expanded_across_seeds():
    t = _arms({f"s{i}": _expanding(i) for i in range(4)}, {"edge": ["s0", "s1", "s2", "s3"]})
    r = t.iloc[0]
    assert r["n_seeds"] == 4 and r["k_max"] == 16
    assert r["d_passk_lower"] > 0 and r["verdict"] == "expanded"
    assert r["d_pass1_lower"] < r["d_pass1"] < r["d_pass1_upper"]
    assert sum(r[f"seeds_{v}"] for v in ("expanded", "sharpened", "regressed", "no_change")) == 4


def test_seeds_that_disagree_give_no_verdict_across_seeds():
    up = [16] * 20 + [2] * 20
    down = [0] * 20 + [0] * 20
    r = _arms({"a": up, "b": down}, {"mixed": ["a", "b"]}).iloc[0]
    assert r["seeds_expanded"] == 1 and r["seeds_regressed"] == 1
    assert r["d_passk_lower"] < 0 < r["d_passk_upper"] and r["verdict"] == "no_change"


def test_one_seed_has_no_interval_over_seeds():
    r = _arms({"a": _expanding(0)}, {"one": ["a"]}, level=0.9, n_boot=100).iloc[0]
    assert r["verdict"] == "one_seed" and np.isnan(r["d_passk_lower"])


def test_bad_arms_are_named():
    assert parse_arm("edge = a, b") == ("edge", ["a", "b"])
    for bad in ("edge", "=a", "edge="):
        with pytest.raises(InputError, match="--arm"):
            parse_arm(bad)
    with pytest.raises(InputError, match="'zz', which was not compared"):
        _arms({"a": BASE}, {"x": ["a", "zz"]}, n_boot=50)
    tables = {"base": _table(BASE), "a": _table(BASE), "b": _table(BASE).assign(problem_id=99)}
    tables["b"]["problem_id"] = range(100, 140)
    counts = PasskCounts(tables=tables, sources={m: m for m in tables}, info={})
    report = compare_to_base(counts, n_boot=50)
    with pytest.raises(InputError, match="'b' holds other problems than the base"):
        arm_verdicts(counts, report.comparisons, {"x": ["a", "b"]}, level=0.9, n_boot=50)


def test_the_interval_holds_the_problems_doubt_when_seeds_agree_exactly():
    """Three identical seeds have no spread, but 40 problems still leave doubt about others:
    the interval is the problems' bootstrap one, not zero width."""
    same = _expanding(0)
    r = _arms({f"s{i}": same for i in range(3)}, {"a": ["s0", "s1", "s2"]}).iloc[0]
    assert r["d_passk_upper"] - r["d_passk_lower"] > 0.1


def test_cli_arms_from_counts(tmp_path):
    frames = [_table(BASE).assign(model="base")]
    frames += [_table(_expanding(i)).assign(model=f"e{i}") for i in range(3)]
    path = tmp_path / "c.csv"
    pd.concat(frames)[["model", "problem_id", "difficulty", "n", "c"]].to_csv(path, index=False)
    res = CliRunner().invoke(main, ["passk", "--from-counts", str(path), "base",
                                    "--arm", "edge=e0,e1,e2", "--n-boot", "200"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("  edge (3 seeds) ops=5"))
    assert "pass@16 d +" in line and "expanded" in line
    res = CliRunner().invoke(main, ["passk", "--from-counts", str(path), "base",
                                    "--arm", "edge=e0,e1", "--n-boot", "50", "--json"])
    arms = json.loads(res.output)["arms"]
    assert arms[0]["arm"] == "edge" and arms[0]["n_seeds"] == 2
    res = CliRunner().invoke(main, ["passk", "--from-counts", str(path), "base", "--arm", "edge"])
    assert res.exit_code != 0 and "--arm" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["passk", "--from-counts", str(path), "base"])
    assert res.exit_code != 0 and "at least one RL model" in res.output
