"""``rlscale forecast`` and ``rlscale backtest``: fit the store's curves, then answer with intervals."""

from __future__ import annotations

from typing import Any

import click

from rlscale.cli import _forecast_out as out
from rlscale.cli._common import store_option, store_path
from rlscale.cli._fitopts import (
    fit_kwargs,
    fit_options,
    load_store_points,
    resolve_x,
    select_recipe,
)
from rlscale.cli._scale_out import scale_backtest_report, scale_report
from rlscale.fit import fit, load_fits
from rlscale.forecast.backtest import backtest
from rlscale.forecast.ensemble import FORECASTS
from rlscale.forecast.pricing import stated_pricing
from rlscale.forecast.run import MODES, USD_MODES, Forecast, ForecastQuery, run_forecast
from rlscale.forecast.scale import fit_scale_laws
from rlscale.forecast.scale_forecast import fit_scales, scale_backtest, scale_forecast
from rlscale.forecast.verdict import verdicts
from rlscale.plot.charts import save_chart
from rlscale.plot.scale import scale_chart


def _budgets(value: str | None, hint: str = "--budget") -> list[float] | None:
    if value is None:
        return None
    try:
        xs = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers "
                                 "(e.g. 1e4,3e4)", param_hint=hint) from None
    if not xs or any(not x > 0 or x == float("inf") for x in xs):
        raise click.BadParameter(f"{value!r}: values must be positive finite numbers",
                                 param_hint=hint)
    return xs


SCALE_BY_HELP = ("Numeric run metadata KEY (model_params, pretrain_tokens, ...): fit each "
                 "scale's runs as one curve, then laws of A, B, C_mid and R0 across KEY "
                 "(docs/forecast.md, *A bigger model*).")
FORECAST_HELP = ("ensemble: the law refitted with burn-ins, plus the last value and the recent "
                 "level, weighted and calibrated on in-window backtests (docs/forecast.md); "
                 "law: the single fit's curve and joint-draw intervals.")
RECIPE_HELP = "Use only the runs of this recipe (with --scale-by: one recipe across its scales)."


def _explicit(ctx: click.Context, names: list[str]) -> list[str]:
    """The options among ``names`` that the user gave (not left at their default)."""
    return ["--" + n.replace("_", "-") for n in names
            if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]


@click.command("forecast")
@store_option
@fit_options(defaults={"level": 0.9})
@click.option("--budget", default=None, metavar="X[,X...]",
              help="Compute budget(s) on the --x axis: the reward each group reaches there.")
@click.option("--target", type=float, default=None,
              help="Reward R: the compute each group needs to reach it ('never' if R is above "
                   "the interval of the ceiling A).")
@click.option("--ceiling-frac", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Fraction F of each group's gain A - R0 (e.g. 0.9): the "
                                 "compute to reach R0 + F (A - R0).")
@click.option("--rank-at", type=float, default=None,
              help="Compute budget X: rank groups by predicted reward there, with P(leader "
                   "leads) and the budgets where one group overtakes another.")
@click.option("--usd-budget", is_flag=True,
              help="Read --budget and --rank-at values as dollars (needs --usd-per-gpu-hour).")
@click.option("--usd-per-gpu-hour", type=float, default=None,
              help="Price of one GPU-hour in dollars: adds usd columns.")
@click.option("--flops-per-gpu-hour", type=float, default=None,
              help="Throughput, FLOPs done per GPU-hour, to read a --x flops axis as GPU-hours.")
@click.option("--peak-flops", type=float, default=None,
              help="Peak FLOP/s of one GPU (e.g. 9.89e14 for H100 bf16); with --mfu it sets the "
                   "throughput as peak x MFU x 3600.")
@click.option("--mfu", type=float, default=None,
              help="Model FLOPs utilisation in (0, 1] (e.g. 0.4), used with --peak-flops.")
@click.option("--saved", is_flag=True,
              help="Forecast from the fits `rlscale fit --save` stored (same --metric, --x, --law, "
                   "--by) instead of refitting; the other fit options are then ignored.")
