"""Charts: their data, their Vega-Lite validity, and real PNG/SVG/HTML exports."""

from __future__ import annotations

import json
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import _chromium
import _sim
from rlscale import plot
from rlscale.errors import InputError
from rlscale.store import load_points

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    return load_points(_sim.make_store(tmp_path_factory.mktemp("s") / "store"), with_meta=True)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def validate_vegalite(spec: dict) -> None:
    """jsonschema against the Vega-Lite schema altair bundles (independent of to_dict)."""
    import altair as alt
    import jsonschema

    path = Path(alt.__file__).parent / "vegalite/v6/schema/vega-lite-schema.json"
    schema = json.loads(path.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(spec)


def layer_data(spec: dict) -> list[dict]:
    data = spec.get("data") or spec["layer"][0].get("data") or {}
    return data["values"]


# -- raw curves ------------------------------------------------------------------------------
def test_raw_curves_carry_every_point_labelled_by_group(points):
    chart = plot.raw_curves_chart(points, metric="reward", x="gpu_hours", by=["recipe"])
    spec = plot.to_spec(chart)
    rows = layer_data(spec)
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
    rows = spec["data"]["values"]
    assert {r["facet"] for r in rows} == {"pretrain_tokens = 1e9", "pretrain_tokens = 4e9"}
    assert "recipe=grpo, seed=1" in {r["series"] for r in rows}
    validate_vegalite(spec)


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
