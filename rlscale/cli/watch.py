"""``rlscale watch``: re-ingest logs as they grow and print the fit, forecast and trend each time."""

from __future__ import annotations

import time
from typing import Any

import click
import numpy as np

from rlscale.cli._common import max_expand_option, store_option, store_path
from rlscale.cli._fitopts import fit_options
from rlscale.errors import InputError
from rlscale.fit import fit
from rlscale.forecast.curve import curve
from rlscale.forecast.run import ForecastQuery, run_forecast
from rlscale.ingest.options import FORMATS, parse_set
from rlscale.ingest.watch import poll_logs
from rlscale.store import load_points
from rlscale.text import group_label, interval, num


def _sleep(seconds: float) -> None:
    """The wait between polls (a test replaces it to drive the loop without waiting)."""
    time.sleep(seconds)


def _trend(c: Any, x_now: float, budget: float, level: float) -> str:
    """Still rising, plateaued or declining: what the fitted curve gains from the last point's
    compute ``x_now`` to ``budget``, against the noise of one point (the fit's residual sd).

    The gain is taken over the fit's joint draws: ``still rising`` when its lower ``level``
    quantile exceeds the residual sd (the curve will visibly gain, whichever draw is right),
    ``declining`` when its upper quantile is below minus the residual sd, ``plateaued`` when the
    whole interval lies within one residual sd of zero, and ``uncertain`` otherwise (the
    interval is too wide to tell). A small local stand-in, to be swapped for a shared verdict.
    """
    if not budget > x_now:
        return "budget reached"
    xs = np.array([x_now, budget], float)
    draws = c.mean_draws(xs) if c.n_draws else c.mean(xs)[None, :]
    gains = draws[:, 1] - draws[:, 0]
    gains = gains[np.isfinite(gains)]
    if not len(gains):
        return "uncertain"
    tail = (1 - level) / 2
    lo, hi = np.quantile(gains, [tail, 1 - tail])
    tol = c.noise_sd
    if lo > tol:
        return "still rising"
    if hi < -tol:
        return "declining"
    if lo >= -tol and hi <= tol:
        return "plateaued"
    return "uncertain"


def update_lines(results: list[Any], store: Any, *, metric: str, x: str, budget: float | None,
                 fit_kw: dict[str, Any], number: int) -> list[str]:
    """The lines of one update: the runs and their points, then per group the fit, the forecast
    at the budget and the trend (or why there is no fit yet)."""
    run_ids = [r.run_id for r in results]
    added = sum(r.n_points if r.status in ("written", "replaced") else (r.added or 0)
                for r in results)
    points = load_points(store, metric=metric, runs=run_ids, with_meta=True)
    lines = [f"update {number}: {', '.join(run_ids)}: {len(points)} {metric} points, "
             f"{sum(r.n_points for r in results)} in all (+{added} new)"]
    if points.empty:
        return lines + [f"  no {metric!r} points yet"]
    held = [f"{r.path} line {r.held_line}" for r in results if r.held_line is not None]
    if held:
        lines[0] += f"; incomplete, held back: {', '.join(held)}"
    try:
        fits = fit(points, metric=metric, x=x, **fit_kw)
    except InputError as exc:
        return lines + [f"  no fit yet: {exc}"]
    fits = fits if isinstance(fits, list) else [fits]
    for f in fits:
        lines.extend(_fit_lines(f, points, x=x, budget=budget))
    return lines


def _fit_lines(f: Any, points: Any, *, x: str, budget: float | None) -> list[str]:
    head = f"  {group_label(f.group, sep=', ')}: {f.law} fit on {f.n_points} points"
    warns = ",".join(dict.fromkeys(f.warning_codes))
    if not f.ok:
        return [f"{head}: not fitted ({warns or 'failed'})"]
    params = "  ".join(f"{k}={num(p.value)} {interval(p.lower, p.upper)}" if p.vary
                       else f"{k}={num(p.value)} (fixed)" for k, p in f.params.items())
    lines = [f"{head}: {params}" + (f"  warnings: {warns}" if warns else "")]
    x_now = float(np.nanmax(f.data["x"])) if len(f.data) else float("nan")
    at = float(budget) if budget is not None else 2 * x_now
    row = run_forecast(f, ForecastQuery.create(budgets=[at]), level=f.level).table.iloc[0]
    trend = _trend(curve(f), x_now, at, f.level)
    band = interval(row["mean_lower"], row["mean_upper"])
    lines.append(f"    at {x}={num(at)}: {num(row['mean'])} {band} (last point at "
                 f"{num(x_now)}): {trend}")
    return lines


@click.command("watch")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@store_option
@fit_options(only=("metric", "x", "by", "law", "burn_in", "r0", "level"),
             defaults={"x": "step", "by": "run_id"})
@click.option("--budget", type=click.FloatRange(0, min_open=True), default=None,
              help="Forecast the reward at this compute (on the --x axis). Default: twice the "
                   "last point's.")
@click.option("--interval", "every", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Seconds between polls of the logs' size and modification time.")
@click.option("--max-updates", type=click.IntRange(min=1), default=None,
              help="Stop after this many updates (default: run until interrupted).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Log format, as for ingest.")
@click.option("--run-id", default=None, help="Run id, as for ingest.")
@click.option("--recipe", default=None, help="Recipe stored with the run(s), as for ingest.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Metadata, repeatable, as for ingest.")
@click.option("--step-col", default=None, help="Column holding the step, as for ingest.")
@max_expand_option
def watch_command(paths: tuple[str, ...], store: str | None, metric: str, x: str, by: str,
                  law: str, burn_in: float | None, r0: Any, level: float, budget: float | None,
                  every: float, max_updates: int | None, fmt: str, run_id: str | None,
                  recipe: str | None, sets: tuple[str, ...], step_col: str | None,
                  max_expand: int | None) -> None:
    """Re-ingest logs as they grow; at each update print the fit, the forecast and the trend.

    Polls the logs every --interval seconds (no daemon) and re-ingests those whose size or
    modification time changed, as `rlscale ingest` would (new points appended, old ones checked
    unchanged). A last line without its newline is held back until the writer finishes it. Each
    update that brings new points prints the runs and points, the law's parameters with
    intervals (or its warnings), the forecast at --budget and whether the curve is still rising,
    plateaued or declining. Ctrl-C stops it.

    \b
    Examples:
        rlscale watch logs/run1.csv --metric reward --budget 5000
        rlscale watch logs/ --metric reward --x gpu_hours --budget 1e4 --interval 60
    """
    if law == "all":
        raise click.BadParameter("watch fits one law", param_hint="--law")
    root = store_path(store)
    by_cols = [b.strip() for b in by.split(",") if b.strip()]
    fit_kw = {"by": by_cols, "law": law, "burn_in": burn_in, "r0": r0, "level": level}
    polls = poll_logs(list(paths), root, interval=every, sleep=_sleep, format=fmt, run_id=run_id,
                      recipe=recipe, set_values=parse_set(sets), step_col=step_col,
                      max_expand=max_expand)
    n = 0
    try:
        for results in polls:
            n += 1
            lines = update_lines(results, root, metric=metric, x=x, budget=budget,
                                 fit_kw=fit_kw, number=n)
            click.echo("\n".join(lines))
            if max_updates is not None and n >= max_updates:
                break
    except KeyboardInterrupt:
        click.echo(f"stopped (interrupted) after {n} update{'s' * (n != 1)}")
        return
    finally:
        polls.close()
    click.echo(f"stopped after {n} update{'s' * (n != 1)} (--max-updates)")


COMMANDS = [watch_command]
