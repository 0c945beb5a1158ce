"""pass@k curves, bootstrap intervals, and the base-vs-RL verdict per difficulty.

Does RL teach a model to solve problems it could not solve before, or does it only make it pick,
more often, answers it could already sample? Yue et al. (2025, "Does Reinforcement Learning Really
Incentivize Reasoning Capacity in LLMs Beyond the Base Model?") answer with pass@k: if RL only
sharpens the sampling distribution, it wins at k=1 and the base model catches up (or overtakes)
at large k; if RL expands the set of solvable problems, it stays above at the largest k.

Input is a per-problem table of correct counts, one row per (problem, model evaluation):

    problem_id   any hashable id, unique within a difficulty
    difficulty   the held-out set it belongs to (the rl task uses the number of ops)
    n            completions sampled for that problem (int >= 1)
    c            of which verified correct (0 <= c <= n)

pass@k is the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models Trained
on Code", Eq. 1): 1 - C(n-c, k) / C(n, k), averaged over problems (:func:`pass_at_k_curve`).
Intervals come from the bootstrap over problems (the problems, not the samples, are the unit the
claim generalises over).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Hashable

import numpy as np
import pandas as pd

from rlscale.errors import input_error

COUNT_COLUMNS: tuple[str, ...] = ("problem_id", "difficulty", "n", "c")
VERDICTS: tuple[str, ...] = ("expanded", "sharpened", "regressed", "no_change")


# -- the estimator ------------------------------------------------------------------------------
def pass_at_k_curve(n: int, c: int, *, k_max: int | None = None) -> np.ndarray:
    """Unbiased pass@k (Chen et al. 2021, Eq. 1) for k = 1..k_max (default n) of one problem
    with ``n`` samples of which ``c`` are correct; shape ``(k_max,)``.

    Uses C(n-c, k)/C(n, k) = prod_{j<k} (n-c-j)/(n-j): a cumulative product of factors in [0, 1]
    (the paper's numerically stable form), so all k come out of one pass with no factorials.
    The scalar estimator the RL jobs log lives in :func:`rlscale.rl.evaluate.pass_at_k`; this is
    the vectorised form, kept here so the analysis needs no torch.
    """
    n, c = int(n), int(c)
    k_max = n if k_max is None else int(k_max)
    if n < 1 or not 0 <= c <= n or not 1 <= k_max <= n:
        msg = f"pass_at_k_curve needs n >= 1, 0 <= c <= n, 1 <= k_max <= n; got {n=}, {c=}, {k_max=}"
        raise ValueError(msg)
    j = np.arange(k_max, dtype=np.float64)
    factors = np.clip((n - c - j) / (n - j), 0.0, 1.0)
    return 1.0 - np.cumprod(factors)


# -- tables ---------------------------------------------------------------------------------------
def check_counts(table: pd.DataFrame, *, source: object = None) -> pd.DataFrame:
    """Validate a correct-count table (columns :data:`COUNT_COLUMNS`) and return a clean copy.

    Raises :class:`~rlscale.errors.InputError` naming ``source``, the row and the column when a
    column is missing, ``n``/``c`` are not integers with ``n >= 1`` and ``0 <= c <= n``, or a
    problem appears twice in a difficulty.
    """
    for col in COUNT_COLUMNS:
        if col not in table.columns:
            raise input_error(f"missing column {col!r}", path=source, field=col,
                              expected=f"columns {list(COUNT_COLUMNS)}")
    df = table[list(COUNT_COLUMNS)].copy().reset_index(drop=True)
    if df.empty:
        raise input_error("no rows", path=source, expected="at least one problem")
    for col in ("n", "c"):
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() | (num != np.floor(num))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(f"bad count {df[col].iloc[i]!r}", path=source, line=i, field=col,
                              expected="an integer")
        df[col] = num.astype("int64")
    bad = (df["n"] < 1) | (df["c"] < 0) | (df["c"] > df["n"])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise input_error(f"n={df['n'].iloc[i]}, c={df['c'].iloc[i]}", path=source, line=i,
                          field="c", expected="n >= 1 and 0 <= c <= n")
    dup = df.duplicated(["difficulty", "problem_id"])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise input_error(f"problem {df['problem_id'].iloc[i]!r} appears twice in difficulty "
                          f"{df['difficulty'].iloc[i]!r}", path=source, line=i, field="problem_id",
                          expected="one row per (difficulty, problem_id)")
    return df


def passk_matrix(n: np.ndarray, c: np.ndarray, *, k_max: int) -> np.ndarray:
    """Per-problem pass@k for k = 1..k_max: shape ``(len(n), k_max)``. Needs ``k_max <= min(n)``."""
    return np.stack([pass_at_k_curve(ni, ci, k_max=k_max) for ni, ci in zip(n, c)])


def _resample_weights(m: int, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap-over-problems as multinomial weights, shape ``(n_boot, m)``, rows summing to 1.

    ``weights @ matrix`` is the mean over a resample, without materialising (n_boot, m, k).
    """
    return rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot) / m


