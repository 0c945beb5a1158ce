"""Offline Vega machinery: the inlined JavaScript bundle, HTML embedding and image export.

Everything here works without a network: the Vega, Vega-Lite and vega-embed libraries come from
the ``vl-convert-python`` package (which ships them compiled in), are inlined into the HTML, and
image export runs in vl-convert's embedded JavaScript engine with remote loading switched off.
``vl_convert`` and ``altair`` are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import functools
import html
import json
from typing import Any

VL_CONVERT_PIP = "pip install 'vl-convert-python>=1.3'"

# vega-embed's action menu may link to the online Vega editor; keep only the offline exports.
EMBED_OPTIONS: dict[str, Any] = {
    "renderer": "svg",
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}


def vl_convert() -> Any:
    """Import and return the ``vl_convert`` module, or explain how to install it."""
    try:
        import vl_convert as vlc
    except ImportError as exc:  # pragma: no cover - exercised only without the package
        msg = (
            "exporting charts to PNG, SVG or offline HTML needs the vl-convert-python package; "
            f"install it with: {VL_CONVERT_PIP}"
        )
        raise ImportError(msg) from exc
    return vlc


def vegalite_version() -> str | None:
    """The Vega-Lite version (``"v6.4"``) matching altair's schema, if vl-convert bundles it."""
    import altair as alt

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return f"v{major_minor}" if major_minor in vl_convert().get_vegalite_versions() else None


@functools.lru_cache(maxsize=1)
def javascript_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one script that defines ``window.vegaEmbed`` (~0.9 MB)."""
    return vl_convert().javascript_bundle(vl_version=vegalite_version())


def script_json(value: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` element (no ``</script>`` can close it)."""
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def embed_call(element_id: str, spec: dict[str, Any]) -> str:
    """JavaScript that renders ``spec`` into ``#element_id`` and records the outcome on the element.

    On success the element gets ``data-rendered="1"``; on failure ``data-error`` holds the message
    and the error is shown in the page, so a broken chart is never silently blank.
    """
    target = script_json(f"#{element_id}")
    return (
        f"vegaEmbed({target}, {script_json(spec)}, {script_json(EMBED_OPTIONS)})"
        f".then(function () {{ document.getElementById({script_json(element_id)})"
        ".setAttribute('data-rendered', '1'); })"
        f".catch(function (err) {{ var el = document.getElementById({script_json(element_id)});"
        " el.setAttribute('data-error', String(err)); el.textContent = 'chart failed: ' + err; });"
    )


def standalone_html(spec: dict[str, Any], *, title: str = "rlscale chart") -> str:
    """A self-contained HTML page showing one Vega-Lite spec, with every library inlined."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>\n"
        f"<script>{javascript_bundle()}</script></head>\n"
        "<body><div id=\"chart\" data-chart></div>\n"
        f"<script>{embed_call('chart', spec)}</script>\n</body></html>\n"
    )


def to_png(spec: dict[str, Any], *, scale: float = 2.0) -> bytes:
    """Render a Vega-Lite spec to PNG bytes (``scale`` multiplies the pixel size)."""
    vlc = vl_convert()
    return vlc.vegalite_to_png(spec, vl_version=vegalite_version(), scale=scale,
                               allowed_base_urls=[])


def to_svg(spec: dict[str, Any]) -> str:
    """Render a Vega-Lite spec to an SVG document."""
    vlc = vl_convert()
    return vlc.vegalite_to_svg(spec, vl_version=vegalite_version(), allowed_base_urls=[])
