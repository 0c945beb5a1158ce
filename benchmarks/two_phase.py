"""Read the two-phase study (runs/two_phase.toml) and apply its verdict rule.

    python benchmarks/two_phase.py runs/two-phase-store

Per RL seed: the held-out gain (eval/mean@8, mean of the last 3 evaluations minus step 0), the
plan and exec token entropies (train/entropy/plan, train/entropy/exec) averaged over steps 1-5,
16-20, 16-25 and 51-60, (a) the share of its start each role's entropy lost by steps 16-20, and
(b) the one-sided Welch t-test of plan entropy falling from steps 16-25 to 51-60. The rule is
the spec's header: not testable here if the gain is < 0.05 in 2 or more seeds; SUPPORTED if (a)
exec falls by a larger share than plan and (b) plan does not fall (p >= 0.05) in at least 2 of 3
seeds; REFUTED otherwise. Prints a Markdown table and the verdict. Not a test: it reads a
finished store.
"""

from __future__ import annotations

import sys

import pandas as pd

from rlscale.analysis.claims import two_phase_seed, two_phase_verdict
from rlscale.store import Store
from rlscale.store.frames import load_points
from rlscale.text import markdown_table

MIN_GAIN = 0.05




def per_seed(root: str) -> pd.DataFrame:
    pts = load_points(Store(root))
    rows = []
    for rid, g in pts.groupby("run_id", sort=True):
        def metric(name):
            return g[g["metric"] == name].set_index("step")["value"].sort_index()
        ev = metric("eval/mean@8")
        row = {"run": rid, "gain": float(ev.iloc[-3:].mean() - ev.loc[0]) if 0 in ev.index
               else float("nan")}
        row.update(two_phase_seed(metric("train/entropy/plan"), metric("train/entropy/exec")))
        rows.append(row)
    return pd.DataFrame(rows)


def main(root: str) -> None:
    seeds = per_seed(root)
    print(markdown_table(seeds))
    print(f"\nverdict: {two_phase_verdict(seeds, min_gain=MIN_GAIN)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[2].strip())
    main(sys.argv[1])