def _interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - level) / 2.0 * 100.0
    return np.percentile(draws, tail, axis=0), np.percentile(draws, 100.0 - tail, axis=0)


def _check_boot(n_boot: int, level: float) -> None:
    if n_boot < 1:
        msg = f"n_boot must be >= 1; got {n_boot}"
        raise ValueError(msg)
    if not 0.0 < level < 1.0:
        msg = f"level must be in (0, 1), e.g. 0.95; got {level}"
        raise ValueError(msg)


def passk_curves(table: pd.DataFrame, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0, source: object = None) -> pd.DataFrame:
    """Mean pass@k per difficulty for k = 1..min(n), with a bootstrap-over-problems interval.

    Returns a long frame: ``difficulty, k, pass_at_k, lower, upper, n_problems``.
    """
    _check_boot(n_boot, level)
    df = check_counts(table, source=source)
    frames = []
    for diff, g in df.groupby("difficulty", sort=True):
        k_max = int(g["n"].min())
        mat = passk_matrix(g["n"].to_numpy(), g["c"].to_numpy(), k_max=k_max)
        rng = _rng(seed, diff)
        lo, hi = _interval(_resample_weights(len(g), n_boot=n_boot, rng=rng) @ mat, level)
        frames.append(pd.DataFrame({
            "difficulty": diff, "k": np.arange(1, k_max + 1), "pass_at_k": mat.mean(axis=0),
            "lower": lo, "upper": hi, "n_problems": len(g),
        }))
    return pd.concat(frames, ignore_index=True)


