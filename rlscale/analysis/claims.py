"""The verdict rules of issue 20's claim studies, as functions of per-run tables.

Each study's sweep spec (``runs/claim*.toml``, ``runs/two_phase.toml``) fixes its rule in its
header before any result is read; the readers in ``benchmarks/`` build the per-run tables from a
finished store and call these. Kept here, apart from the readers, so that the rules are tested
on constructed tables (tests/test_analysis_claims.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


# -- claim 5: recipes move B and C_mid, not A ---------------------------------------------------
def recipe_effects(runs: pd.DataFrame, params: Sequence[str] = ("A", "B", "log10 C_mid"), *,
                   by: str = "recipe", ok: str = "ok") -> pd.DataFrame:
    """Per parameter: the one-way ANOVA across the groups of ``by`` (scipy.stats.f_oneway) over
    the runs whose ``ok`` is true, the spread of the group means beside the pooled within-group
    standard deviation (the seeds' spread), and whether it moves (p < :data:`ALPHA`)."""
    good = runs[runs[ok].astype(bool)]
    out = []
    for p in params:
        groups = [g[p].dropna().to_numpy(float) for _, g in good.groupby(by, sort=True)]
        groups = [g for g in groups if g.size]
        dof = sum(g.size - 1 for g in groups)
        if len(groups) < 2 or dof < 1:
            f_stat = pval = math.nan
        else:
            f_stat, pval = (float(v) for v in stats.f_oneway(*groups))
        means = np.array([g.mean() for g in groups])
        within = (math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof)
                  if dof >= 1 else math.nan)
        between = float(means.std(ddof=1)) if means.size >= 2 else math.nan
        out.append({"parameter": p, "F": f_stat, "p": pval,
                    "moves": bool(pval < ALPHA) if math.isfinite(pval) else False,
                    "sd_between": between, "sd_within": within,
                    "ratio": between / within if within and math.isfinite(within) else math.nan})
    return pd.DataFrame(out)


def recipe_verdict(runs: pd.DataFrame, effects: pd.DataFrame, *, by: str = "recipe",
                   ok: str = "ok", min_runs: int = 3) -> str:
    """Claim 5's rule: SUPPORTED if B and/or C_mid move and A does not; REFUTED if A moves, or
    if neither B nor C_mid moves; "not testable here" when a group has fewer than ``min_runs``
    runs whose fit is ok."""
    counts = runs[runs[ok].astype(bool)].groupby(by).size()
    if len(counts) < runs[by].nunique() or (counts < min_runs).any():
        return f"not testable here (a {by} has fewer than {min_runs} fitted runs)"
    moves = dict(zip(effects["parameter"], effects["moves"]))
    if moves.get("A"):
        return "REFUTED (A moves across recipes)"
    if moves.get("B") or moves.get("log10 C_mid"):
        return "SUPPORTED (B and/or C_mid move, A does not)"
    return "REFUTED (neither B nor C_mid moves)"


# -- two-phase dynamics --------------------------------------------------------------------------
def _window(series: pd.Series, lo: int, hi: int) -> np.ndarray:
    return series[(series.index >= lo) & (series.index <= hi)].to_numpy(float)


def two_phase_seed(plan: pd.Series, exe: pd.Series) -> dict[str, float | bool]:
    """One seed's tests of the two-phase rule (runs/two_phase.toml), from the per-step plan and
    exec token entropies (index: step): (a) exec entropy loses a larger share of its start
    (mean of steps 1-5) than plan entropy by steps 16-20; (b) plan entropy does not fall from
    steps 16-25 to 51-60 (one-sided Welch t-test, p < :data:`ALPHA` counts as falling)."""
    row: dict[str, float | bool] = {}
    for role, s in (("plan", plan), ("exec", exe)):
        for lo, hi in ((1, 5), (16, 20), (16, 25), (51, 60)):
            w = _window(s, lo, hi)
            row[f"{role} {lo}-{hi}"] = float(w.mean()) if w.size else math.nan
        row[f"{role} drop 1-20"] = 1 - row[f"{role} 16-20"] / row[f"{role} 1-5"]
    late, mid = _window(plan, 51, 60), _window(plan, 16, 25)
    p = (float(stats.ttest_ind(late, mid, equal_var=False, alternative="less").pvalue)
         if late.size >= 2 and mid.size >= 2 else math.nan)
    row["plan falls p"] = p
    row["a: exec falls first"] = bool(row["exec drop 1-20"] > row["plan drop 1-20"])
    row["b: plan holds"] = bool(math.isfinite(p) and p >= ALPHA)
    return row


