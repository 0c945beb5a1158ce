"""Read the claim-3 sparsity study (runs/claim3_sparsity.toml) and apply its verdict rule.

    python benchmarks/claim3_sparsity.py runs/store-scratch/claim3

Per run (trainer, lr, seed): the changed share of the final policy in bf16 @ atol 1e-5 (the
papers' protocol), its last eval/kl_base, the held-out reward change (final - step 0 eval/mean@8);
for each RL run the KL-matched SFT and RFT checkpoints (the rule in the spec's header) and their
shares; the seed-0 / seed-1 overlap of RL's changed sets against chance. Prints Markdown tables
and the verdict. Not a test: it reads a finished store.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rlscale.analysis.checkpoints import load_state_dict, resolve
from rlscale.analysis.sparsity import changed_masks, overlap_of
from rlscale.store import Store
from rlscale.text import markdown_table

PAPERS_LRS = (1e-6, 1e-5)
CAST, ATOL = "bf16", 1e-5




def main(root: str) -> None:
    st = Store(root)
    runs = st.runs()
    pts = st.read_points(metric=["eval/mean@8", "eval/kl_base"])
    base = None
    rows, masks, kept = [], {}, []
    for _, r in runs.iterrows():
        rid = r["run_id"]
        meta = st.read_meta(rid)
        trainer, lr, seed = meta.config["rl"].get("trainer", "rl"), meta.config["rl"]["lr"], meta.seed
        if base is None:
            base = resolve(rid, role="base", store=st).state
        p = pts[pts.run_id == rid]
        rew = p[p.metric == "eval/mean@8"].sort_values("step")
        kl = p[p.metric == "eval/kl_base"].set_index("step")["value"]
        ckdir = Path(root) / "_ckpt" / rid
        for f in sorted(ckdir.glob("step-*.pt")):
            step = int(f.stem.split("-")[1])
            if step == 0:
                continue
            m = changed_masks(base, load_state_dict(f), atol=ATOL, rtol=0, cast=CAST)
            share = sum(int(v.sum()) for v in m.values()) / sum(v.size for v in m.values())
            kept.append({"trainer": trainer, "lr": lr, "seed": seed, "step": step,
                         "kl": float(kl.get(step, np.nan)), "share": share})
            if step == int(rew.step.max()):
                masks[(trainer, lr, seed)] = m
        rows.append({"trainer": trainer, "lr": lr, "seed": seed,
                     "d_reward": float(rew.value.iloc[-1] - rew.value.iloc[0]),
                     "kl": float(kl.iloc[-1]), "share": kept[-1]["share"] if kept else np.nan})
    final = pd.DataFrame(rows).sort_values(["trainer", "lr", "seed"])
    kept = pd.DataFrame(kept)
    print("## final checkpoints (bf16 @ 1e-5)\n")
    print(markdown_table(final))
    match_rows = []
    for _, r in final[final.trainer == "rl"].iterrows():
        out = {"lr": r.lr, "seed": r.seed, "rl_kl": r.kl, "rl_share": r.share}
        for arm in ("sft", "rft"):
            c = kept[(kept.trainer == arm) & (kept.seed == r.seed) & (kept.kl > 0)].copy()
            c["dist"] = (np.log(c.kl / r.kl)).abs() if r.kl > 0 else np.inf
            c = c.sort_values("dist")
            if len(c) and c.dist.iloc[0] <= math.log(2):
                b = c.iloc[0]
                out.update({f"{arm}_lr": b.lr, f"{arm}_step": b.step, f"{arm}_kl": b.kl,
                            f"{arm}_share": b.share})
            else:
                out.update({f"{arm}_lr": None, f"{arm}_share": np.nan})
        match_rows.append(out)
    match = pd.DataFrame(match_rows)
    print("\n## RL vs KL-matched controls (within a factor 2 of RL's KL)\n")
    print(markdown_table(match))
    print("\n## overlap of the changed sets, seed 0 vs seed 1 (final checkpoints)\n")
    ov_rows = []
    for trainer in ("rl", "sft", "rft"):
        for lr in sorted(final.lr.unique()):
            a, b = masks.get((trainer, lr, 0)), masks.get((trainer, lr, 1))
            if a is not None and b is not None:
                ov_rows.append({"trainer": trainer, "lr": lr, **overlap_of(a, b)})
    ov = pd.DataFrame(ov_rows)
    cols = ["trainer", "lr", "frac_a", "frac_b", "jaccard", "chance_jaccard_tensor", "ratio",
            "ratio_tensor"]
    print(markdown_table(ov[cols]) if len(ov) else "(no pair of seeds finished)")
    verdict, why = "not testable here", []
    for lr in PAPERS_LRS:
        f = final[(final.trainer == "rl") & (final.lr == lr)]
        mm = match[match.lr == lr]
        learns = len(f) == 2 and (f.d_reward > 0).all() and f.d_reward.mean() >= 0.02
        matched = len(mm) == 2 and mm.sft_share.notna().all()
        if not (learns and matched):
            why.append(f"lr {lr:g}: learns={learns}, SFT matched in every seed={matched}")
            continue
        o = ov[(ov.trainer == "rl") & (ov.lr == lr)]
        ok = (f.share.between(0.05, 0.30).all() and (mm.rl_share < mm.sft_share).all()
              and len(o) > 0 and float(o.ratio_tensor.iloc[0]) > 1.1)
        why.append(f"lr {lr:g}: testable; share in [5%,30%], below SFT, overlap > 1.1x chance: {ok}")
        verdict = "supported" if ok else ("refuted" if verdict != "supported" else verdict)
    print(f"\nverdict: {verdict}")
    for w in why:
        print(f"  - {w}")


if __name__ == "__main__":
    main(sys.argv[1])