@click.option("--forecast", "forecast_kind", type=click.Choice(FORECASTS),
              default="ensemble", show_default=True,
              help=FORECAST_HELP)
@click.option("--scale-by", default=None, metavar="KEY", help=SCALE_BY_HELP)
@click.option("--at", "at", default=None, metavar="N[,N...]",
              help="With --scale-by: the scale(s) to predict the whole curve at (e.g. 3e10); "
                   "--budget is then the compute grid, --target/--ceiling-frac add compute.")
@click.option("--recipe", default=None, help=RECIPE_HELP)
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False),
              help="With --scale-by: write the chart of A, B, C_mid against the scale and the "
                   "predicted curve beside the observed ones (.html, .png, .svg or .json).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {'forecasts': [...]} JSON (keys in docs/forecast.md), not a table.")
@click.pass_context
def forecast_command(ctx: click.Context, store: str | None, budget: str | None,
                     target: float | None, ceiling_frac: float | None, rank_at: float | None,
                     usd_budget: bool, usd_per_gpu_hour: float | None,
                     flops_per_gpu_hour: float | None, peak_flops: float | None,
                     mfu: float | None, saved: bool, forecast_kind: str, scale_by: str | None,
                     at: str | None, recipe: str | None, plot_path: str | None, as_json: bool,
                     **fit_opts: Any) -> None:
    """Forecast each group's reward at a budget, or the compute for a reward, with intervals.

    Fits the law per group exactly as `rlscale fit` does (same options), then propagates the
    fit's joint parameter draws to every number. Give exactly one of --budget, --target,
    --ceiling-frac or --rank-at.

    \b
    Examples:
        rlscale forecast --metric reward --budget 1e4,1e5
        rlscale forecast --metric reward --target 0.65 --usd-per-gpu-hour 2.5
        rlscale forecast --metric reward --ceiling-frac 0.9 --burn-in 200 --json
        rlscale forecast --metric reward --rank-at 20000 --usd-budget --usd-per-gpu-hour 2.5
        rlscale forecast --metric reward --x flops --budget 1e21 --peak-flops 9.89e14 --mfu 0.4
        rlscale forecast --metric reward --scale-by model_params --at 3e10 --target 0.7
    """
    if scale_by is not None:
        _forecast_scale(ctx, store, scale_by, at=at, budget=budget, target=target,
                        ceiling_frac=ceiling_frac, recipe=recipe, plot_path=plot_path,
                        as_json=as_json, fit_opts=fit_opts)
        return
    given = _explicit(ctx, ["at", "plot_path"])
    if given:
        raise click.UsageError(f"{', '.join(given)} need --scale-by KEY")
    chosen = [m for m, v in zip(MODES, (budget, target, ceiling_frac, rank_at)) if v is not None]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --budget, --target, --ceiling-frac, --rank-at"
                               + (f" (got {', '.join('--' + m.replace('_', '-') for m in chosen)})"
                                  if chosen else ""))
    kw = fit_kwargs(fit_opts)
    metric = fit_opts["metric"]
    points = load_store_points(store, metric)
    kw["x"] = resolve_x(points, metric, kw["x"])
    pricing = stated_pricing(axis=kw["x"], usd_per_gpu_hour=usd_per_gpu_hour,
                             flops_per_gpu_hour=flops_per_gpu_hour, peak_flops=peak_flops,
                             mfu=mfu, required=usd_budget)
    xs = _budgets(budget)
    if usd_budget and chosen[0] not in USD_MODES:
        raise click.UsageError("--usd-budget applies to --budget and --rank-at only")
    query = ForecastQuery.create(budgets=xs, target=target, ceiling_frac=ceiling_frac,
                                 rank_at=rank_at, pricing=pricing, usd_budget=usd_budget)
    points = select_recipe(points, recipe)
    fits = _saved_fits(store, metric, kw) if saved else fit(points, metric=metric, **kw)
    result = run_forecast(fits, query, level=kw["level"], seed=kw["seed"],
                          forecast=forecast_kind)
    found = verdicts(fits, level=kw["level"], seed=kw["seed"])
    if as_json:
        click.echo(out.to_json({**result.to_dict(), "verdicts": [v.to_dict() for v in found]}))
        return
    _echo_forecast(result, law=kw["law"])
    click.echo("\nverdicts:")
    click.echo("\n".join(f"  {v.text()}" for v in found))