def two_phase_verdict(seeds: pd.DataFrame, *, min_gain: float = 0.05) -> str:
    """The two-phase rule over seeds (rows of :func:`two_phase_seed` plus ``gain``, the held-out
    eval/mean@8 gain): not testable if RL gained < ``min_gain`` in 2+ seeds; SUPPORTED if (a)
    and (b) hold together in at least 2 seeds (of 3); REFUTED otherwise."""
    if int((seeds["gain"] < min_gain).sum()) >= 2:
        return f"not testable here (RL gained < {min_gain} held-out reward in 2+ seeds)"
    a, b = seeds["a: exec falls first"].astype(bool), seeds["b: plan holds"].astype(bool)
    both = int((a & b).sum())
    label = "SUPPORTED" if both >= 2 else "REFUTED"
    return f"{label} ((a) in {int(a.sum())}/{len(seeds)} seeds, (b) in {int(b.sum())}, both in {both})"


# -- claim 4: early settling on one format, winner set by size ------------------------------------
def format_verdict(runs: pd.DataFrame, *, size: str = "d_model", settled: str = "settled early",
                   winner: str = "winner", need: int = 3) -> str:
    """Claim 4's rule (runs/claim4_formats_gpu.toml) over runs with columns ``size``,
    ``winner`` and ``settled`` (bool): SUPPORTED if (a) at least ``need`` runs of every size
    settled early and (b) the majority winner of the largest size differs from the smallest's,
    each held by at least ``need`` of its runs; REFUTED if (a) fails for 2+ sizes or every size
    has the same majority winner; otherwise PARTLY SUPPORTED."""
    groups = runs.groupby(size, sort=True)
    n_settled = groups[settled].sum()
    majority = groups[winner].agg(lambda w: w.value_counts().idxmax())
    small, large = runs[size].min(), runs[size].max()

    def held(s):
        return int((runs[runs[size] == s][winner] == majority[s]).sum()) >= need

    a = bool((n_settled >= need).all())
    b = bool(majority[small] != majority[large] and held(small) and held(large))
    summary = f"settled early per size: {n_settled.to_dict()}; majority winners: " \
              f"{majority.to_dict()}"
    if int((n_settled < need).sum()) >= 2 or majority.nunique() == 1:
        return f"REFUTED ({summary})"
    if a and b:
        return f"SUPPORTED ({summary})"
    return (f"PARTLY SUPPORTED ((a) early settling {'holds' if a else 'fails'}, (b) size decides "
            f"the winner {'holds' if b else 'fails'}; {summary})")


# -- claim 1: coverage x amount -------------------------------------------------------------------
def coverage_amount_verdict(coverage_steps: pd.DataFrame, amount_steps: pd.DataFrame,
                            spearman: float, *, complete: bool) -> str:
    """Claim 1's rule (runs/claim1_coverage_amount.toml) from the two tables of
    :func:`rlscale.analysis.ceiling_prediction.ordering_steps` and the prediction's Spearman
    correlation over the cells: SUPPORTED if every step is up and Spearman >= 0.8; REFUTED if
    any step is down or Spearman < 0.5; otherwise PARTLY SUPPORTED, naming what holds."""
    if not complete:
        return "incomplete (not every cell has its runs)"
    steps = pd.concat([coverage_steps, amount_steps])
    parts = {"coverage": bool(coverage_steps["up"].all()),
             "amount": bool(amount_steps["up"].all()),
             "prediction": bool(spearman >= 0.8)}
    tail = (f"coverage steps up {int(coverage_steps['up'].sum())}/{len(coverage_steps)}, amount "
            f"steps up {int(amount_steps['up'].sum())}/{len(amount_steps)}, Spearman "
            f"{spearman:.2f}")
    if steps["down"].any():
        return f"REFUTED (a step goes down beyond 2 SE; {tail})"
    if not spearman >= 0.5:
        return f"REFUTED (Spearman {spearman:.2f} < 0.5; {tail})"
    if all(parts.values()):
        return f"SUPPORTED ({tail})"
    held = ", ".join(k for k, v in parts.items() if v) or "none"
    failed = ", ".join(k for k, v in parts.items() if not v)
    return f"PARTLY SUPPORTED (holds: {held}; fails: {failed}; {tail})"
