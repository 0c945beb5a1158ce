"""``rlscale plot`` and ``rlscale report``: charts and the offline HTML report from a store."""

from __future__ import annotations

import math
from typing import Any, Callable

import click

from rlscale.cli._common import store_option, store_path

X_CHOICES = ["gpu_hours", "flops", "tokens", "wall_s", "step"]
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


def fit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options that decide which fits are drawn (a subset of ``rlscale fit``'s)."""
    options = [
        click.option("--metric", required=True, help="Metric to plot (e.g. reward, pass@1)."),
        click.option("--x", "x", type=click.Choice(X_CHOICES), default="gpu_hours",
                     show_default=True, help="Compute axis (log scale)."),
        click.option("--by", default="recipe", show_default=True,
                     help="Group (colour) by recipe, run_id or metadata KEY[,KEY...]."),
        click.option("--facet", default=None,
                     help="Split panels by a metadata key (e.g. pretrain_tokens); the fits are "
                          "made per --by and facet value."),
        click.option("--law", default="sigmoid", show_default=True,
                     help="Law to fit: sigmoid, power, exp or loglinear."),
        click.option("--burn-in", type=float, default=None,
                     help="Leave points below this compute out of the fit (drawn hollow)."),
        click.option("--max-x", type=float, default=None,
                     help="Fit only points up to this compute; the rest is extrapolation."),
        click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Bootstrap refits for the intervals (0: Wald, AR(1)-widened)."),
        click.option("--resample", type=click.Choice(["points", "runs"]), default="points",
                     show_default=True, help="Bootstrap unit: points or whole runs (seeds)."),
        click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                     default=0.95, show_default=True, help="Interval coverage."),
        click.option("--extrapolate-to", type=click.FloatRange(min=0, min_open=True),
                     default=None, help="Draw fitted curves (dashed) up to this compute "
                                        "(default: 10x the largest compute seen)."),
        store_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _fit_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    if kw["law"] == "all":
        raise click.BadParameter("charts draw one law; pick sigmoid, power, exp or loglinear "
                                 "(rank laws with `rlscale fit --law all`)", param_hint="--law")
    return {k: kw[k] for k in ("law", "burn_in", "max_x", "bootstrap", "resample", "level")}


def _load(store: str | None, metric: str) -> tuple[Any, Any]:
    from rlscale.errors import StoreError
    from rlscale.store import Store, load_points

    root = store_path(store)
    st = Store(root)
    if not st.run_ids():
        msg = f"no runs in store {str(root)!r} (pass --store DIR or set RLSCALE_STORE)"
        raise StoreError(msg)
    points = load_points(st, metric=metric, with_meta=True)
    if points.empty:
        have = sorted({m for ms in st.runs()["metrics"] for m in ms})
        raise click.BadParameter(f"no points for metric {metric!r} in {str(root)!r}; "
                                 f"metrics there: {have}", param_hint="--metric")
    return root, points


@click.command("plot")
@fit_options
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
    from rlscale import plot

    _, points = _load(kw["store"], kw["metric"])
    by, facet = _keys(kw["by"]), kw["facet"]
    keys = list(dict.fromkeys([*by, *([facet] if facet else [])]))
    metric, x = kw["metric"], kw["x"]
    fit_kw = _fit_kwargs(kw)
    if kind == "raw":
        chart = plot.raw_curves_chart(points, metric=metric, x=x, by=by, facet=facet)
    elif kind == "backtest":
        from rlscale.backtest import backtest

        opts = {k: v for k, v in fit_kw.items() if k != "max_x"}
        result = backtest(points, metric=metric, x=x, by=keys, cut=cut, **opts)
        chart = plot.backtest_chart(result, facet=facet)
    else:
        from rlscale.fit import fit

        fits = fit(points, metric=metric, x=x, by=keys, **fit_kw)
        if kind == "curves":
            chart = plot.curves_chart(fits, points=points, facet=facet,
                                      extrapolate_to=kw["extrapolate_to"], band=band)
        elif kind == "params":
            chart = plot.params_chart([f for f in fits if f.ok], facet=facet)
        else:
            chart = plot.residuals_chart(fits, facet=facet)
    path = plot.save(chart, out, scale=scale)
    click.echo(f"wrote {kind} chart of {metric} against {x} to {path}")


@click.command("report")
@fit_options
@click.option("--budget", "budgets", multiple=True, callback=_budgets,
              help="Compute budget(s) to forecast the reward at: X[,X...] (repeatable).")
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
    from rlscale.report import report_from_store, write_text

    root = store_path(kw["store"])
    html = report_from_store(
        root, metric=kw["metric"], x=kw["x"], by=_keys(kw["by"]), facet=kw["facet"],
        backtest_cut=None if no_backtest else cut, budgets=budgets,
        extrapolate_to=kw["extrapolate_to"], title=title, **_fit_kwargs(kw))
    path = write_text(out, html)
    click.echo(f"wrote report of {kw['metric']} ({len(html) / 1e6:.1f} MB) to {path}")


COMMANDS = [plot_command, report_command]
