"""Verdicts across seeds: several RL runs of one arm (same recipe and data, different seeds)
against the same base.

One RL run's verdict (:func:`rlscale.analysis.passk.compare_passk`) has an interval over
problems only: it says whether *that policy* differs from the base on these problems. A claim
about a training procedure ("edge-of-competence RL expands pass@k") is about what the procedure
does across seeds, so an arm of ``n >= 2`` runs gets, per difficulty:

* the per-seed differences d(1) and d(K) (RL - base at k=1 and at the largest k) and how many
  seeds got each verdict (``expanded 2/3``: the count the claims' rules use, "in most seeds");
* their mean over seeds D with an interval at the report's level that holds both sources of
  doubt: the seeds (their spread s, every seed being a fresh run and a fresh sample of
  completions) and the problems (all seeds are read on the same problems, so the spread of the
  seeds says nothing about other problems: sigma_p is the standard deviation of D under the
  paired bootstrap over problems, the same resample for the base and every seed). The interval
  is ``D +- t_{(1+level)/2, dof} * sqrt(s^2 / n + sigma_p^2)``, ``dof`` by Welch-Satterthwaite
  from ``n - 1`` (seeds) and ``problems - 1``: conservative, since each seed's completion noise
  sits in both terms;
* the arm's verdict: :func:`~rlscale.analysis.passk.verdict` applied to the signs of those two
  intervals. With one seed there is no spread over seeds and the verdict is ``one_seed``.

K is the fewest samples per problem of the base and the arm's seeds at that difficulty; the
base and every seed must hold the same problems.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from rlscale.analysis.passk import (
    VERDICTS,
    PasskComparison,
    _resample_weights,
    _rng,
    _sign,
    passk_matrix,
    verdict,
)
from rlscale.analysis.passk_counts import PasskCounts
from rlscale.errors import input_error

ARM_COLUMNS: tuple[str, ...] = (
    "arm", "difficulty", "n_seeds", "k_max", "d_pass1", "d_pass1_lower", "d_pass1_upper",
    "d_passk", "d_passk_lower", "d_passk_upper", *(f"seeds_{v}" for v in VERDICTS), "verdict")


def parse_arm(text: str) -> tuple[str, list[str]]:
    """``NAME=MODEL,MODEL,...`` -> ``(NAME, [MODEL, ...])``; raises InputError naming the
    option and what was expected."""
    name, sep, members = text.partition("=")
    models = [m.strip() for m in members.split(",") if m.strip()]
    if not sep or not name.strip() or not models:
        raise input_error(f"--arm {text!r} names no arm",
                          expected="NAME=RUN,RUN,... (the RL runs of one arm, one per seed)")
    return name.strip(), models


def arm_verdicts(counts: PasskCounts, comparisons: Sequence[tuple[str, PasskComparison]],
                 arms: Mapping[str, Sequence[str]], *, level: float, n_boot: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """One row per (arm, difficulty) with the columns :data:`ARM_COLUMNS` (module docstring).

    ``counts``: the count tables (base first); ``comparisons``: each RL label's comparison with
    the base (a :class:`~rlscale.analysis.passk_counts.PasskReport`'s), for the per-seed
    verdicts; ``arms``: arm name -> RL labels. Raises InputError when an arm names a label that
    was not compared, or its seeds and the base hold different problems.
    """
    by_label = dict(comparisons)
    base = counts.tables[counts.base]
    rows = []
    for arm, labels in arms.items():
        missing = [m for m in labels if m not in by_label]
        if missing:
            raise input_error(f"--arm {arm!r} names {missing[0]!r}, which was not compared",
                              expected=f"RL models among {list(by_label)}")
        diffs = [d for d in by_label[labels[0]].verdicts["difficulty"]
                 if all(d in set(by_label[m].verdicts["difficulty"]) for m in labels[1:])]
        for diff in diffs:
            tables = [counts.tables[m] for m in labels]
            verdicts = [_row(by_label[m], diff)["verdict"] for m in labels]
            rows.append(_arm_row(arm, diff, base, tables, labels, verdicts, level=level,
                                 n_boot=n_boot, rng=_rng(seed, diff)))
    return pd.DataFrame(rows, columns=list(ARM_COLUMNS))


def _matrices(arm: str, diff: object, base: pd.DataFrame, tables: Sequence[pd.DataFrame],
              labels: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], int]:
    gb = base[base["difficulty"] == diff]
    ids = list(gb["problem_id"])
    gs = []
    for label, t in zip(labels, tables):
        g = t[t["difficulty"] == diff]
        if set(g["problem_id"]) != set(ids):
            raise input_error(f"--arm {arm!r} at difficulty {diff!r}: {label!r} holds other "
                              "problems than the base",
                              expected="every seed sampled on the base's problems")
        gs.append(g.set_index("problem_id").loc[ids].reset_index())
    k = int(min(g["n"].min() for g in [gb, *gs]))
    mb = passk_matrix(gb["n"].to_numpy(), gb["c"].to_numpy(), k_max=k)[:, [0, k - 1]]
    ms = [passk_matrix(g["n"].to_numpy(), g["c"].to_numpy(), k_max=k)[:, [0, k - 1]] for g in gs]
    return mb, ms, k


def _arm_row(arm: str, diff: object, base: pd.DataFrame, tables: Sequence[pd.DataFrame],
             labels: Sequence[str], verdicts: Sequence[str], *, level: float, n_boot: int,
             rng: np.random.Generator) -> dict:
    mb, ms, k = _matrices(arm, diff, base, tables, labels)
    per_seed = np.stack([(m - mb).mean(axis=0) for m in ms])  # (seeds, 2): d(1), d(K)
    mean = per_seed.mean(axis=0)
    n = len(ms)
    out = {"arm": arm, "difficulty": diff, "n_seeds": n, "k_max": k}
    if n >= 2:
        w = _resample_weights(mb.shape[0], n_boot=n_boot, rng=rng)
        sigma_p = (w @ (np.mean(ms, axis=0) - mb)).std(axis=0, ddof=1) if n_boot > 1 else 0.0
        a, b = per_seed.var(axis=0, ddof=1) / n, np.asarray(sigma_p) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):  # Welch-Satterthwaite
            dof = (a + b) ** 2 / (a ** 2 / (n - 1) + b ** 2 / max(mb.shape[0] - 1, 1))
        dof = np.where(np.isfinite(dof), dof, n - 1)
        half = stats.t.ppf((1 + level) / 2, dof) * np.sqrt(a + b)
        lo, hi = mean - half, mean + half
    else:
        lo = hi = np.full(2, math.nan)
    for j, name in enumerate(("d_pass1", "d_passk")):
        out.update({name: float(mean[j]), f"{name}_lower": float(lo[j]),
                    f"{name}_upper": float(hi[j])})
    for v in VERDICTS:
        out[f"seeds_{v}"] = int(sum(s == v for s in verdicts))
    out["verdict"] = (verdict(_sign(lo[0], hi[0]), _sign(lo[1], hi[1])) if n >= 2
                      else "one_seed")
    return out


def _row(cmp: PasskComparison, diff: object) -> pd.Series:
    return cmp.verdicts[cmp.verdicts["difficulty"] == diff].iloc[0]
