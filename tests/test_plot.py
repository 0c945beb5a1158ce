"""Charts: their data, their Vega-Lite validity, and real PNG/SVG/HTML exports."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET

import pytest

import _chromium
import _sim
from _charts import SVG_NS, data_of, png_size, validate_vegalite
from rlscale.plot import charts as plot
from rlscale.text import series_label as group_label
from rlscale.errors import InputError
from rlscale.store import load_points


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    return load_points(_sim.make_store(tmp_path_factory.mktemp("s") / "store"), with_meta=True)


# -- raw curves ------------------------------------------------------------------------------
def test_raw_curves_carry_every_point_labelled_by_group(points):
    chart = plot.raw_curves_chart(points, metric="reward", x="gpu_hours", by=["recipe"])
    spec = plot.to_spec(chart)
    rows = data_of(spec)
    assert len(rows) == len(points[points["metric"] == "reward"]) == 8 * 30
    assert {r["series"] for r in rows} == {"grpo", "cispo"}
    assert {r["run_id"] for r in rows} == set(points["run_id"])
    first = min((r for r in rows if r["run_id"] == "grpo-p1e09-s0"), key=lambda r: r["step"])
    assert first["x"] == pytest.approx(50.0)
    x_enc = spec["layer"][0]["encoding"]["x"]
    assert x_enc["scale"]["type"] == "log"
    assert x_enc["title"] == "gpu_hours (log scale)"
    validate_vegalite(spec)


def test_raw_curves_facet_and_multi_key_labels(points):
    chart = plot.raw_curves_chart(points, metric="reward", x="flops", by=["recipe", "seed"],
                                  facet="pretrain_tokens")
    spec = plot.to_spec(chart)
    assert spec["facet"]["field"] == "facet"
    rows = data_of(spec)
    assert {r["facet"] for r in rows} == {"pretrain_tokens = 1e9", "pretrain_tokens = 4e9"}
    assert "recipe=grpo, seed=1" in {r["series"] for r in rows}
    validate_vegalite(spec)


def test_raw_curves_take_more_than_altairs_5000_rows():
    import numpy as np
    import pandas as pd

    n = 6000
    big = pd.DataFrame({"run_id": np.repeat(["a", "b", "c"], n // 3), "step": np.arange(n),
                        "metric": "reward", "value": np.linspace(0, 1, n),
                        "gpu_hours": np.tile(np.geomspace(1, 1e4, n // 3), 3),
                        "recipe": np.repeat(["x", "y", "z"], n // 3)})
    spec = plot.to_spec(plot.raw_curves_chart(big, metric="reward", x="gpu_hours"))
    assert len(data_of(spec)) == n


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"metric": "loss"}, "no points for metric 'loss'"),
        ({"metric": "reward", "x": "tokens"}, "no positive values on compute axis 'tokens'"),
        ({"metric": "reward", "by": ["lr"]}, "no column 'lr' to group by"),
        ({"metric": "reward", "x": "steps"}, "no column 'steps'"),
    ],
)
def test_raw_curves_bad_input_names_what_is_wrong(points, kwargs, needle):
    with pytest.raises(InputError, match=needle) as info:
        plot.raw_curves_chart(points, **kwargs)
    assert "expected" in str(info.value)


# -- save ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def raw_chart(points):
    return plot.raw_curves_chart(points, metric="reward", x="gpu_hours")


def test_save_png_is_a_real_image_of_sensible_size(raw_chart, tmp_path):
    out = plot.save(raw_chart, tmp_path / "sub" / "curves.png", scale=1)
    width, height = png_size(out.read_bytes())
    assert 550 <= width <= 800 and 350 <= height <= 500, (width, height)
    width2, height2 = png_size(plot.save(raw_chart, tmp_path / "c2.png", scale=2).read_bytes())
    assert (width2, height2) == (2 * width, 2 * height)


def test_save_svg_parses_with_marks_and_titles(raw_chart, tmp_path):
    root = ET.parse(plot.save(raw_chart, tmp_path / "curves.svg")).getroot()
    assert root.tag == f"{SVG_NS}svg"
    assert float(root.get("width")) > 500
    paths = root.iter(f"{SVG_NS}path")
    assert sum(1 for _ in paths) >= 8 * 30  # a symbol per point, at least
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    assert {"reward", "gpu_hours (log scale)", "grpo", "cispo"} <= texts


def test_save_json_is_a_valid_vegalite_spec(raw_chart, tmp_path):
    spec = json.loads(plot.save(raw_chart, tmp_path / "curves.json").read_text())
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")
    validate_vegalite(spec)
    broken = dict(spec, mark="no-such-mark")
    with pytest.raises(Exception, match="no-such-mark"):
        validate_vegalite(broken)


def test_save_rejects_unknown_suffix(raw_chart, tmp_path):
    with pytest.raises(InputError, match=r"'\.pdf'.*\.html.*\.png.*\.svg.*\.json"):
        plot.save(raw_chart, tmp_path / "curves.pdf")
    assert not (tmp_path / "curves.pdf").exists()


def test_save_image_without_vl_convert_says_how_to_install(raw_chart, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vl_convert", None)
    with pytest.raises(ImportError, match=r"pip install 'vl-convert-python>=1\.3'"):
        plot.save(raw_chart, tmp_path / "curves.png")


def test_save_html_has_no_external_reference(raw_chart, tmp_path):
    text = plot.save(raw_chart, tmp_path / "curves.html").read_text()
    assert "<script src" not in text and "<link" not in text
    assert "vegaEmbed(" in text


@pytest.mark.chromium
def test_save_html_renders_offline_in_chromium(raw_chart, tmp_path):
    if _chromium.find_chromium() is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    out = plot.save(raw_chart, tmp_path / "curves.html")
    page = _chromium.chart_states(out.as_uri())
    assert page.external_requests() == []
    assert page.exceptions == []
    [state] = page.value
    assert state["rendered"] == "1" and state["error"] is None
    assert state["marks"] >= 8 * 30 and state["svg_width"] > 500


# -- fitted views ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fits(points):
    from rlscale.fit import fit

    return fit(points, metric="reward", x="gpu_hours", by=["recipe"], burn_in=100, max_x=6000)


def rows_of(spec: dict, layer: str) -> list[dict]:
    return [r for r in data_of(spec) if r.get("layer") == layer]


def test_curves_chart_draws_window_solid_extrapolation_dashed(points, fits):
    spec = plot.to_spec(plot.curves_chart(fits, points=points))
    validate_vegalite(spec)
    for f in fits:
        label = f.group["recipe"]
        fit_rows = [r for r in rows_of(spec, "fit") if r["series"] == label]
        ext_rows = [r for r in rows_of(spec, "extrapolation") if r["series"] == label]
        xs = [r["x"] for r in fit_rows]
        assert min(xs) == pytest.approx(f.data["x"].min()) and min(xs) >= 100
        assert max(xs) == pytest.approx(f.data["x"].max()) and max(xs) <= 6000
        # dashed part runs from the window's end to 10x the largest compute in the store
        assert min(r["x"] for r in ext_rows) == pytest.approx(max(xs))
        assert max(r["x"] for r in ext_rows) == pytest.approx(10 * 12000)
        mid = fit_rows[len(fit_rows) // 2]
        pred = f.predict([mid["x"]])
        assert mid["y"] == pytest.approx(pred["mean"][0])
        assert mid["lower"] == pytest.approx(pred["mean_lower"][0])
        assert all(r["lower"] <= r["y"] <= r["upper"] for r in fit_rows + ext_rows)
        [rule] = [r for r in rows_of(spec, "asymptote") if r["series"] == label]
        assert rule["y"] == pytest.approx(f.params["A"].value)
        [diamond] = [r for r in rows_of(spec, "midpoint") if r["series"] == label]
        assert diamond["x"] == pytest.approx(f.params["C_mid"].value)
    marks = {json.dumps(layer["transform"][0]["filter"]["oneOf"]): layer["mark"]
             for layer in spec["layer"]}
    assert marks['["extrapolation"]']["strokeDash"] == [6, 4]
    assert "strokeDash" not in marks['["fit"]']
    assert marks['["asymptote"]']["type"] == "rule"
    # points below the burn-in or past max_x are drawn, but hollow
    excluded = rows_of(spec, "observed-excluded")
    store_rows = points[points["metric"] == "reward"]
    n_out = int(((store_rows["gpu_hours"] < 100) | (store_rows["gpu_hours"] > 6000)).sum())
    assert len(excluded) == n_out > 0
    assert len(rows_of(spec, "observed-used")) == sum(f.n_points for f in fits)


def test_curves_chart_extrapolate_to_and_prediction_band(fits):
    spec = plot.to_spec(plot.curves_chart(fits, extrapolate_to=1e6, band="prediction"))
    assert max(r["x"] for r in rows_of(spec, "extrapolation")) == pytest.approx(1e6)
    f = fits[0]
    row = next(r for r in rows_of(spec, "fit") if r["series"] == f.group["recipe"])
    at = f.predict([row["x"]])
    # the prediction interval is Monte Carlo (seeded per call), so equal up to sampling noise
    assert row["upper"] == pytest.approx(at["pred_upper"][0], abs=2e-3)
    assert row["upper"] - at["mean_upper"][0] > f.resid_sd  # wider than the curve's band
    assert rows_of(spec, "observed-excluded") == []  # without points only the fitted data
    with pytest.raises(InputError, match="extrapolate_to"):
        plot.curves_chart(fits, extrapolate_to=-1)


def test_curves_chart_facets_by_metadata(points):
    from rlscale.fit import fit

    fits2 = fit(points, metric="reward", x="gpu_hours", by=["recipe", "pretrain_tokens"])
    spec = plot.to_spec(plot.curves_chart(fits2, points=points, facet="pretrain_tokens"))
    validate_vegalite(spec)
    assert spec["facet"]["field"] == "facet"
    rows = data_of(spec)
    assert {r["series"] for r in rows} == {"grpo", "cispo"}
    assert {r["facet"] for r in rows} == {"pretrain_tokens = 1e9", "pretrain_tokens = 4e9"}
    a = {(r["series"], r["facet"]): r["y"] for r in rows if r["layer"] == "asymptote"}
    # the simulated runs with 4e9 pretraining tokens have a 0.05 higher ceiling
    for recipe in ("grpo", "cispo"):
        gain = a[(recipe, "pretrain_tokens = 4e9")] - a[(recipe, "pretrain_tokens = 1e9")]
        assert gain == pytest.approx(0.05, abs=0.03)
    with pytest.raises(InputError, match="no key 'seed' to facet on"):
        plot.curves_chart(fits2, facet="seed")


def test_charts_refuse_mixed_laws(points):
    from rlscale.fit import fit

    mixed = fit(points, metric="reward", x="gpu_hours", by=["recipe"], law="all")
    with pytest.raises(ValueError, match="plot one metric, axis and law at a time"):
        plot.curves_chart(mixed)


def test_params_chart_sorted_by_ceiling_with_intervals(points):
    from rlscale.fit import fit

    fits2 = fit(points, metric="reward", x="gpu_hours", by=["recipe", "pretrain_tokens"],
                r0=0.3)
    spec = plot.to_spec(plot.params_chart(fits2, params=["A", "B", "C_mid", "R0"]))
    validate_vegalite(spec)
    rows = data_of(spec)
    a_rows = [r for r in rows if r["param"] == "A"]
    assert [r["value"] for r in a_rows] == sorted((r["value"] for r in a_rows), reverse=True)
    assert a_rows[0]["label"] == "recipe=cispo, pretrain_tokens=4e9"  # highest simulated A
    by_label = {label_of(f): f for f in fits2}
    for r in rows:
        est = by_label[r["label"]].params[r["param"]]
        assert (r["value"], r["lower"], r["upper"]) == pytest.approx(
            (est.value, est.lower, est.upper))
    assert {r["vary"] for r in rows if r["param"] == "R0"} == {False}
    panels = spec["hconcat"]
    assert [p["layer"][0]["encoding"]["x"]["title"].split()[0] for p in panels] == [
        "A", "B", "C_mid", "R0"]
    assert panels[2]["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"


def label_of(fit) -> str:
    return group_label(fit.group)


def test_residuals_are_observed_minus_fitted(fits):
    spec = plot.to_spec(plot.residuals_chart(fits))
    validate_vegalite(spec)
    rows = data_of(spec)
    assert len(rows) == sum(f.n_points for f in fits)
    f = fits[0]
    mine = [r for r in rows if r["series"] == f.group["recipe"]]
    fitted = f.predict([r["x"] for r in mine])["mean"].to_numpy()
    assert [r["residual"] for r in mine] == pytest.approx(
        [r["y"] - m for r, m in zip(mine, fitted)])
    assert [r["y"] for r in mine] == pytest.approx(f.data["y"].tolist())


def test_backtest_chart_shows_cut_and_held_out_points(points):
    from rlscale.forecast.backtest import backtest

    bt = backtest(points, metric="reward", x="gpu_hours", by=["recipe"], cut=0.4)
    spec = plot.to_spec(plot.backtest_chart(bt))
    validate_vegalite(spec)
    cuts = rows_of(spec, "cut")
    assert sorted(r["series"] for r in cuts) == ["cispo", "grpo"]
    assert all(r["x"] == pytest.approx(0.4 * 12000) for r in cuts)
    held = rows_of(spec, "observed-heldout")
    assert len(held) == len(bt.points) > 0
    assert all(r["x"] > 0.4 * 12000 for r in held)
    assert sum(not r["covered"] for r in held) == int((~bt.points["covered"]).sum())
    overall = bt.summary[bt.summary["group"] == "overall"].iloc[0]
    assert f"{100 * overall['coverage']:.0f}% inside the interval" in " ".join(
        spec["title"]["subtitle"])


def test_curves_png_and_svg_export(points, fits, tmp_path):
    chart = plot.curves_chart(fits, points=points)
    width, height = png_size(plot.save(chart, tmp_path / "c.png").read_bytes())
    assert 1100 <= width <= 1600 and 700 <= height <= 1000, (width, height)
    root = ET.parse(plot.save(chart, tmp_path / "c.svg")).getroot()
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    assert {"reward", "gpu_hours (log scale)", "recipe", "grpo", "cispo"} <= texts


def test_runs_without_recipe_are_their_own_group_with_their_excluded_points(points):
    from rlscale.fit import fit

    two = points[points["run_id"].isin(["grpo-p1e09-s0", "cispo-p1e09-s0"])].copy()
    two["recipe"] = None
    fits2 = fit(two, metric="reward", x="gpu_hours", by=["recipe"], burn_in=100)
    assert sorted(f.group["recipe"] for f in fits2) == ["cispo-p1e09-s0", "grpo-p1e09-s0"]
    rows = data_of(plot.to_spec(plot.curves_chart(fits2, points=two)))
    below = int((two["gpu_hours"] < 100).sum()) // 2
    for f in fits2:
        mine = [r for r in rows if r["series"] == f.group["recipe"]]
        assert sum(r["layer"] == "observed-excluded" for r in mine) == below > 0
        assert sum(r["layer"] == "observed-used" for r in mine) == f.n_points


def test_curves_chart_leaves_compute_zero_off_the_log_axis():
    """An RL run's step-0 evaluation sits at compute 0: fitted, but not drawable on a log axis."""
    import numpy as np
    import pandas as pd

    from rlscale.fit import fit

    x = np.concatenate([[0.0], np.geomspace(1e3, 1e6, 15)])
    y = 0.2 + 0.5 / (1 + (3e4 / np.maximum(x, 1e-9)) ** 1.2)
    pts = pd.DataFrame({"run_id": "r", "recipe": "grpo", "metric": "m", "step": range(16),
                        "flops": x, "value": y})
    res = fit(pts, metric="m", x="flops", by="recipe", r0="first")
    [f] = res if isinstance(res, list) else [res]
    spec = plot.to_spec(plot.curves_chart([f], points=pts))
    validate_vegalite(spec)
    rows = spec["datasets"][next(iter(spec["datasets"]))]
    assert rows and all(r["x"] > 0 for r in rows if r.get("x") is not None)
    assert len(rows_of(spec, "observed-used")) == f.n_points - 1 == 15
