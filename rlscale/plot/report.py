"""One self-contained HTML report: fits, warnings, forecasts, backtest, charts, provenance.

The page renders offline: Vega, Vega-Lite and vega-embed are inlined (from vl-convert-python),
chart data is inlined in each spec, styles are inline, and nothing refers to another host.
:func:`build_report` assembles it from results already computed (fits, a backtest, the store's
runs); :func:`report_from_store` computes them from a store the way ``rlscale report`` does.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from rlscale import __version__
from rlscale.fit import choose_x, fit
from rlscale.forecast.backtest import backtest as run_backtest
from rlscale.forecast.budgets import compute_for_fraction, reward_at
from rlscale.forecast.ranking import rank_at
from rlscale.forecast.verdict import verdicts
from rlscale.plot import charts as plot
from rlscale.plot import frames as D
from rlscale.plot import vega
from rlscale.plot.charts import to_spec
from rlscale.store import Store, load_metric_points, load_runs
from rlscale.text import format_value, num, series_label

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}.meta{color:#666}nav a{margin-right:1em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{color:#a15c00}.bad{color:#b00020}.chart{margin:1em 0}code{background:#f4f4f4;padding:0 3px}
"""
SECTIONS = (("fits", "Fits"), ("warnings", "Warnings"), ("forecasts", "Forecasts"),
            ("charts", "Charts"), ("backtest", "Backtest"), ("data", "Data and method"))


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, fmt: str = ".4g") -> str:
    """Ints too through ``fmt``; missing is blank, a compute never reached reads ``never``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        pass
    return num(value, fmt, missing="", inf="never")


def _interval(value: Any, lower: Any, upper: Any) -> str:
    return f"{_num(value)} [{_num(lower)}, {_num(upper)}]"


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
           numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    num = ' class="num"'
    for row in rows:
        cells = "".join(f"<td{num if i in numeric else ''}>{_esc(v)}</td>"
                        for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# -- sections ----------------------------------------------------------------------------------
def _fits_section(fits: Sequence[Any]) -> str:
    names = list(dict.fromkeys(p for f in fits for p in f.params))
    pct = f"{100 * fits[0].level:g}%"
    rows = []
    for f in fits:
        lo, hi = f.window
        cells = [series_label(f.group), f.law, f.n_points, f"{_num(lo)} .. {_num(hi)}"]
        for n in names:
            p = f.params.get(n)
            if not f.ok or p is None:
                cells.append("not fitted" if not f.ok else "")
            else:
                cells.append(_interval(p.value, p.lower, p.upper) + ("" if p.vary else " fixed"))
        cells += [_num(f.gof.get("rmse")), _num(f.gof.get("heldout_rmse")),
                  ", ".join(dict.fromkeys(f.warning_codes)) or "-"]
        rows.append(cells)
    cols = ["group", "law", "points", f"window ({fits[0].x})", *[f"{n} [{pct}]" for n in names],
            "rmse", "held-out rmse", "warnings"]
    found = "".join(f"<li>{_esc(v.text())}</li>" for v in verdicts(fits))
    return (f"<p>{_esc(fits[0].law)} law fitted to <code>{_esc(fits[0].metric)}</code> against "
            f"<code>{_esc(fits[0].x)}</code>, one fit per group; intervals at {pct}.</p>"
            + _table(cols, rows, numeric=(2,))
            + f"<p>Verdicts (still rising / plateaued / declining; docs/fit.md):</p>"
              f"<ul class=\"verdicts\">{found}</ul>")


def _warnings_section(fits: Sequence[Any], backtest: Any | None) -> str:
    items = [f"<li class=\"warn\"><b>{_esc(series_label(f.group))}</b>: "
             f"<code>{_esc(w.code)}</code> {_esc(w.message)}</li>"
             for f in fits for w in f.warnings]
    items += [f"<li class=\"bad\"><b>{_esc(series_label(f.group))}</b>: not fitted</li>"
              for f in fits if not f.ok]
    if backtest is not None:
        items += [f"<li class=\"warn\">backtest fit <b>{_esc(series_label(f.group))}</b>: "
                  f"<code>{_esc(w.code)}</code> {_esc(w.message)}</li>"
                  for f in backtest.fits for w in f.warnings]
    return f"<ul>{''.join(items)}</ul>" if items else "<p>No warnings.</p>"


def _forecast_section(fits: Sequence[Any], budgets: Sequence[float],
                      fractions: Sequence[float]) -> str:
    ok = [f for f in fits if f.ok]
    if not ok:
        return "<p>No successful fit to forecast from.</p>"
    x, pct = ok[0].x, f"{100 * ok[0].level:g}%"
    parts = []
    if budgets:
        table = reward_at(ok, list(budgets))
        best: dict[tuple[str, float], float] = {}
        if len(ok) >= 2:
            for b in budgets:
                ranking = rank_at(ok, float(b))
                for _, r in ranking.table.iterrows():
                    best[(series_label(r["group"]), float(b))] = r["p_best"]
        rows = [[series_label(r["group"]), _num(r["x"]),
                 _interval(r["mean"], r["mean_lower"], r["mean_upper"]),
                 f"[{_num(r['pred_lower'])}, {_num(r['pred_upper'])}]",
                 _num(best.get((series_label(r["group"]), float(r["x"]))), ".0%")]
                for _, r in table.iterrows()]
        parts.append(f"<p>Reward at each compute budget ({_esc(x)}): the mean curve with its "
                     f"{pct} interval, the {pct} interval for one new run, and the probability "
                     "that the group has the highest mean there.</p>"
                     + _table(["group", f"budget ({x})", f"mean reward [{pct}]",
                               f"new run [{pct}]", "P(best)"], rows, numeric=(1,)))
    else:
        parts.append("<p>No budgets given (<code>--budget X,...</code>).</p>")
    rows = []
    for frac in fractions:
        try:
            table = compute_for_fraction(ok, frac)
        except ValueError as exc:  # a law without a ceiling has no "fraction of the gain"
            parts.append(f"<p class=\"warn\">{_esc(exc)}</p>")
            break
        rows += [[series_label(r["group"]), f"{frac:.0%}", _num(r["target"]),
                  _interval(r["x"], r["x_lower"], r["x_upper"]), r["status"]]
                 for _, r in table.iterrows()]
    if rows:
        parts.append(f"<p>Compute ({_esc(x)}) to reach a fraction of each group's gain "
                     f"A - R0, with its {pct} interval.</p>"
                     + _table(["group", "fraction", "reward", f"compute [{pct}]", "status"],
                              rows, numeric=(2,)))
    return "".join(parts)


def _backtest_section(backtest: Any | None) -> str:
    if backtest is None:
        return "<p>No backtest was run.</p>"
    s = backtest.summary
    # the backtest labels groups its own way ("recipe=a"); show them as the other tables do
    names = [series_label(f.group) for f in backtest.fits] + ["overall"]
    rows = [[names[i] if len(names) == len(s) else r["group"], _num(r["cut_x"]), r["n_fit"], r["n_test"], _num(r["mae"]),
             _num(r["max_abs_error"]), _num(r["coverage"], ".0%")]
            for i, (_, r) in enumerate(s.iterrows())]
    return (f"<p>Each group refitted on the compute up to its cut; the forecast is scored on the "
            f"points past it, never seen by the fit. Coverage should sit near the nominal "
            f"{100 * backtest.level:g}%.</p>"
            + _table(["group", f"cut ({backtest.x})", "fit points", "held-out points",
                      "mean |error|", "max |error|", "coverage"], rows,
                     numeric=(1, 2, 3, 4, 5, 6)))


def _setting(value: Any) -> str:
    if value is None or value == {} or value == []:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return format_value(value)


def _data_section(fits: Sequence[Any], runs: pd.DataFrame | None, store: str | None) -> str:
    f0 = fits[0]
    opts = dict(f0.options)
    settings = [("store", store or "(not given)"), ("metric", f0.metric),
                ("compute axis", f0.x), ("law", f0.law), ("fit method", f0.method),
                ("interval method", f0.samples_method), ("level", f"{100 * f0.level:g}%"),
                *[(k, _setting(v)) for k, v in opts.items()]]
    out = [_table(["setting", "value"], settings)]
    if runs is not None and len(runs):
        keep = ["run_id", "recipe", "seed", "task", "model", "status", "n_points"]
        meta = [c for c in runs.columns if c not in keep and c not in
                ("metrics", "max_step", "source_path", "source_format")
                and not c.startswith(("max_", "min_"))]
        cols = [c for c in keep + meta if c in runs.columns and runs[c].notna().any()]
        cols.append("source")
        rows = []
        for _, r in runs.iterrows():
            src = " ".join(str(v) for v in (r.get("source_format"), r.get("source_path"))
                           if v is not None and not (isinstance(v, float) and math.isnan(v)))
            rows.append([format_value(r.get(c)) for c in cols[:-1]] + [src or "rlscale job"])
        out.append(f"<p>{len(runs)} runs in the store.</p>" + _table(cols, rows))
    return "".join(out)


# -- assembly ----------------------------------------------------------------------------------
def _charts(fits: Sequence[Any], points: pd.DataFrame | None, backtest: Any | None,
            facet: str | None, extrapolate_to: float | None) -> dict[str, list[Any]]:
    ok = [f for f in fits if f.ok]
    charts: dict[str, list[Any]] = {"charts": [], "backtest": []}
    if points is not None:
        by = [k for k in fits[0].group if k != facet]
        charts["charts"].append(plot.raw_curves_chart(points, metric=fits[0].metric,
                                                      x=fits[0].x, by=by, facet=facet))
    if ok:
        charts["charts"] += [
            plot.curves_chart(ok, points=points, facet=facet, extrapolate_to=extrapolate_to),
            plot.params_chart(ok, facet=facet),
            plot.residuals_chart(ok, facet=facet),
        ]
    if backtest is not None and any(f.ok for f in backtest.fits):
        charts["backtest"].append(plot.backtest_chart(backtest, facet=facet))
    return charts


def build_report(
    fits: Sequence[Any],
    *,
    points: pd.DataFrame | None = None,
    runs: pd.DataFrame | None = None,
    budgets: Sequence[float] = (),
    fractions: Sequence[float] = (0.5, 0.9),
    backtest: Any | None = None,
    facet: str | None = None,
    extrapolate_to: float | None = None,
    title: str | None = None,
    store: str | os.PathLike[str] | None = None,
    generated: str | None = None,
    summary: Sequence[str] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """The report as one HTML string (about 1 MB: the inlined Vega libraries plus the data).

    ``fits``: FitResults of one metric and compute axis (``rlscale.fit(..., by=...)``).
    ``points``: the store's long points with metadata, for the raw and fitted curve charts.
    ``runs``: ``load_runs(store)``, listed with their sources. ``budgets``: compute values
    (the fits' x units) to forecast the reward at; ``fractions``: fractions of the gain to
    give the compute for. ``backtest``: a :class:`rlscale.forecast.backtest.BacktestResult`.
    ``facet``: a key of the fits' groups to split chart panels by. ``summary``: sentences
    (plain text, escaped here) shown first, under the title, as the report's finding.
    ``extra``: (heading, HTML) sections added after the forecasts, for callers that computed
    more (the demo's pass@k verdicts); the HTML is the caller's and must be escaped by it.
    """
    fits = D.check_fits(fits, facet=facet)
    f0 = fits[0]
    title = title or f"rlscale report: {f0.metric} against {f0.x}"
    generated = generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    charts = _charts(fits, points, backtest, facet, extrapolate_to)
    counter = iter(range(1, 1000))

    def embed(section: str) -> str:
        out = []
        for chart in charts[section]:
            cid = f"chart-{next(counter)}"
            out.append(f"<div class=\"chart\" id=\"{cid}\" data-chart></div>"
                       f"<script>{vega.embed_call(cid, to_spec(chart))}</script>")
        return "".join(out)

    body = {
        "fits": _fits_section(fits),
        "warnings": _warnings_section(fits, backtest),
        "forecasts": _forecast_section(fits, budgets, fractions),
        "charts": embed("charts") or "<p>No chart: no fit succeeded.</p>",
        "backtest": _backtest_section(backtest) + embed("backtest"),
        "data": _data_section(fits, runs, None if store is None else str(store)),
    }
    order = list(SECTIONS)
    for i, (name, html_text) in enumerate(extra):
        key = f"extra-{i + 1}"
        body[key] = html_text
        order.insert(3 + i, (key, _esc(name)))
    nav = "".join(f"<a href=\"#{key}\">{name}</a>" for key, name in order)
    sections = "".join(f"<section id=\"{key}\"><h2>{name}</h2>{body[key]}</section>"
                       for key, name in order)
    finding = ("<section id=\"summary\"><h2>Summary</h2>"
               + "".join(f"<p>{_esc(line)}</p>" for line in summary) + "</section>"
               if summary else "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(title)}</title><style>{CSS}</style>\n"
        f"<script>{vega.javascript_bundle()}</script></head>\n<body>"
        f"<h1>{_esc(title)}</h1><p class=\"meta\">rlscale {_esc(__version__)}, "
        f"{_esc(generated)}; {len(fits)} fits of {_esc(f0.law)}</p>{finding}<nav>{nav}</nav>"
        f"{sections}</body></html>\n"
    )


def write_report(path: str | os.PathLike[str], fits: Sequence[Any], **kwargs: Any) -> Path:
    """Write :func:`build_report` (same keyword arguments) to ``path``; returns the path."""
    return write_text(path, build_report(fits, **kwargs))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a reader never sees half a report)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out


def report_from_store(
    store: str | os.PathLike[str],
    *,
    metric: str,
    x: str | None = "gpu_hours",
    by: Sequence[str] = ("recipe",),
    facet: str | None = None,
    backtest_cut: float | None = 0.5,
    budgets: Sequence[float] = (),
    extrapolate_to: float | None = None,
    title: str | None = None,
    **fit_options: Any,
) -> str:
    """Load a store, fit per group (``by`` plus ``facet``), backtest, and :func:`build_report`.

    ``fit_options`` (``law``, ``burn_in``, ``max_x``, ``bootstrap``, ``resample``, ``level``,
    ...) go to :func:`rlscale.fit.fit` and, except ``max_x``, to the backtest.
    ``x`` None: the first of gpu_hours, flops, tokens, step the runs have.
    ``backtest_cut``: fraction of each group's compute range the backtest fits on (None: none).
    """
    st = Store(store)
    points = load_metric_points(st, metric)
    x = choose_x(points, metric, x)
    keys = list(dict.fromkeys([*by, *([facet] if facet else [])]))
    fits = fit(points, metric=metric, x=x, by=keys, **fit_options)
    bt = None
    if backtest_cut is not None:
        bt_opts = {k: v for k, v in fit_options.items() if k != "max_x"}
        bt = run_backtest(points, metric=metric, x=x, by=keys, cut=backtest_cut, **bt_opts)
    return build_report(fits, points=points, runs=load_runs(st), budgets=budgets,
                        backtest=bt, facet=facet, extrapolate_to=extrapolate_to, title=title,
                        store=store)
