"""pass@k curves as an Altair chart: one panel per difficulty, a line and interval band per model."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd


def passk_chart(curves: pd.DataFrame, *, title: str | None = None) -> Any:
    """``curves``: long frame ``model, difficulty, k, pass_at_k, lower, upper`` (as in
    :class:`~rlscale.analysis.passk.PasskComparison`). Returns an ``alt.FacetChart``; k on a
    log2 axis. Never writes a file (save with :func:`rlscale.plot.charts.save`, which writes
    offline pages)."""
    import altair as alt

    base = alt.Chart(curves).encode(
        x=alt.X("k:Q", scale=alt.Scale(type="log", base=2), title="k (samples)"),
        color=alt.Color("model:N", title="model"),
    )
    band = base.mark_area(opacity=0.18).encode(y="lower:Q", y2="upper:Q")
    line = base.mark_line(point=True).encode(
        y=alt.Y("pass_at_k:Q", title="pass@k", scale=alt.Scale(domain=[0, 1])),
        tooltip=["model:N", "difficulty:O", "k:Q", alt.Tooltip("pass_at_k:Q", format=".3f"),
                 alt.Tooltip("lower:Q", format=".3f"), alt.Tooltip("upper:Q", format=".3f")],
    )
    chart = (band + line).properties(width=180, height=160).facet(
        column=alt.Column("difficulty:O", title="difficulty (ops)"))
    return chart.properties(title=title) if title else chart


def comparison_curves(comparisons: Sequence[tuple[str, Any]], *, base: str) -> pd.DataFrame:
    """One curves frame for :func:`passk_chart` from ``(rl label, PasskComparison)`` pairs
    against the same base (``PasskReport.comparisons``): the base's curves once, as
    ``"base (<base>)"``, then each RL model's under its label."""
    frames = []
    for i, (label, cmp) in enumerate(comparisons):
        cur = cmp.curves
        if i == 0:
            frames.append(cur[cur["model"] == "base"].assign(model=f"base ({base})"))
        frames.append(cur[cur["model"] == "rl"].assign(model=label))
    return pd.concat(frames, ignore_index=True)


def comparisons_chart(comparisons: Sequence[tuple[str, Any]], *, base: str,
                      title: str | None = None) -> Any:
    """:func:`passk_chart` of :func:`comparison_curves`: base and every RL model per difficulty."""
    return passk_chart(comparison_curves(comparisons, base=base), title=title)
