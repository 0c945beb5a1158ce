"""Altair charts of reward curves and fits. Every function returns a chart and never writes a file.

Charts are values: compose them with ``+``, ``|`` and ``&``, show them in a notebook, or write
them with :func:`save`, which picks the format from the file suffix (``.html`` offline page,
``.png``/``.svg`` image, ``.json`` Vega-Lite spec). Data is inlined as plain records, so charts
never hit altair's 5000-row limit and render without any network access.

Colour is the group (``--by``, e.g. the recipe); ``facet`` splits panels by any metadata key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence, Union

import pandas as pd

from rlscale.errors import input_error
from rlscale.plot import frames as D
from rlscale.plot import vega
from rlscale.text import records

if TYPE_CHECKING:
    import altair as alt

    Chart = Union[alt.Chart, alt.LayerChart, alt.FacetChart, alt.HConcatChart, alt.VConcatChart]
else:
    Chart = Any

SAVE_FORMATS: tuple[str, ...] = (".html", ".png", ".svg", ".json")
WIDTH = 520
HEIGHT = 320


# -- shared encodings --------------------------------------------------------------------------
def _alt() -> Any:
    import altair as alt

    return alt


def _inline(frame: pd.DataFrame) -> dict[str, Any]:
    """Data as a plain ``{"values": records}`` dict: altair moves it to the spec's top-level
    ``datasets`` without running the schema validator over every row (a 40k-point chart
    validates in well under a second) and without its 5000-row limit."""
    return {"values": records(frame)}


def _series_scale(series: Iterable[str]) -> Any:
    """One colour per group label, the same in every chart built from the same groups."""
    domain = sorted(set(series))
    scheme = "tableau10" if len(domain) <= 10 else "tableau20"
    return _alt().Scale(domain=domain, scheme=scheme)


def _color(series: Iterable[str], title: str) -> Any:
    alt = _alt()
    return alt.Color("series:N", title=title, scale=_series_scale(series),
                     legend=alt.Legend(symbolOpacity=1, symbolType="circle", labelLimit=300))


def _x_log(x: str, field: str = "x") -> Any:
    alt = _alt()
    return alt.X(f"{field}:Q", title=f"{x} (log scale)",
                 scale=alt.Scale(type="log", nice=False, zero=False),
                 axis=alt.Axis(format="~s", grid=True))


def _size(facet: str | None) -> dict[str, int]:
    return {"width": WIDTH, "height": HEIGHT} if facet is None else {"width": 300, "height": 220}


def _facet(chart: Any, facet: str | None, *, columns: int = 3) -> Any:
    if facet is None:
        return chart
    alt = _alt()
    return chart.facet(facet=alt.Facet("facet:N", title=None), columns=columns)


def _by_title(by: Sequence[str]) -> str:
    return " / ".join(by) or "group"


# -- raw curves --------------------------------------------------------------------------------
def raw_curves_chart(
    points: pd.DataFrame,
    *,
    metric: str,
    x: str = "flops",
    by: Sequence[str] = ("recipe",),
    facet: str | None = None,
) -> Chart:
    """Observed ``metric`` against compute ``x`` (log axis), one line per run, coloured by group.

    ``points``: long points frame with metadata columns (``load_points(store, with_meta=True)``).
    ``by``: columns whose values name a group (colour); ``facet``: a column that splits panels.
    """
    alt = _alt()
    frame = D.points_frame(points, metric=metric, x=x, by=by, facet=facet)
    base = alt.Chart(_inline(frame)).encode(
        x=_x_log(x),
        y=alt.Y("y:Q", title=metric, scale=alt.Scale(zero=False)),
        color=_color(frame["series"], _by_title(by)),
        detail="run_id:N",
        tooltip=["run_id:N", "series:N", "step:Q",
                 alt.Tooltip("x:Q", title=x, format=".3~s"),
                 alt.Tooltip("y:Q", title=metric, format=".4f")],
    )
    layer = alt.layer(base.mark_line(strokeWidth=1, opacity=0.6),
                      base.mark_circle(size=14, opacity=0.7)).properties(**_size(facet))
    title = alt.Title(f"{metric} against {x}", subtitle="observed points, one line per run")
    return _facet(layer, facet).properties(title=title)


# -- fitted curves -----------------------------------------------------------------------------
def curves_chart(
    fits: Sequence[Any],
    *,
    points: pd.DataFrame | None = None,
    facet: str | None = None,
    extrapolate_to: float | None = None,
    band: str = "mean",
    level: float | None = None,
) -> Chart:
    """Observed points and each group's fitted law against compute (log x axis).

    ``fits``: :class:`~rlscale.fit.FitResult` s of one metric and compute axis; colour is the
    group without ``facet``, which (a key of every fit's group) splits panels. ``points``: the
    store's long points (``load_points(store, with_meta=True)``); given, points the fit left out
    (burn-in, past ``max_x``) show as hollow circles. The curve is solid over the fitted window
    and dashed beyond it up to ``extrapolate_to`` (default 10x the largest compute seen), with
    its ``band`` interval (``mean``: the curve; ``prediction``: a new point) shaded; a dotted rule
    marks each asymptote A and a diamond each C_mid (compute at half the gain).
    """
    alt = _alt()
    fits = D.check_fits(fits, facet=facet)
    metric, x = fits[0].metric, fits[0].x
    observed = None
    if points is not None:
        observed = D.select_points(points, metric=metric, x=x).rename(
            columns={x: "x", "value": "y"})
    x_end = D.extrapolation_end(fits, observed, extrapolate_to=extrapolate_to)
    curves = D.curve_frame(fits, x_end=x_end, band=band, level=level, facet=facet)
    dots = D.fit_points_frame(fits, observed, facet=facet)
    frame = pd.concat([curves, dots.assign(layer="observed-" + dots["status"])],
                      ignore_index=True)
    by = [k for k in fits[0].group if k != facet]
    color = _color(frame["series"], _by_title(by))
    tip = ["series:N", alt.Tooltip("x:Q", title=x, format=".4~s"),
           alt.Tooltip("y:Q", title=metric, format=".4f")]
    base = alt.Chart().encode(color=color)

    def only(*layers: str) -> Any:
        return base.transform_filter(alt.FieldOneOfPredicate(field="layer", oneOf=list(layers)))

    y = alt.Y("y:Q", title=metric, scale=alt.Scale(zero=False))
    ci = alt.Tooltip("lower:Q", format=".4f"), alt.Tooltip("upper:Q", format=".4f")
    layers = [
        only("fit", "extrapolation").mark_area(opacity=0.15).encode(
            x=_x_log(x), y=alt.Y("lower:Q", title=metric), y2="upper:Q", detail="series:N"),
        only("observed-excluded").mark_point(size=18, opacity=0.45, filled=False).encode(
            x=_x_log(x), y=y, tooltip=["run_id:N", *tip]),
        only("observed-used").mark_circle(size=18, opacity=0.6).encode(
            x=_x_log(x), y=y, tooltip=["run_id:N", *tip]),
        only("fit").mark_line(strokeWidth=2.2).encode(x=_x_log(x), y=y, tooltip=[*tip, *ci]),
        only("extrapolation").mark_line(strokeWidth=2, strokeDash=[6, 4]).encode(
            x=_x_log(x), y=y, tooltip=[*tip, *ci]),
        only("asymptote").mark_rule(strokeDash=[2, 3], strokeWidth=1.5).encode(
            y=y, tooltip=["series:N", alt.Tooltip("y:Q", title="A", format=".4f"), *ci]),
        only("midpoint").mark_point(shape="diamond", filled=True, size=110, opacity=1,
                                    stroke="black", strokeWidth=0.8).encode(
            x=_x_log(x), y=y,
            tooltip=["series:N", alt.Tooltip("x:Q", title="C_mid", format=".4~s"),
                     alt.Tooltip("lower:Q", title="C_mid lower", format=".4~s"),
                     alt.Tooltip("upper:Q", title="C_mid upper", format=".4~s")]),
    ]
    level_pct = f"{100 * (level if level is not None else fits[0].level):g}%"
    chart = alt.layer(*layers, data=_inline(frame)).properties(**_size(facet))
    title = alt.Title(
        f"{metric} against {x}: {fits[0].law} fits",
        subtitle=[f"solid: fitted window; dashed: extrapolation; band: {level_pct} "
                  f"{'interval of the curve' if band == 'mean' else 'prediction interval'}",
                  "dotted rule: asymptote A; diamond: C_mid; hollow: points left out of the fit"],
    )
    return _facet(chart, facet).properties(title=title)


# -- parameters --------------------------------------------------------------------------------
_PARAM_TITLES = {"A": "A (asymptotic reward)", "B": "B (scaling exponent)",
                 "C_mid": "C_mid (compute at half the gain)", "R0": "R0 (reward before RL)"}


def params_chart(
    fits: Sequence[Any],
    *,
    params: Sequence[str] | None = None,
    facet: str | None = None,
) -> Chart:
    """Each group's fitted parameters (default A, B, C_mid) with their intervals, side by side.

    Groups are sorted by A (best ceiling on top) and share the y axis across panels, so recipes
    compare at a glance. C_mid (a compute) is on a log axis. Hollow points are fixed parameters.
    """
    alt = _alt()
    fits = D.successful(D.check_fits(fits, facet=facet))
    frame = D.params_frame(fits, params=params, facet=facet)
    order = list(dict.fromkeys(frame["label"]))
    color = alt.Color("series:N", scale=_series_scale(frame["series"]), legend=None)
    panels = []
    for name in dict.fromkeys(frame["param"]):
        log = name.startswith("C_") or name == "D"

        def xenc(field: str, name: str = name, log: bool = log) -> Any:
            return alt.X(f"{field}:Q", title=_PARAM_TITLES.get(name, name),
                         scale=alt.Scale(type="log" if log else "linear", zero=False),
                         axis=alt.Axis(format="~s" if log else "~g", labelOverlap="greedy",
                                       tickCount=5))

        base = alt.Chart().transform_filter(alt.datum.param == name).encode(
            y=alt.Y("label:N", sort=order, title=None,
                    axis=None if panels else alt.Axis(labelLimit=260)),
            color=color,
            tooltip=["label:N", "param:N", alt.Tooltip("value:Q", format=".4~g"),
                     alt.Tooltip("lower:Q", format=".4~g"),
                     alt.Tooltip("upper:Q", format=".4~g"), "vary:N"],
        )
        panels.append(alt.layer(
            base.mark_rule(strokeWidth=2).encode(x=xenc("lower"), x2="upper:Q"),
            base.mark_point(size=70, opacity=1).encode(
                x=xenc("value"), fill=alt.condition(
                    alt.datum.vary,
                    alt.Fill("series:N", scale=_series_scale(frame["series"]), legend=None),
                    alt.value("white"))),
        ).properties(width=180, height=max(60, 24 * len(order))))
    pct = f"{100 * fits[0].level:g}%"
    key = "A" if "A" in set(frame["param"]) else frame["param"].iloc[0]
    title = alt.Title(f"{fits[0].law} parameters of {fits[0].metric} against {fits[0].x}",
                      subtitle=f"point: best fit; bar: {pct} interval; sorted by {key}")
    return alt.hconcat(*panels, data=_inline(frame), spacing=12).properties(title=title)


# -- residuals ---------------------------------------------------------------------------------
def residuals_chart(fits: Sequence[Any], *, facet: str | None = None) -> Chart:
    """Observed minus fitted reward against compute, per group: structure here (a trend, a
    bend past the window) says the law or the window is wrong; a zero line for reference."""
    alt = _alt()
    fits = D.check_fits(fits, facet=facet)
    frame = D.residual_frame(fits, facet=facet)
    metric, x = fits[0].metric, fits[0].x
    color = _color(frame["series"], _by_title([k for k in fits[0].group if k != facet]))
    base = alt.Chart()
    chart = alt.layer(
        base.mark_rule(color="black", strokeDash=[3, 3]).encode(y=alt.datum(0)),
        base.mark_line(strokeWidth=0.8, opacity=0.5).encode(
            x=_x_log(x), y="residual:Q", color=color, detail="run_id:N"),
        base.mark_circle(size=18, opacity=0.7).encode(
            x=_x_log(x), y=alt.Y("residual:Q", title=f"{metric} residual (observed - fit)"),
            color=color,
            tooltip=["series:N", "run_id:N", alt.Tooltip("x:Q", title=x, format=".4~s"),
                     alt.Tooltip("y:Q", format=".4f"), alt.Tooltip("fitted:Q", format=".4f"),
                     alt.Tooltip("residual:Q", format="+.4f")]),
        data=_inline(frame),
    ).properties(**_size(facet))
    title = alt.Title(f"residuals of the {fits[0].law} fits of {metric}",
                      subtitle="one line per run; a pattern means the law misses the curve")
    return _facet(chart, facet).properties(title=title)

# -- backtest ----------------------------------------------------------------------------------
def backtest_chart(result: Any, *, facet: str | None = None) -> Chart:
    """A backtest (:func:`rlscale.forecast.backtest.backtest`): each group's law fitted on the compute
    up to its cut (vertical rule), extrapolated past it (dashed, prediction band), against the
    held-out points it never saw (crosses: filled when inside the interval, red ring when not).
    """
    alt = _alt()
    fits, frame = D.backtest_frames(result, facet=facet)
    metric, x = result.metric, result.x
    color = _color(frame["series"], _by_title([k for k in fits[0].group if k != facet]))
    tip = ["series:N", "run_id:N", alt.Tooltip("x:Q", title=x, format=".4~s"),
           alt.Tooltip("y:Q", title=metric, format=".4f")]
    base = alt.Chart().encode(color=color)

    def only(*layers: str) -> Any:
        return base.transform_filter(alt.FieldOneOfPredicate(field="layer", oneOf=list(layers)))

    y = alt.Y("y:Q", title=metric, scale=alt.Scale(zero=False))
    layers = [
        only("fit", "extrapolation").mark_area(opacity=0.15).encode(
            x=_x_log(x), y=alt.Y("lower:Q", title=metric), y2="upper:Q", detail="series:N"),
        only("cut").mark_rule(strokeDash=[4, 2], strokeWidth=1.5).encode(
            x=_x_log(x), tooltip=["series:N", alt.Tooltip("x:Q", title="cut", format=".4~s")]),
        only("observed-used").mark_circle(size=16, opacity=0.5).encode(
            x=_x_log(x), y=y, tooltip=tip),
        only("fit").mark_line(strokeWidth=2.2).encode(x=_x_log(x), y=y),
        only("extrapolation").mark_line(strokeWidth=2, strokeDash=[6, 4]).encode(
            x=_x_log(x), y=y),
        only("observed-heldout").mark_point(shape="cross", filled=True, size=40, opacity=0.9)
        .encode(x=_x_log(x), y=y, tooltip=[*tip, "covered:N"]),
        base.transform_filter(
            (alt.datum.layer == "observed-heldout") & (alt.datum.covered == False)  # noqa: E712
        ).mark_point(shape="circle", size=110, color="#d62728", strokeWidth=1.2, opacity=0.9)
        .encode(x=_x_log(x), y=y, tooltip=[*tip, "covered:N"]),
    ]
    chart = alt.layer(*layers, data=_inline(frame)).properties(**_size(facet))
    overall = result.summary[result.summary["group"] == "overall"]
    lines = [f"solid: fit data up to the cut (dashed rule); dashed + band: forecast and its "
             f"{100 * result.level:g}% prediction interval",
             "crosses: held-out points (red ring: outside the interval)"]
    if len(overall):
        row = overall.iloc[0]
        lines.insert(1, f"{int(row['n_test'])} held-out points: mean |error| {row['mae']:.3g}, "
                        f"{100 * row['coverage']:.0f}% inside the interval")
    title = alt.Title(f"backtest: {fits[0].law} fitted up to the cut, {metric} forecast past it",
                      subtitle=lines)
    return _facet(chart, facet).properties(title=title)


# -- saving ------------------------------------------------------------------------------------
def to_spec(chart: Chart, *, validate: bool = True) -> dict[str, Any]:
    """The chart's Vega-Lite spec as a dict, validated against altair's bundled schema."""
    return chart.to_dict(validate=validate)


def save(chart: Chart, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
    """Write ``chart`` to ``path``; the suffix picks the format.

    ``.html``: a self-contained page (Vega, Vega-Lite and vega-embed inlined; works offline).
    ``.png``: image at ``scale`` x the chart's pixel size. ``.svg``: vector image.
    ``.json``: the Vega-Lite spec. PNG/SVG/HTML need vl-convert-python (imported only here).
    Parent directories are created. Returns the path written.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise input_error(f"cannot save a chart as {suffix or 'a file without suffix'!r}",
                          path=out, expected=f"a file name ending in one of {list(SAVE_FORMATS)}")
    if scale <= 0:
        msg = f"scale must be positive, got {scale}"
        raise ValueError(msg)
    spec = to_spec(chart)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        out.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    elif suffix == ".html":
        title = _title_text(spec) or out.stem
        out.write_text(vega.standalone_html(spec, title=title), encoding="utf-8")
    elif suffix == ".png":
        out.write_bytes(vega.to_png(spec, scale=scale))
    else:
        out.write_text(vega.to_svg(spec), encoding="utf-8")
    return out


def _title_text(spec: dict[str, Any]) -> str | None:
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return title if isinstance(title, str) else None


save_chart = save  # the name ``rlscale.save_chart`` exports
