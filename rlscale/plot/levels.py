"""How fitted law parameters move with a numeric group key such as the pretraining level.

:func:`level_params_frame` turns FitResults grouped by ``(level, colour)`` into one tidy row per
(fit, parameter); :func:`level_params_chart` draws each parameter (default A, B, C_mid) against
the level, one line per colour group (e.g. the recipe), with the fits' intervals as error bars.
Like :mod:`rlscale.plot.charts`, the chart is returned, never written: save it with
:func:`rlscale.plot.charts.save`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from rlscale.errors import input_error
from rlscale.plot.charts import _inline

_TITLES = {"A": "A (ceiling)", "B": "B (efficiency exponent)", "C_mid": "C_mid (compute at half gain)",
           "R0": "R0 (reward before RL)"}
LEVEL_PARAMS_COLUMNS = ("level", "color", "param", "value", "lower", "upper", "ok", "warnings")


def level_params_frame(fits: Sequence[Any], *, level: str, color: str = "recipe",
                       params: Sequence[str] = ("A", "B", "C_mid")) -> pd.DataFrame:
    """One row per (fit, parameter): columns :data:`LEVEL_PARAMS_COLUMNS`.

    ``fits``: :class:`~rlscale.fit.FitResult` s whose ``group`` holds ``level`` (a number: the x
    axis) and ``color`` (a label). Failed fits (``ok=False``) are kept with NaN values, so a
    missing point is visible in the table rather than silently absent.
    """
    rows = []
    for f in fits:
        for key in (level, color):
            if key not in f.group:
                raise input_error(f"fit of group {f.group} has no key {key!r}", field=key,
                                  expected=f"fits grouped by {level!r} and {color!r}")
        x = f.group[level]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise input_error(f"{level}={x!r} in fit {f.group} is not a finite number",
                              field=level, expected="a numeric level (e.g. pretrain_tokens)")
        for name in params:
            est = f.params.get(name) if f.ok else None
            rows.append({
                "level": float(x), "color": str(f.group[color]), "param": name,
                "value": math.nan if est is None else est.value,
                "lower": math.nan if est is None else est.lower,
                "upper": math.nan if est is None else est.upper,
                "ok": bool(f.ok), "warnings": ",".join(dict.fromkeys(f.warning_codes)),
            })
    return pd.DataFrame(rows, columns=list(LEVEL_PARAMS_COLUMNS)).sort_values(
        ["param", "color", "level"], kind="stable").reset_index(drop=True)


def level_params_chart(fits: Sequence[Any], *, level: str, color: str = "recipe",
                       params: Sequence[str] = ("A", "B", "C_mid"), log_level: bool | None = None,
                       level_title: str | None = None) -> Any:
    """Each parameter against the level, one line and colour per ``color`` group, with intervals.

    ``log_level``: log x axis (default: when the levels span more than a factor of 10 and are
    all positive). C_mid is always on a log axis. Hollow points mark fits with warnings.
    """
    import altair as alt

    frame = level_params_frame(fits, level=level, color=color, params=params)
    frame = frame[frame["value"].notna()].copy()
    if frame.empty:
        msg = "no successful fit to chart (every fit has ok=False)"
        raise ValueError(msg)
    levels = frame["level"]
    if log_level is None:
        log_level = bool((levels > 0).all() and levels.max() / levels.min() > 10)
    frame["flagged"] = frame["warnings"] != ""
    domain = sorted(frame["color"].unique())
    scale = alt.Scale(domain=domain, scheme="tableau10")
    integers = bool((levels == levels.round()).all())
    xenc = alt.X("level:Q", title=level_title or level,
                 scale=alt.Scale(type="log" if log_level else "linear", zero=False),
                 axis=alt.Axis(format="~s", tickCount=5,
                               tickMinStep=1 if integers and not log_level else None))
    panels = []
    for name in params:
        log = name.startswith("C_")
        base = alt.Chart().transform_filter(alt.datum.param == name).encode(
            x=xenc,
            color=alt.Color("color:N", scale=scale, title=color),
            tooltip=["color:N", alt.Tooltip("level:Q", format=".4~g"),
                     alt.Tooltip("value:Q", format=".4~g"), alt.Tooltip("lower:Q", format=".4~g"),
                     alt.Tooltip("upper:Q", format=".4~g"), "warnings:N"],
        )
        yscale = alt.Scale(type="log" if log else "linear", zero=False)
        yaxis = alt.Axis(format=".0e" if log else "~g", tickCount=5, grid=not log)
        y = alt.Y("value:Q", title=_TITLES.get(name, name), scale=yscale, axis=yaxis)
        panels.append(alt.layer(
            base.mark_rule(strokeWidth=1.5, opacity=0.6).encode(
                y=alt.Y("lower:Q", scale=yscale, title=_TITLES.get(name, name), axis=yaxis),
                y2="upper:Q"),
            base.mark_line(strokeWidth=1.5).encode(y=y),
            base.mark_point(size=60, opacity=1, filled=False).encode(y=y),
            base.transform_filter(~alt.datum.flagged).mark_point(size=60, filled=True,
                                                                  opacity=1).encode(y=y),
        ).properties(width=220, height=200))
    f0 = fits[0]
    pct = f"{100 * f0.level:g}%"
    title = alt.Title(f"fitted {f0.law} parameters of {f0.metric} against {level_title or level}",
                      subtitle=f"one fit per point, against {f0.x}; bars: {pct} intervals; "
                               "hollow: the fit has warnings")
    return alt.hconcat(*panels, data=_inline(frame), spacing=16).properties(title=title)
