"""The HTML report: its content, that it names no other host, and that it renders offline."""

from __future__ import annotations

import html
import re

import pytest
from click.testing import CliRunner

import _chromium
import _sim
from rlscale.cli import main
from rlscale.plot.report import build_report, report_from_store, write_report
from rlscale.store import RunMeta, Store, load_points

needs_chromium = pytest.mark.skipif(_chromium.find_chromium() is None,
                                    reason="no Chromium installed (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return _sim.make_store(tmp_path_factory.mktemp("s") / "store").root


@pytest.fixture(scope="module")
def report(store):
    return report_from_store(store, metric="reward", budgets=[2e4, 1e5], burn_in=100,
                             backtest_cut=0.5)


@pytest.fixture(scope="module")
def report_file(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("r") / "report.html"
    path.write_text(report, encoding="utf-8")
    return path


def section(html: str, key: str) -> str:
    return re.search(rf'<section id="{key}">(.*?)</section>', html, re.S).group(1)


def test_report_has_fits_forecasts_backtest_and_provenance(report, store):
    from rlscale.fit import fit

    points = load_points(store, metric="reward", with_meta=True)
    fits = fit(points, metric="reward", x="gpu_hours", by=["recipe"], burn_in=100)
    fits_html = section(report, "fits")
    for f in fits:
        a = f.params["A"]
        assert f"{a.value:.4g} [{a.lower:.4g}, {a.upper:.4g}]" in fits_html
    from rlscale.forecast.verdict import verdicts
    for v in verdicts(fits):  # one verdict line per group, the one `rlscale fit` prints
        assert f"<li>{html.escape(v.text())}</li>" in fits_html
    assert "autocorrelated_residuals" in section(report, "warnings")
    forecasts = section(report, "forecasts")
    assert forecasts.count("<td class=\"num\">2e+04</td>") == 2
    assert forecasts.count("<td class=\"num\">1e+05</td>") == 2
    assert "P(best)" in forecasts and "90%" in forecasts
    backtest = section(report, "backtest")
    assert "<td>overall</td>" in backtest and 'data-chart' in backtest
    data = section(report, "data")
    assert str(store) in data and "burn_in" in data
    assert data.count("csv sim/") == 8  # every run with its source
    assert report.count("data-chart") == 5  # raw, curves, params, residuals, backtest


def test_report_refers_to_no_other_host(report):
    # the inlined libraries mention URLs in strings (namespaces, docs), but nothing loads them:
    # no element attribute, stylesheet or import points anywhere but inside the page
    assert not re.search(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""",
                         report, re.I)
    assert not re.search(r"<(?:link|iframe|object|embed|base)\b", report, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", report, re.I)
    markup = re.sub(r"<script>.*?</script>", "", report, flags=re.S)
    assert re.findall(r'href="([^"]*)"', markup) == [
        "#fits", "#warnings", "#forecasts", "#charts", "#backtest", "#data"]


@needs_chromium
@pytest.mark.chromium
def test_report_renders_every_chart_offline_in_chromium(report_file):
    page = _chromium.chart_states(report_file.as_uri())
    assert page.external_requests() == []
    assert page.exceptions == []
    assert len(page.value) == 5
    for state in page.value:
        assert state["rendered"] == "1" and state["error"] is None, state
        assert state["marks"] > 50 and state["svg_width"] > 300, state


@needs_chromium
@pytest.mark.chromium
def test_chromium_check_catches_requests_and_broken_charts(report_file, tmp_path):
    """The render check must be able to fail: a remote image and a bad spec are both caught."""
    html = report_file.read_text(encoding="utf-8")
    bad = html.replace("<h1>", '<img src="https://example.invalid/x.png"><h1>', 1)
    bad = bad.replace('"mark": {"type": "rule"', '"mark": {"type": "no-such-mark"', 1)
    assert bad.count("no-such-mark") == 1
    path = tmp_path / "bad.html"
    path.write_text(bad, encoding="utf-8")
    page = _chromium.chart_states(path.as_uri())
    assert page.external_requests() == ["https://example.invalid/x.png"]
    errors = [s["error"] for s in page.value if s["error"]]
    assert len(errors) == 1  # the chart with the unknown mark, and only it
    assert sum(s["rendered"] == "1" for s in page.value) == 4


def test_report_escapes_names_from_the_data(tmp_path):
    pts = _sim.make_store(tmp_path / "s", pretrain=(1e9,), seeds=(0,))
    points = load_points(pts, with_meta=True)
    st = Store(tmp_path / "evil")
    for run_id, df in points.groupby("run_id"):
        recipe = "<script>alert(1)</script>" if run_id.startswith("grpo") else "ok&co"
        st.write_run(RunMeta(run_id=run_id, recipe=recipe), df[["step", "metric", "value",
                                                                 "gpu_hours"]])
    html = report_from_store(st.root, metric="reward", backtest_cut=None)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\\u003cscript\\u003ealert(1)" in html  # inside chart specs
    assert "ok&amp;co" in html and "No backtest was run." in html


def test_build_report_from_fits_alone_and_write_report(store, tmp_path):
    from rlscale.fit import fit

    points = load_points(store, with_meta=True)
    fits = fit(points, metric="reward", x="flops", by=["recipe"])
    out = write_report(tmp_path / "out" / "r.html", fits, title="flops & more")
    html = out.read_text(encoding="utf-8")
    assert "<title>flops &amp; more</title>" in html
    assert "No budgets given" in html and "No backtest was run." in html
    assert html.count("data-chart") == 3  # no points: curves, params, residuals
    assert not list(out.parent.glob(".*tmp"))
    with pytest.raises(ValueError, match="no fits"):
        build_report([])


# -- CLI -------------------------------------------------------------------------------------
def test_cli_report_writes_offline_html(store, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--store", str(store), "--metric", "reward",
                                       "--budget", "2e4,5e4", "--budget", "1e5",
                                       "--facet", "pretrain_tokens", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"to {out}" in result.output
    html = out.read_text(encoding="utf-8")
    forecasts = section(html, "forecasts")
    for budget in ("2e+04", "5e+04", "1e+05"):
        assert forecasts.count(f'<td class="num">{budget}</td>') == 4  # 2 recipes x 2 facets
    assert "pretrain_tokens = 4e9" in html


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--metric", "loss"], 1, "no points for metric 'loss'"),
        (["--metric", "reward", "--budget", "2e4,abc"], 2, "'abc' is not a number"),
        (["--metric", "reward", "--budget", "-5"], 2, "not a positive compute value"),
        (["--metric", "reward", "--law", "all"], 2, "charts draw one law"),
    ],
)
def test_cli_report_bad_input(store, tmp_path, args, code, needle):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", "--store", str(store), *args, "--out", str(out)])
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert not out.exists()


def test_cli_report_empty_store(tmp_path):
    result = CliRunner().invoke(main, ["report", "--store", str(tmp_path / "none"),
                                       "--metric", "reward", "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "no runs in store" in result.output
