"""Checks shared by the chart tests: PNG header, Vega-Lite schema, chart data."""

from __future__ import annotations

import json
import struct
from pathlib import Path

SVG_NS = "{http://www.w3.org/2000/svg}"


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


def data_of(spec: dict) -> list[dict]:
    """The chart's rows: altair moves inline data to the top-level ``datasets``."""
    return spec["datasets"][spec["data"]["name"]]