def _scale_points(ctx: click.Context, store: str | None, recipe: str | None,
                  fit_opts: dict[str, Any], allowed: list[str]) -> tuple[Any, dict[str, Any]]:
    """The points and fit keywords of a --scale-by command (grouped by the key alone)."""
    given = _explicit(ctx, [n for n in ctx.params if n not in allowed])
    if given:
        raise click.UsageError(f"{', '.join(given)} cannot be used with --scale-by")
    kw = fit_kwargs(fit_opts)
    kw.pop("by")
    points = select_recipe(load_store_points(store, fit_opts["metric"]), recipe)
    kw["x"] = resolve_x(points, fit_opts["metric"], kw["x"])
    return points, kw


SCALE_FIT = ["metric", "x", "law", "burn_in", "max_x", "r0", "loss", "bootstrap", "interval",
             "resample", "method", "level", "seed", "drop_nan", "strict", "store", "recipe",
             "as_json", "scale_by"]


def _forecast_scale(ctx: click.Context, store: str | None, key: str, *, at: str | None,
                    budget: str | None, target: float | None, ceiling_frac: float | None,
                    recipe: str | None, plot_path: str | None, as_json: bool,
                    fit_opts: dict[str, Any]) -> None:
    """``forecast --scale-by``: the scale laws and the whole curve at each --at scale."""
    allowed = [*SCALE_FIT, "at", "budget", "target", "ceiling_frac", "plot_path"]
    points, kw = _scale_points(ctx, store, recipe, fit_opts, allowed)
    scales = _budgets(at, hint="--at")
    if not scales:
        raise click.UsageError("--scale-by needs --at N[,N...]: the scale(s) to forecast")
    if target is not None and ceiling_frac is not None:
        raise click.UsageError("give at most one of --target, --ceiling-frac with --scale-by")
    fits = fit_scales(points, key=key, metric=fit_opts["metric"], **kw)
    laws = fit_scale_laws(fits, key=key, seed=kw["seed"])
    result = scale_forecast(laws, scales, metric=fit_opts["metric"], x_axis=kw["x"],
                            budgets=_budgets(budget), target=target, ceiling_frac=ceiling_frac,
                            level=kw["level"], seed=kw["seed"])
    if plot_path is not None:
        save_chart(scale_chart(result), plot_path)
    if as_json:
        click.echo(out.to_json(result.to_dict()))
        return
    click.echo(scale_report(result))
    if plot_path is not None:
        click.echo(f"\nwrote {plot_path}")


def _echo_forecast(result: Forecast, *, law: str) -> None:
    """The text report: a header line, the table, and in rank_at mode the crossovers."""
    q = result.query
    what = {"budget": "reward at budget", "target": f"compute to reach {out.num(q.target)}",
            "ceiling_frac": f"compute to reach {out.num(q.ceiling_frac)} of the gain",
            "rank_at": f"ranking at {out.num(q.rank_at)}"}[q.mode]
    table = out.compute_table if q.mode in ("target", "ceiling_frac") else out.reward_table
    click.echo(f"{result.metric} vs {result.x_axis}: {what}; {result.level:.0%} intervals, "
               f"{law} law")
    click.echo(table(result.table))
    if result.ranking is not None:
        ranking = result.ranking
        click.echo(f"\nP(leader really leads at {out.num(q.rank_at)}) = "
                   f"{ranking.p_leader_leads:.3f}")
        click.echo("crossovers:")
        click.echo(out.crossover_table(ranking.crossovers))
        if ranking.skipped:
            click.echo(f"not ranked (fit failed): {', '.join(ranking.skipped)}")
        if ranking.unidentified:
            click.echo(f"warning: the ceilings of {', '.join(ranking.unidentified)} are not "
                       "identified by their points (asymptote_not_identified or "
                       "ceiling_above_plateau), so this ranking and P(leader leads) rest on "
                       "extrapolated ceilings; collect compute past C_mid before trusting them")


