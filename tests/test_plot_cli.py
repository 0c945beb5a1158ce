"""`rlscale plot`: every kind, formats, options reaching the fit, and bad input."""

from __future__ import annotations

import json

import click
import pytest

import _sim
from _charts import data_of, png_size, validate_vegalite
from rlscale.store import load_points


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    return _sim.make_store(tmp_path_factory.mktemp("cli") / "store").root


def run_plot(store_root, *args):
    from click.testing import CliRunner

    from rlscale.cli import main

    return CliRunner().invoke(main, ["plot", "--store", str(store_root), *args])


@pytest.mark.parametrize(
    ("kind", "extra", "layers"),
    [
        ("curves", ["--burn-in", "100", "--extrapolate-to", "1e6"],
         {"fit", "extrapolation", "asymptote", "midpoint", "observed-used", "observed-excluded"}),
        ("raw", [], set()),
        ("params", [], set()),
        ("residuals", ["--facet", "pretrain_tokens"], set()),
        ("backtest", ["--cut", "0.6"], {"fit", "extrapolation", "cut", "observed-heldout"}),
    ],
)
def test_cli_plot_kinds_write_valid_specs(store_root, tmp_path, kind, extra, layers):
    out = tmp_path / f"{kind}.json"
    result = run_plot(store_root, "--metric", "reward", "--kind", kind, *extra, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {kind} chart of reward against gpu_hours to {out}" in result.output
    spec = json.loads(out.read_text())
    validate_vegalite(spec)
    rows = data_of(spec)
    assert layers <= {r.get("layer") for r in rows}
    if kind == "params":
        assert {r["param"] for r in rows} == {"A", "B", "C_mid"}
    if kind == "curves":
        assert max(r["x"] for r in rows if r.get("layer") == "extrapolation") == 1e6


def test_cli_plot_png(store_root, tmp_path):
    out = tmp_path / "img" / "curves.png"
    result = run_plot(store_root, "--metric", "reward", "--facet", "pretrain_tokens",
                      "--scale", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    width, height = png_size(out.read_bytes())
    assert width > 2 * 300 and height > 220


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--metric", "loss", "--out", "x.png"], 2, "no points for metric 'loss'"),
        (["--metric", "reward", "--out", "x.pdf"], 1, "cannot save a chart as '.pdf'"),
        (["--metric", "reward", "--law", "all", "--out", "x.png"], 2, "charts draw one law"),
        (["--metric", "reward", "--by", "lr", "--kind", "raw", "--out", "x.png"], 1,
         "no column 'lr' to group by"),
        (["--metric", "reward", "--kind", "pie", "--out", "x.png"], 2, "'pie' is not one of"),
    ],
)
def test_cli_plot_bad_input(store_root, tmp_path, monkeypatch, args, code, needle):
    monkeypatch.chdir(tmp_path)
    result = run_plot(store_root, *args)
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert list(tmp_path.iterdir()) == []


def test_every_command_option_has_help():
    from rlscale.cli.plot import COMMANDS

    for command in COMMANDS:
        assert "Example" in command.help
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (command.name, param.name)


def test_cli_plot_passes_every_fit_option(store_root, tmp_path):
    """Options copied from `rlscale fit` must reach the fit, not be parsed and dropped."""
    from rlscale.fit import fit

    out = tmp_path / "p.json"
    args = ["--metric", "reward", "--kind", "params", "--interval", "profile", "--r0", "0.3",
            "--out", str(out)]
    assert run_plot(store_root, *args).exit_code == 0
    rows = {(r["label"], r["param"]): r for r in data_of(json.loads(out.read_text()))}
    points = load_points(store_root, with_meta=True)
    [want] = [f for f in fit(points, metric="reward", x="gpu_hours", by=["recipe"],
                             interval="profile", r0=0.3) if f.group["recipe"] == "grpo"]
    got = rows[("grpo", "A")]
    assert (got["lower"], got["upper"]) == pytest.approx((want.params["A"].lower,
                                                          want.params["A"].upper))
    assert rows[("grpo", "B")]["vary"] is True and want.params["R0"].vary is False


def test_cli_plot_groups_that_cannot_be_fitted(tmp_path):
    """A run with compute on only two points: curves still draw its points and warn; params
    says why there is nothing to show."""
    import numpy as np
    import pandas as pd

    from rlscale.store import RunMeta, Store

    st = Store(tmp_path / "store")
    flops = np.full(30, np.nan)
    flops[[10, 29]] = [1e15, 3e15]
    st.write_run(RunMeta(run_id="sparse"), pd.DataFrame(
        {"step": np.arange(30), "metric": "reward", "value": np.linspace(0.1, 0.5, 30),
         "flops": flops}))
    out = tmp_path / "c.json"
    result = run_plot(st.root, "--metric", "reward", "--x", "flops", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "warning: sparse not fitted (" in result.output
    rows = data_of(json.loads(out.read_text()))
    assert [r["layer"] for r in rows] == ["observed-used"] * 2
    result = run_plot(st.root, "--metric", "reward", "--x", "flops", "--kind", "params",
                      "--out", str(tmp_path / "p.png"))
    assert result.exit_code == 1
    assert "none of the 1 fits succeeded (sparse: " in result.output