# -- base vs RL ------------------------------------------------------------------------------------
@dataclass
class PasskComparison:
    """The outcome of :func:`compare_passk`.

    ``curves``: long frame ``model, difficulty, k, pass_at_k, lower, upper, n_problems``
    (model is ``"base"`` or ``"rl"``). ``verdicts``: one row per difficulty (see
    :func:`compare_passk`). ``level``/``n_boot``/``seed`` record how intervals were made.
    """

    curves: pd.DataFrame
    verdicts: pd.DataFrame
    level: float
    n_boot: int
    seed: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (for ``--json``)."""
        return {
            "level": self.level, "n_boot": self.n_boot, "seed": self.seed,
            "interval_method": "percentile bootstrap over problems",
            "verdicts": _records(self.verdicts), "curves": _records(self.curves),
            "notes": list(self.notes),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out


def _sign(lower: float, upper: float) -> int:
    """+1 if the interval lies above 0, -1 if below, 0 if it contains 0."""
    return 1 if lower > 0 else (-1 if upper < 0 else 0)


def verdict(sign_k1: int, sign_kmax: int) -> str:
    """The verdict from the significance signs of RL - base at k=1 and at the largest k.

    ======================  ==========================================================
    ``sign_kmax == +1``     ``expanded``: RL solves, within k samples, problems base does not
    ``sign_k1 == +1``       ``sharpened``: RL better at k=1, not better at the largest k
    either sign ``== -1``   ``regressed``: RL worse at k=1 or at the largest k, better at neither
    both ``0``              ``no_change``
    ======================  ==========================================================

    Checked in that order, so the four are exhaustive and exclusive.
    """
    if sign_kmax > 0:
        return "expanded"
    if sign_k1 > 0:
        return "sharpened"
    if sign_k1 < 0 or sign_kmax < 0:
        return "regressed"
    return "no_change"


def compare_passk(base: pd.DataFrame, rl: pd.DataFrame, *, k_max: int | None = None,
                  n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                  base_source: object = "base", rl_source: object = "rl") -> PasskComparison:
    """Compare base and RL pass@k per difficulty, and give a verdict for each.

    For each difficulty present in both tables, K = ``k_max`` (default: the smallest n of either
    model there). The difference d(k) = pass@k(RL) - pass@k(base) gets a percentile interval
    at ``level`` from ``n_boot`` bootstrap resamples of the problems. When both models were
    evaluated on the same problem ids (the normal case), the resample is *paired*: the same
    problems are drawn for both, which removes the between-problem variance from d(k). Otherwise
    each model's problems are resampled independently.

    The verdict (see :func:`verdict`) uses the signs of the d(1) and d(K) intervals. The
    ``crossover`` column marks the strong form of sharpening reported by Yue et al. (2025): the
    interval of d(K) lies below zero, i.e. base is *better* than RL at the largest k.

    Returns a :class:`PasskComparison`; its ``verdicts`` frame has one row per difficulty:
    ``difficulty, n_problems, paired, k_max, base_pass1, rl_pass1, d_pass1, d_pass1_lower,
    d_pass1_upper, base_passk, rl_passk, d_passk, d_passk_lower, d_passk_upper, crossover, verdict``.
    """
    _check_boot(n_boot, level)
    b = check_counts(base, source=base_source)
    r = check_counts(rl, source=rl_source)
    common = sorted(set(b["difficulty"]) & set(r["difficulty"]), key=_sort_key)
    if not common:
        have_b = sorted(set(b["difficulty"]), key=_sort_key)
        have_r = sorted(set(r["difficulty"]), key=_sort_key)
        raise input_error(f"no difficulty in common: base has {have_b}, RL has {have_r}",
                          path=rl_source, field="difficulty", expected="the same held-out sets")
    notes = []
    only = sorted(set(b["difficulty"]) ^ set(r["difficulty"]), key=_sort_key)
    if only:
        notes.append(f"difficulties in only one table were skipped: {only}")
    rows, curves = [], []
    for diff in common:
        gb, gr = b[b["difficulty"] == diff], r[r["difficulty"] == diff]
        row, cur = _compare_one(gb, gr, diff=diff, k_max=k_max, n_boot=n_boot, level=level,
                                rng=_rng(seed, diff))
        rows.append(row)
        curves.extend(cur)
        if row["n_problems"] < 10:
            notes.append(f"difficulty {diff!r}: only {row['n_problems']} problems; the bootstrap "
                         "interval is unreliable below ~10")
    return PasskComparison(curves=pd.concat(curves, ignore_index=True),
                           verdicts=pd.DataFrame(rows), level=level, n_boot=n_boot, seed=seed,
                           notes=notes)


def _rng(seed: int, difficulty: Hashable) -> np.random.Generator:
    """A generator per (seed, difficulty), so a difficulty's interval does not depend on which
    other difficulties are in the table."""
    key = zlib.crc32(repr(_plain(difficulty)).encode())
    return np.random.default_rng([int(seed), key])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _sort_key(value: Hashable) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float, np.integer, np.floating)) else (1, str(value))


def _compare_one(gb: pd.DataFrame, gr: pd.DataFrame, *, diff: Hashable, k_max: int | None,
                 n_boot: int, level: float, rng: np.random.Generator) -> tuple[dict, list]:
    limit = int(min(gb["n"].min(), gr["n"].min()))
    if k_max is not None and not 1 <= k_max <= limit:
        msg = (f"k_max={k_max} for difficulty {diff!r}, but the fewest samples per problem there "
               f"is {limit}")
        raise ValueError(msg)
    kk = limit if k_max is None else int(k_max)
    paired = set(gb["problem_id"]) == set(gr["problem_id"])
    if paired:
        gr = gr.set_index("problem_id").loc[gb["problem_id"]].reset_index()
    mb = passk_matrix(gb["n"].to_numpy(), gb["c"].to_numpy(), k_max=kk)
    mr = passk_matrix(gr["n"].to_numpy(), gr["c"].to_numpy(), k_max=kk)
    wb = _resample_weights(len(gb), n_boot=n_boot, rng=rng)
    wr = wb if paired else _resample_weights(len(gr), n_boot=n_boot, rng=rng)
    db, dr = wb @ mb, wr @ mr
    lo, hi = _interval(dr - db, level)
    pb, pr = mb.mean(axis=0), mr.mean(axis=0)
    s1, sk = _sign(lo[0], hi[0]), _sign(lo[-1], hi[-1])
    row = {
        "difficulty": diff, "n_problems": int(min(len(gb), len(gr))), "paired": paired, "k_max": kk,
        "base_pass1": pb[0], "rl_pass1": pr[0], "d_pass1": pr[0] - pb[0],
        "d_pass1_lower": lo[0], "d_pass1_upper": hi[0],
        "base_passk": pb[-1], "rl_passk": pr[-1], "d_passk": pr[-1] - pb[-1],
        "d_passk_lower": lo[-1], "d_passk_upper": hi[-1],
        "crossover": bool(sk < 0), "verdict": verdict(s1, sk),
    }
    curves = []
    for name, mean, draws, g in (("base", pb, db, gb), ("rl", pr, dr, gr)):
        clo, chi = _interval(draws, level)
        curves.append(pd.DataFrame({"model": name, "difficulty": diff, "k": np.arange(1, kk + 1),
                                    "pass_at_k": mean, "lower": clo, "upper": chi,
                                    "n_problems": len(g)}))
    return row, curves