def _saved_fits(store: str | None, metric: str, kw: dict[str, Any]) -> list[Any]:
    root = store_path(store)
    fits = load_fits(root, metric=metric, x=kw["x"], law=kw["law"], by=kw["by"])
    if not fits:
        raise click.UsageError(
            f"no saved fits of {metric!r} vs {kw['x']} ({kw['law']}, by {','.join(kw['by'])}) in "
            f"{str(root)!r}; run `rlscale fit --metric {metric} --save` first, or drop --saved")
    return fits


@click.command("backtest")
@store_option
@fit_options(exclude=("max_x",), defaults={"level": 0.9})
@click.option("--cut", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Fit each group on compute up to FRAC x its largest compute (0.25: forecast "
                   "4x past the data).")
@click.option("--cut-x", type=click.FloatRange(0, min_open=True), default=None,
              help="Fit every group on compute up to X (on the --x axis).")
@click.option("--forecast", "forecast_kind", type=click.Choice(FORECASTS),
              default="ensemble", show_default=True,
              help=FORECAST_HELP)
@click.option("--scale-by", default=None, metavar="KEY", help=SCALE_BY_HELP)
@click.option("--leave-largest-out", is_flag=True,
              help="With --scale-by: fit the scale laws on every scale but the largest and "
                   "score the forecast of its whole curve against the largest fitted scale's "
                   "curve unchanged, with interval coverage.")
@click.option("--recipe", default=None, help=RECIPE_HELP)
@click.option("--json", "as_json", is_flag=True,
              help="Print {'summary': [...], 'points': [...]} JSON, not a table.")
@click.pass_context
def backtest_command(ctx: click.Context, store: str | None, cut: float | None,
                     cut_x: float | None, forecast_kind: str, scale_by: str | None,
                     leave_largest_out: bool, recipe: str | None, as_json: bool,
                     **fit_opts: Any) -> None:
    """Fit each group only up to a cut, forecast the points past it, and score the forecast.

    Reports per group and overall: mean and max absolute error of the mean forecast, and how
    often the prediction interval covered the observed value (compare with the nominal level).

    \b
    Examples:
        rlscale backtest --metric reward --cut 0.25
        rlscale backtest --metric reward --cut-x 5000 --bootstrap 200 --resample runs --json
        rlscale backtest --metric reward --scale-by model_params --leave-largest-out
    """
    if (scale_by is None) != (not leave_largest_out):
        raise click.UsageError("--leave-largest-out and --scale-by KEY go together")
    if scale_by is not None:
        points, kw = _scale_points(ctx, store, recipe, fit_opts,
                                   [*SCALE_FIT, "leave_largest_out"])
        fits = fit_scales(points, key=scale_by, metric=fit_opts["metric"], **kw)
        bt = scale_backtest(fits, key=scale_by, metric=fit_opts["metric"], x_axis=kw["x"],
                            level=kw["level"], seed=kw["seed"])
        click.echo(out.to_json(bt.to_dict()) if as_json else scale_backtest_report(bt))
        return
    if (cut is None) == (cut_x is None):
        raise click.UsageError("give exactly one of --cut FRAC or --cut-x X")
    kw = fit_kwargs(fit_opts)
    points = select_recipe(load_store_points(store, fit_opts["metric"]), recipe)
    kw["x"] = resolve_x(points, fit_opts["metric"], kw["x"])
    result = backtest(points, metric=fit_opts["metric"], cut=cut, cut_x=cut_x,
                      forecast=forecast_kind, **kw)
    if as_json:
        click.echo(out.to_json(result.to_dict()))
        return
    what = f"cut at {cut:g} of each group's compute" if cut is not None else f"cut at {cut_x:g}"
    click.echo(f"backtest of {result.metric} vs {result.x}, {what}, "
               f"{result.level:.0%} prediction intervals, {forecast_kind} forecast")
    click.echo(out.backtest_table(result.summary))


COMMANDS = [forecast_command, backtest_command]
