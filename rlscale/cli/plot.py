"""``rlscale plot`` and ``rlscale report``: charts and the offline HTML report from a store."""

from __future__ import annotations

import math
from typing import Any, Callable

import click

from rlscale.cli._common import store_option, store_path
from rlscale.cli._fitopts import fit_kwargs, fit_options, load_store_points, resolve_x
from rlscale.fit import fit
from rlscale.forecast.backtest import backtest
from rlscale.plot import charts as plot
from rlscale.plot.report import report_from_store, write_text
from rlscale.text import series_label

KINDS = ["curves", "raw", "params", "residuals", "backtest"]


def _keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def _budgets(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[float]:
    out = []
    for item in value:
        for part in _keys(item):
            try:
                x = float(part)
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a number (e.g. 2e4,1e5)") from None
            if not (math.isfinite(x) and x > 0):
                raise click.BadParameter(f"{part!r} is not a positive compute value")
            out.append(x)
    return out


def chart_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``rlscale fit``'s options (shared through :mod:`rlscale.cli._fitopts`) plus the chart's."""
    options = [
        store_option,
        fit_options(),
        click.option("--facet", default=None,
                     help="Split panels by a metadata key (e.g. pretrain_tokens); the fits are "
                          "made per --by and facet value."),
        click.option("--extrapolate-to", type=click.FloatRange(min=0, min_open=True),
                     default=None, help="Draw fitted curves (dashed) up to this compute "
                                        "(default: 10x the largest compute seen)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _fit_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """:func:`rlscale.fit.fit` keywords from the options; ``by`` includes the facet key."""
    if kw["law"] == "all":
        raise click.BadParameter("charts draw one law; pick sigmoid, power, exp or loglinear "
                                 "(rank laws with `rlscale fit --law all`)", param_hint="--law")
    out = fit_kwargs(kw)
    if kw["facet"]:
        out["by"] = list(dict.fromkeys([*out["by"], kw["facet"]]))
    return out


def _warn_unfitted(fits: list[Any]) -> None:
    for f in fits:
        if not f.ok:
            codes = ", ".join(f.warning_codes) or "failed"
            click.echo(f"warning: {series_label(f.group)} not fitted ({codes})", err=True)


@click.command("plot")
@chart_options
@click.option("--kind", type=click.Choice(KINDS), default="curves", show_default=True,
              help="curves: points + fitted law; raw: points only; params: A, B, C_mid per "
                   "group; residuals: observed - fit; backtest: fit to --cut, score the rest.")
@click.option("--band", type=click.Choice(["mean", "prediction"]), default="mean",
              show_default=True, help="Curves: shade the interval of the curve, or of a new run.")
@click.option("--cut", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Backtest: fit on this fraction of each group's compute.")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="PNG pixel scale.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file; the suffix picks the format: .html (offline), .png, .svg, "
                   ".json (Vega-Lite spec).")
def plot_command(out: str, kind: str, band: str, cut: float, scale: float,
                 **kw: Any) -> None:
    """Draw a chart of the runs in a store and their fitted laws.

    \b
    Examples:
        rlscale plot --metric reward --out curves.png
        rlscale plot --metric reward --burn-in 100 --max-x 5000 --extrapolate-to 1e5 --out c.html
        rlscale plot --metric reward --by recipe --facet pretrain_tokens --out facets.svg
        rlscale plot --metric reward --kind params --out params.png
        rlscale plot --metric reward --kind backtest --cut 0.5 --out backtest.png
    """
    fit_kw = _fit_kwargs(kw)
    points = load_store_points(kw["store"], kw["metric"])
    metric, facet = kw["metric"], kw["facet"]
    x = resolve_x(points, metric, fit_kw.pop("x"))
    if kind == "raw":
        by = [k for k in fit_kw["by"] if k != facet]
        chart = plot.raw_curves_chart(points, metric=metric, x=x, by=by, facet=facet)
    elif kind == "backtest":
        opts = {k: v for k, v in fit_kw.items() if k != "max_x"}
        result = backtest(points, metric=metric, x=x, cut=cut, **opts)
        chart = plot.backtest_chart(result, facet=facet)
    else:
        fits = fit(points, metric=metric, x=x, **fit_kw)
        _warn_unfitted(fits)
        if kind == "curves":
            chart = plot.curves_chart(fits, points=points, facet=facet,
                                      extrapolate_to=kw["extrapolate_to"], band=band)
        elif kind == "params":
            chart = plot.params_chart(fits, facet=facet)
        else:
            chart = plot.residuals_chart(fits, facet=facet)
    path = plot.save(chart, out, scale=scale)
    click.echo(f"wrote {kind} chart of {metric} against {x} to {path}")


@click.command("report")
@chart_options
@click.option("--budget", "budgets", multiple=True, callback=_budgets,
              help="Compute budget(s), in --x units, to forecast the reward at: X[,X...] (repeatable).")
@click.option("--cut", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Backtest: fit on this fraction of each group's compute.")
@click.option("--no-backtest", is_flag=True, help="Leave the backtest out.")
@click.option("--title", default=None, help="Report title.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output HTML file (self-contained, renders offline).")
def report_command(out: str, budgets: list[float], cut: float, no_backtest: bool,
                   title: str | None, **kw: Any) -> None:
    """Write one self-contained HTML report: fits, warnings, forecasts, backtest, charts, data.

    \b
    Examples:
        rlscale report --metric reward --budget 2e4,1e5 --out report.html
        rlscale report --metric reward --burn-in 100 --facet pretrain_tokens --out r.html
    """
    fit_kw = _fit_kwargs(kw)
    by = [k for k in fit_kw.pop("by") if k != kw["facet"]]
    html = report_from_store(
        store_path(kw["store"]), metric=kw["metric"], by=by, facet=kw["facet"],
        backtest_cut=None if no_backtest else cut, budgets=budgets,
        extrapolate_to=kw["extrapolate_to"], title=title, **fit_kw)
    path = write_text(out, html)
    click.echo(f"wrote report of {kw['metric']} ({len(html) / 1e6:.1f} MB) to {path}")


COMMANDS = [plot_command, report_command]
