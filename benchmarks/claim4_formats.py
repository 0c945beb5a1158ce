"""Read the claim-4 format study (runs/claim4_formats_gpu.toml) and apply its verdict rule.

    python benchmarks/claim4_formats.py STORE

Per run (size, pretraining seed, RL seed): eval/format_share of each format at step 0, at the
first evaluation at or after step 20 and at the end; the winner (the larger share at the end)
and whether it settled early (share >= 0.9 from the first evaluation at or after step 20 to the
end). Then the rule of the spec's header. Prints Markdown tables and the verdict. Not a test: it
reads a finished store (the GPU study is run by benchmarks/claim4_gpu.sh).
"""

from __future__ import annotations

import re
import sys

import pandas as pd

from rlscale.analysis.claims import format_verdict
from rlscale.store import Store
from rlscale.store.frames import load_points
from rlscale.text import markdown_table

FORMATS = ("worked", "compact", "direct")
SETTLE_STEP, SETTLED = 20, 0.9
RUN = re.compile(r"d_model=(\d+)-n_layers=(\d+)-n_heads=\d+-seed=(\d+)-s(\d+)$")




def per_run(root: str) -> pd.DataFrame:
    pts = load_points(Store(root))
    rows = []
    for rid, g in pts.groupby("run_id", sort=True):
        m = RUN.search(rid)
        if not m:
            continue
        share = (g[g["metric"].str.startswith("eval/format_share/")]
                 .assign(fmt=lambda d: d["metric"].str.rsplit("/", n=1).str[1])
                 .pivot_table(index="step", columns="fmt", values="value").sort_index())
        share = share.reindex(columns=list(FORMATS), fill_value=0.0).fillna(0.0)
        winner = str(share.iloc[-1].idxmax())
        after = share[share.index >= SETTLE_STEP][winner]
        row = {"size": f"d{m[1]}-L{m[2]}", "d_model": int(m[1]), "pt_seed": int(m[3]),
               "rl_seed": int(m[4]), "winner": winner,
               "settled early": bool(len(after) and (after >= SETTLED).all())}
        for f in FORMATS:
            row[f"{f} 0"] = float(share[f].iloc[0])
            row[f"{f} end"] = float(share[f].iloc[-1])
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["d_model", "pt_seed", "rl_seed"])


def main(root: str) -> None:
    runs = per_run(root)
    print(markdown_table(runs.drop(columns=["d_model"]), ".3g"))
    print(f"\nverdict: {format_verdict(runs)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[2].strip())
    main(sys.argv[1])
