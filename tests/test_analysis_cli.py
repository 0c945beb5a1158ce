from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.store import RunMeta, Store

LEVELS = (1e7, 1e8, 1e9, 1e10)


def _ceiling(p):
    return 0.85 - 0.3 * (p / 1e8) ** -0.4


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def headroom_store(tmp_path):
    """One sigmoid reward curve per pretraining level; the ceiling A follows _ceiling(P)."""
    st = Store(tmp_path / "store")
    c = np.geomspace(10, 1e4, 30)
    for i, p in enumerate(LEVELS):
        y = 0.02 + (_ceiling(p) - 0.02) / (1 + (500 / c) ** 1.5)
        y = y + np.random.default_rng(i).normal(0, 0.005, c.size)
        st.write_run(RunMeta(run_id=f"pt{i}", recipe="grpo", metadata={"pretrain_tokens": p}),
                     pd.DataFrame({"step": np.arange(c.size), "metric": "reward", "value": y,
                                   "gpu_hours": c}))
    return st.root


def test_headroom_cli_recovers_the_ceiling_law(headroom_store):
    before = _snapshot(headroom_store)
    res = CliRunner().invoke(main, ["headroom", "--store", str(headroom_store), "--metric",
                                    "reward", "--by", "pretrain_tokens", "--at", "1e11", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["headroom_law"] == "saturating" and out["dof"] == 1 and out["n_draws"] > 100
    levels = {r["level"]: r for r in out["levels"]}
    for p in LEVELS:
        assert levels[p]["A"] == pytest.approx(_ceiling(p), abs=0.02)
    fc = out["forecast"][0]
    assert fc["P"] == 1e11 and fc["lower"] < _ceiling(1e11) < fc["upper"]
    amax = out["params"]["A_max"]
    assert amax["lower"] < 0.85 < amax["upper"]
    assert _snapshot(headroom_store) == before  # read-only


def test_headroom_cli_text_and_errors(headroom_store):
    run = CliRunner().invoke
    res = run(main, ["headroom", "--store", str(headroom_store), "--metric", "reward", "--by",
                     "pretrain_tokens", "--cap", "0.85", "--at", "1e11"])
    assert res.exit_code == 0, res.output
    assert "A_max = 0.85 (fixed)" in res.output and "forecast RL ceiling" in res.output
    res = run(main, ["headroom", "--store", str(headroom_store), "--metric", "reward", "--by",
                     "lr"])
    assert res.exit_code == 1 and "no metadata key 'lr'" in res.output
    res = run(main, ["headroom", "--store", str(headroom_store), "--metric", "reward", "--by",
                     "pretrain_tokens", "--at", "ten"])
    assert res.exit_code == 2 and "'ten' is not a number" in res.output


def test_sparsity_cli(tmp_path):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    base = {"blocks.0.w": torch.randn(16, 12, generator=g), "blocks.0.b": torch.zeros(12),
            "head.weight": torch.randn(5, 12, generator=g)}
    rl = {k: v.clone() for k, v in base.items()}
    rl["blocks.0.w"] += 0.01 * torch.outer(torch.ones(16), torch.linspace(-1, 1, 12))
    torch.save(base, tmp_path / "base.pt")
    torch.save({"model": rl, "step": 10}, tmp_path / "rl.pt")
    res = CliRunner().invoke(main, ["sparsity", str(tmp_path / "base.pt"), str(tmp_path / "rl.pt"),
                                    "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    w = next(m for m in out["matrices"] if m["name"] == "blocks.0.w")
    assert w["rank"] == 1 and w["n_changed"] == 16 * 12  # linspace(-1, 1, 12) has no zero
    assert out["total"]["n_changed"] == 16 * 12
    res = CliRunner().invoke(main, ["sparsity", str(tmp_path / "base.pt"), str(tmp_path / "rl.pt")])
    assert "per layer:" in res.output and "blocks.0" in res.output
    res = CliRunner().invoke(main, ["sparsity", str(tmp_path / "base.pt"), str(tmp_path / "x.pt")])
    assert res.exit_code == 1 and "x.pt: RL is neither a file, a directory, nor a run" in res.output


def test_passk_from_counts_gives_verdicts_and_a_chart(tmp_path):
    rows = [("base", i, 4, 16, 2) for i in range(40)]
    rows += [("rl", i, 4, 16, 16 if i < 20 else 0) for i in range(40)]
    rows += [("rl2", i, 4, 16, 8) for i in range(40)]
    path = tmp_path / "counts.csv"
    pd.DataFrame(rows, columns=["model", "problem_id", "difficulty", "n", "c"]).to_csv(path,
                                                                                      index=False)
    res = CliRunner().invoke(main, ["passk", "--from-counts", str(path), "base", "rl", "rl2",
                                    "--n-boot", "200", "--out", str(tmp_path / "c.json")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "ops=4" in ln]
    assert "sharpened (base above at large k)" in lines[0] and "pass@16 1.000 -> 0.500" in lines[0]
    assert "sharpened" in lines[1] and "pass@1 0.125 -> 0.500" in lines[1]
    assert json.loads((tmp_path / "c.json").read_text())["facet"]
    res = CliRunner().invoke(main, ["passk", "--from-counts", str(path), "base", "rl3"])
    assert res.exit_code == 1 and "column 'model': no model 'rl3'" in res.output


def test_passk_html_chart_is_offline(tmp_path):
    rows = [(m, i, 4, 8, c) for m, c in (("base", 2), ("rl", 5)) for i in range(12)]
    path = tmp_path / "counts.csv"
    pd.DataFrame(rows, columns=["model", "problem_id", "difficulty", "n", "c"]).to_csv(path,
                                                                                      index=False)
    page = tmp_path / "passk.html"
    res = CliRunner().invoke(main, ["passk", "--from-counts", str(path), "base", "rl",
                                    "--n-boot", "50", "--out", str(page)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    text = page.read_text()
    assert not re.search(r"<script[^>]*\bsrc\s*=", text) and "<link" not in text
    assert not re.search(r"https?://(cdn\.jsdelivr\.net|unpkg\.com|cdnjs)", text)
    assert "vegaEmbed(" in text and '"facet"' in text  # the chart, rendered by the inlined bundle


def test_every_analysis_command_has_help_with_an_example():
    for name in ("headroom", "passk", "sparsity"):
        res = CliRunner().invoke(main, [name, "--help"])
        assert res.exit_code == 0 and "Example" in res.output


def test_headroom_leaves_out_a_level_that_cannot_be_fitted(headroom_store):
    from rlscale.analysis.headroom import headroom
    from rlscale.store import load_points

    st = Store(headroom_store)
    st.write_run(RunMeta(run_id="few", metadata={"pretrain_tokens": 3e10}),
                 pd.DataFrame({"step": [0, 1], "metric": "reward", "value": [0.1, 0.2],
                               "gpu_hours": [1.0, 2.0]}))
    out = headroom(load_points(st, metric="reward", with_meta=True), metric="reward",
                   by="pretrain_tokens", at=[1e11])
    assert list(out.levels["level"]) == list(LEVELS)
    assert any("3e+10" in n or "30000000000" in n for n in out.notes)
    assert "too_few_points" in " ".join(out.notes)
