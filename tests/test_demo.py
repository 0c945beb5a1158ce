"""rlscale demo: the --quick configuration end to end, and a rerun that reuses every run."""

from __future__ import annotations

import io
import os

import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("vl_convert")

from rlscale.cli import main  # noqa: E402
from rlscale.demo import level_key, run_demo, spec_path  # noqa: E402
from rlscale.store import Store  # noqa: E402
from rlscale.sweep.run import load_spec, resolve_jobs  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One --quick demo (pretraining its tiny bases into a private cache), run once per module."""
    root = tmp_path_factory.mktemp("demo")
    old = os.environ.get("RLSCALE_CACHE")
    os.environ["RLSCALE_CACHE"] = str(root / "cache")  # spawned workers inherit it
    try:
        stream = io.StringIO()
        res = run_demo(store=root / "store", out=root / "out", quick=True, workers=2,
                       stream=stream, refresh_s=0.5)
        yield root, res, stream.getvalue()
    finally:
        if old is None:
            os.environ.pop("RLSCALE_CACHE", None)
        else:
            os.environ["RLSCALE_CACHE"] = old


def test_quick_spec_shape():
    spec = load_spec(spec_path(quick=True))
    assert level_key(spec) == ("pretrain.tokens", "pretrain_tokens")
    jobs = resolve_jobs(spec)
    assert len({j.config["pretrain"]["tokens"] for j in jobs}) >= 3
    assert len({j.config["rl"]["recipe"] for j in jobs}) >= 2
    full = load_spec(spec_path())
    assert level_key(full)[0].startswith("pretrain.")
    full_jobs = resolve_jobs(full)
    assert len({j.group for j in full_jobs}) >= 3
    assert len({j.config["rl"]["recipe"] for j in full_jobs}) >= 2


def test_quick_demo_writes_runs_report_and_charts(quick_demo):
    root, res, text = quick_demo
    expected = [j.job_id for j in resolve_jobs(load_spec(spec_path(quick=True)))]
    assert res.run_ids == expected and sorted(res.ran) == sorted(expected)
    runs = Store(root / "store").runs().set_index("run_id")
    assert set(expected) <= set(runs.index)
    assert (runs.loc[expected, "status"] == "complete").all()
    for name in ("report", "levels", "curves", "params"):
        path = res.files[name]
        assert path.is_file() and path.stat().st_size > 1000, name
    for name in ("levels", "curves", "params"):
        assert res.files[name].read_bytes()[:8] == PNG
    html = res.files["report"].read_text()
    assert "<html" in html and "pretrain_tokens" in html and expected[0] in html
    table = pd.read_csv(res.files["params_csv"])
    assert len(table) == len(expected) * 4  # A, B, C_mid, R0 per (level, recipe)
    assert sorted(table["level"].unique()) == [10_000, 20_000, 40_000]
    assert "started" in text and "wrote" in text  # progress and outputs were shown


def test_rerun_reuses_every_run(quick_demo):
    root, first, _ = quick_demo
    store = root / "store"
    before = {p: p.stat().st_mtime_ns for p in store.glob("*/points.parquet")}
    result = CliRunner().invoke(main, ["demo", "--quick", "--store", str(store),
                                       "--out", str(root / "out2")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{len(first.run_ids)} already complete" in result.output
    assert "started" not in result.output
    after = {p: p.stat().st_mtime_ns for p in store.glob("*/points.parquet")}
    assert after == before  # no new run, no run touched
    assert (root / "out2" / "levels.png").is_file()
    a = pd.read_csv(first.files["params_csv"])
    b = pd.read_csv(root / "out2" / "params.csv")
    pd.testing.assert_frame_equal(a, b)  # same runs, same fits


def test_demo_help_has_example():
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0 and "rlscale demo --quick" in result.output


def test_spec_without_pretraining_level_is_rejected(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\njob = "rl"\n[grid]\n"rl.recipe" = ["grpo", "scalerl"]\n')
    store = tmp_path / "store"
    result = CliRunner().invoke(main, ["demo", "--spec", str(spec), "--store", str(store),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "pretrain" in result.output and "bad.toml" in result.output
    assert not store.exists() and not (tmp_path / "out").exists()


def test_summary_cells_say_when_a_fit_has_no_interval():
    from rlscale.demo import _cell

    assert _cell(0.2041, 0.1, 0.3, "A") == "0.204 [0.100,0.300]"
    assert _cell(0.2041, float("nan"), float("nan"), "A") == "0.204 [no interval]"
    assert _cell(float("nan"), float("nan"), float("nan"), "A") == "failed"


def _params(rows):
    """A level_params_frame of A only: (level, color, value, lower, upper, warnings)."""
    return pd.DataFrame([{"level": lv, "color": c, "param": "A", "value": v, "lower": lo,
                          "upper": hi, "ok": True, "warnings": w}
                         for lv, c, v, lo, hi, w in rows],
                        columns=["level", "color", "param", "value", "lower", "upper", "ok",
                                 "warnings"])


def test_finding_is_computed_from_the_fits():
    from rlscale.demo import finding

    rising = _params([(2, "grpo", 0.40, 0.38, 0.42, ""), (3, "grpo", 0.55, 0.53, 0.57, ""),
                      (4, "grpo", 0.81, 0.79, 0.83, "autocorrelated_residuals")])
    lines = finding(rising, level="pretrain_ops_max")
    assert lines[0] == ("grpo: the RL ceiling A rises from 0.40 [0.38, 0.42] to 0.81 [0.79, 0.83] "
                        "as pretrain_ops_max goes 2 -> 4; the extreme levels' 95% intervals do "
                        "not overlap.")
    assert lines[1] == "1 of 3 fits carry warnings (autocorrelated_residuals)."
    flat = _params([(2, "grpo", 0.50, 0.40, 0.60, ""), (4, "grpo", 0.45, 0.35, 0.55, "")])
    line = finding(flat, level="L")[0]
    assert "falls from 0.50" in line and "overlap, so these runs do not tell them apart" in line


def test_finding_states_the_passk_verdicts_per_difficulty():
    from types import SimpleNamespace

    from rlscale.demo import finding

    verdicts = pd.DataFrame({"difficulty": [2, 3, 4, 5, 6], "k_max": 64,
                             "verdict": ["sharpened", "sharpened", "expanded", "no_change",
                                         "no_change"]})
    lines = finding(_params([]), level="L", passk={4.0: SimpleNamespace(verdicts=verdicts)})
    assert lines[-1] == ("L = 4, verified pass@k (base -> RL): RL sharpened pass@1 without "
                         "expanding pass@64 at 2-3; RL expanded pass@64 at 4; no significant "
                         "change at 5-6 operations.")


def test_full_demo_task_has_no_guessing_floor():
    from rlscale.rl.chance import chance_levels
    from rlscale.rl.config import JobConfig

    jobs = resolve_jobs(load_spec(spec_path()))
    config = JobConfig.from_dict(jobs[0].config)
    assert config.task.reward == "verified"
    levels = chance_levels(config.task, range(config.eval.ops_min, config.eval.ops_max + 1),
                           problems=2000, verified=True)
    assert max(c.reward for c in levels) <= 0.02
    assert all(j.config["task"] == jobs[0].config["task"] for j in jobs)
