"""The claim studies' verdict rules (rlscale.analysis.claims) on constructed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rlscale.analysis.ceiling_prediction import ordering_steps
from rlscale.analysis.claims import (
    coverage_amount_verdict,
    format_verdict,
    recipe_effects,
    recipe_verdict,
    two_phase_seed,
    two_phase_verdict,
)


def _recipes(shift_a=0.0, shift_b=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i, r in enumerate(["grpo", "dapo", "cispo"]):
        for s in range(4):
            rows.append({"recipe": r, "ok": True, "A": 0.5 + shift_a * i + rng.normal(0, 0.01),
                         "B": 1.2 + shift_b * i + rng.normal(0, 0.05),
                         "log10 C_mid": 10.5 + rng.normal(0, 0.05)})
    return pd.DataFrame(rows)


def test_recipes_that_move_b_only_support_claim_5():
    runs = _recipes(shift_b=0.5)
    eff = recipe_effects(runs).set_index("parameter")
    assert eff.loc["B", "moves"] and not eff.loc["A", "moves"]
    assert eff.loc["B", "ratio"] > 3
    assert recipe_verdict(runs, recipe_effects(runs)).startswith("SUPPORTED")


def test_recipes_that_move_a_refute_it_and_no_effect_refutes_it_too():
    runs = _recipes(shift_a=0.1, shift_b=0.5)
    assert recipe_verdict(runs, recipe_effects(runs)) == "REFUTED (A moves across recipes)"
    runs = _recipes()
    assert recipe_verdict(runs, recipe_effects(runs)) == "REFUTED (neither B nor C_mid moves)"


def test_too_few_fitted_runs_is_not_testable():
    runs = _recipes(shift_b=0.5)
    runs.loc[runs.index[:2], "ok"] = False  # grpo keeps 2 of 4
    assert recipe_verdict(runs, recipe_effects(runs)).startswith("not testable here")


def _series(start, end, steps=60, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(1, steps + 1)
    return pd.Series(start + (end - start) * np.minimum(x / 20, 1) + rng.normal(0, noise, steps),
                     index=x)


def test_two_phase_exec_first_then_plan_holding_is_supported():
    rows = []
    for seed in range(3):
        exe = _series(1.0, 0.3, noise=0.01, seed=seed)  # falls 70% by step 20, then flat
        plan = _series(1.0, 0.9, noise=0.01, seed=seed + 10)  # falls 10%, then flat
        rows.append({"gain": 0.2, **two_phase_seed(plan, exe)})
    seeds = pd.DataFrame(rows)
    assert seeds["a: exec falls first"].all() and seeds["b: plan holds"].all()
    assert two_phase_verdict(seeds).startswith("SUPPORTED")


def test_two_phase_plan_falling_late_refutes_and_no_learning_is_not_testable():
    x = np.arange(1, 61)
    plan = pd.Series(1.0 - 0.01 * x, index=x)  # keeps falling through steps 20-60
    exe = _series(1.0, 0.3)
    row = two_phase_seed(plan, exe)
    assert row["a: exec falls first"] and not row["b: plan holds"] and row["plan falls p"] < 0.05
    seeds = pd.DataFrame([{"gain": 0.2, **row}] * 3)
    assert two_phase_verdict(seeds).startswith("REFUTED")
    seeds["gain"] = [0.0, 0.01, 0.3]
    assert two_phase_verdict(seeds).startswith("not testable here")


def _formats(winners):
    rows = []
    for size, ws in winners.items():
        for w in ws:
            rows.append({"d_model": size, "winner": w, "settled early": True})
    return pd.DataFrame(rows)


def test_format_verdicts():
    runs = _formats({64: ["compact"] * 4, 128: ["compact"] * 3 + ["worked"], 256: ["worked"] * 4})
    assert format_verdict(runs).startswith("SUPPORTED")
    same = _formats({64: ["worked"] * 4, 256: ["worked"] * 4})
    assert format_verdict(same).startswith("REFUTED")
    unsettled = _formats({64: ["compact"] * 4, 256: ["worked"] * 4})
    unsettled.loc[:1, "settled early"] = False  # only 2 of the small size's 4 settle
    assert format_verdict(unsettled).startswith("PARTLY SUPPORTED ((a) early settling fails")


def _cells(effect_cov, effect_amt, sd=0.01, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for t_i, tokens in enumerate([5, 10, 20]):
        for c_i, ops in enumerate([2, 3, 4]):
            for _ in range(4):
                rows.append({"tokens": tokens, "ops_max": ops,
                             "A": 0.2 + effect_cov * c_i + effect_amt * t_i + rng.normal(0, sd)})
    return pd.DataFrame(rows)


def test_coverage_amount_verdicts():
    runs = _cells(0.1, 0.1)
    cov = ordering_steps(runs, along="ops_max", within="tokens")
    amt = ordering_steps(runs, along="tokens", within="ops_max")
    assert coverage_amount_verdict(cov, amt, 0.9, complete=True).startswith("SUPPORTED")
    assert coverage_amount_verdict(cov, amt, 0.6, complete=True).startswith(
        "PARTLY SUPPORTED (holds: coverage, amount; fails: prediction")
    assert coverage_amount_verdict(cov, amt, 0.3, complete=True).startswith("REFUTED (Spearman")
    assert coverage_amount_verdict(cov, amt, 0.9, complete=False).startswith("incomplete")
    runs = _cells(-0.1, 0.1)
    cov = ordering_steps(runs, along="ops_max", within="tokens")
    amt = ordering_steps(runs, along="tokens", within="ops_max")
    assert coverage_amount_verdict(cov, amt, 0.9, complete=True).startswith(
        "REFUTED (a step goes down")
    flat = _cells(0.0, 0.1, sd=0.0)
    cov = ordering_steps(flat, along="ops_max", within="tokens")
    amt = ordering_steps(flat, along="tokens", within="ops_max")
    assert "fails: coverage" in coverage_amount_verdict(cov, amt, 0.9, complete=True)


def test_markdown_table_of_a_reader():
    from rlscale.text import markdown_table

    out = markdown_table(pd.DataFrame({"recipe": ["grpo"], "A": [0.52345], "n": [4]}), ".3g")
    assert out.splitlines() == ["| recipe | A | n |", "|---|---|---|", "| grpo | 0.523 | 4 |"]
