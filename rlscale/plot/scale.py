"""Charts of a forecast across scale: A, B, C_mid against the scale with their laws, and the
predicted curve at a new scale beside the observed ones. The frames behind them are plain
functions of a :class:`~rlscale.forecast.scale_forecast.ScaleForecast` (tested on numbers);
the charts only map their columns to marks and never write files (save with
:func:`rlscale.plot.charts.save`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rlscale.text import num, records

PLOTTED = ("A", "B", "C_mid")
LAW_POINTS = 60
CURVE_POINTS = 80


def law_frame(fc: Any, *, n: int = LAW_POINTS) -> pd.DataFrame:
    """``param, scale, value, lower, upper, kind``: each scale's own fit (``fitted``), the law on
    a log grid from the smallest scale to the largest of scales and --at (``law``), and the law
    at each --at scale (``predicted``); the intervals are at the forecast's level."""
    laws, tail = fc.laws, 50.0 * (1.0 - fc.level)
    top = max(float(laws.scales[-1]), *map(float, fc.curve["scale"]))
    grid = np.geomspace(float(laws.scales[0]), top, n)
    rows = [fc.params[(fc.params["kind"] != "law") & fc.params["param"].isin(PLOTTED)]]
    for name in PLOTTED:
        point, draws = laws.laws[name].predict(grid)
        lo, hi = np.nanpercentile(draws, [tail, 100.0 - tail], axis=0)
        rows.append(pd.DataFrame({"param": name, "scale": grid, "value": point, "lower": lo,
                                  "upper": hi, "kind": "law"}))
    return pd.concat(rows, ignore_index=True)[["param", "scale", "value", "lower", "upper",
                                               "kind"]]


def curve_frame(fc: Any, *, n: int = CURVE_POINTS) -> pd.DataFrame:
    """``series, x, y, lower, upper, kind``: each observed scale's fitted mean curve
    (``observed fit``, no band), its points at positive compute (``observed``), and each predicted curve with the
    band of its mean (``predicted``), on a log grid over the forecast's compute grid."""
    laws, key = fc.laws, fc.key
    xs_all = np.concatenate([np.asarray(f.data["x"], dtype=float) for f in laws.fits])
    lo = float(np.min(xs_all[xs_all > 0]))
    hi = max(float(xs_all.max()), float(fc.curve["x"].max()))
    grid = np.geomspace(lo, hi, n)
    rows = []
    for n_obs, c, f in zip(laws.scales, laws.curves, laws.fits):
        label = f"{key}={num(float(n_obs))}"
        rows.append(pd.DataFrame({"series": label, "x": grid, "y": c.mean(grid),
                                  "lower": np.nan, "upper": np.nan, "kind": "observed fit"}))
        x, y = f.data["x"].to_numpy(dtype=float), f.data["y"].to_numpy(dtype=float)
        on_axis = x > 0  # the axis is logarithmic: a point at compute 0 (an RL job's first eval)
        rows.append(pd.DataFrame({"series": label, "x": x[on_axis], "y": y[on_axis],
                                  "lower": np.nan, "upper": np.nan, "kind": "observed"}))
    for n_new in dict.fromkeys(fc.curve["scale"]):
        c = laws.curve_at(n_new)
        pred = c.predict(grid, level=fc.level)
        rows.append(pd.DataFrame({"series": f"{key}={num(float(n_new))} (predicted)",
                                  "x": grid, "y": pred["mean"], "lower": pred["mean_lower"],
                                  "upper": pred["mean_upper"], "kind": "predicted"}))
    return pd.concat(rows, ignore_index=True)


def scale_chart(fc: Any) -> Any:
    """The three parameter panels above the curve panel (an ``alt.VConcatChart``)."""
    import altair as alt

    laws = law_frame(fc)
    panels = []
    for name in PLOTTED:
        base = alt.Chart().transform_filter(alt.datum.param == name)
        x = alt.X("scale:Q", title=f"{fc.key} (log scale)",
                  scale=alt.Scale(type="log", nice=False), axis=alt.Axis(format="~s"))
        y = alt.Y("value:Q", title=name, scale=alt.Scale(type="log" if name == "C_mid" else
                                                          "linear", zero=False))
        law = base.transform_filter(alt.datum.kind == "law")
        dots = base.transform_filter(alt.datum.kind != "law")
        kind = alt.Color("kind:N", title=None, scale=alt.Scale(
            domain=["fitted", "predicted"], range=["#4c78a8", "#e45756"]))
        panels.append(alt.layer(
            law.mark_area(opacity=0.15, color="#888").encode(x=x, y="lower:Q", y2="upper:Q"),
            law.mark_line(color="#555").encode(x=x, y=y),
            dots.mark_rule(strokeWidth=2).encode(x=x, y="lower:Q", y2="upper:Q", color=kind),
            dots.mark_point(filled=True, size=60).encode(
                x=x, y=y, color=kind, shape=alt.Shape("kind:N", legend=None),
                tooltip=["kind:N", alt.Tooltip("scale:Q", format=".3~s"),
                         alt.Tooltip("value:Q", format=".4~g"),
                         alt.Tooltip("lower:Q", format=".4~g"),
                         alt.Tooltip("upper:Q", format=".4~g")]),
            data={"values": records(laws)}).properties(width=200, height=180))
    curves = curve_frame(fc)
    base = alt.Chart().encode(
        x=alt.X("x:Q", title=f"{fc.x_axis} (log scale)", scale=alt.Scale(type="log", nice=False),
                axis=alt.Axis(format="~s")),
        color=alt.Color("series:N", title=None,  # legend in scale order, predicted last
                        scale=alt.Scale(domain=list(dict.fromkeys(curves["series"])))))

    def only(kind: str) -> Any:
        return base.transform_filter(alt.datum.kind == kind)

    y = alt.Y("y:Q", title=fc.metric, scale=alt.Scale(zero=False))
    curve_panel = alt.layer(
        only("predicted").mark_area(opacity=0.18).encode(y="lower:Q", y2="upper:Q"),
        only("observed").mark_circle(size=10, opacity=0.35).encode(y=y),
        only("observed fit").mark_line(strokeWidth=2).encode(y=y),
        only("predicted").mark_line(strokeWidth=2.5, strokeDash=[6, 4]).encode(y=y),
        data={"values": records(curves)}).properties(width=680, height=300)
    pct = f"{100 * fc.level:g}%"
    title = alt.Title(f"{fc.metric} across {fc.key}: laws of the sigmoid's parameters",
                      subtitle=f"line: law; band: {pct} interval; red: predicted at the new "
                               "scale; below: observed fits (solid) and predicted (dashed)")
    return alt.vconcat(alt.hconcat(*panels), curve_panel).properties(title=title).resolve_scale(
        color="independent")
