"""``rlscale fit``: fit compute laws to the curves in a store; print a table or JSON; save."""

from __future__ import annotations

import json
from typing import Any

import click
import pandas as pd

from rlscale.cli._common import store_option, store_path
from rlscale.cli._fitopts import fit_options, load_store_points, resolve_x
from rlscale.fit import fit, save_fits
from rlscale.forecast.verdict import verdicts
from rlscale.text import group_label


def _cell(p: Any) -> str:
    if p is None:
        return ""
    if not p.vary:
        return f"{p.value:.4g} (fixed)"
    return f"{p.value:.4g} [{p.lower:.4g}, {p.upper:.4g}]"


def format_table(fits: list) -> str:
    """One line per fit: group, law, points, window, parameters with intervals, gof, warnings."""
    names: list[str] = []
    for f in fits:
        names += [n for n in f.params if n not in names]
    mixed = len({f.law for f in fits}) > 1
    rows = []
    for f in fits:
        row: dict[str, Any] = {"group": group_label(f.group, sep=", "),
                               "law": f.law, "n": f.n_points,
                               "window": f"{f.window[0]:.4g}..{f.window[1]:.4g}"}
        if mixed:  # laws differ: the ceiling with its interval, the rest as name=value
            ceiling = f.law_obj.ceiling
            row["ceiling"] = _cell(f.params.get(ceiling)) if f.ok and ceiling else (
                "" if f.ok else "NOT FITTED")
            row["params"] = " ".join(f"{k}={p.value:.4g}" for k, p in f.params.items()
                                     if k != ceiling)
        else:
            for n in names:
                row[n] = _cell(f.params.get(n)) if f.ok else ("NOT FITTED" if n == names[0]
                                                              else "")
        row["rmse"] = f"{f.gof['rmse']:.3g}" if f.ok else ""
        held = f.gof.get("heldout_rmse")
        row["heldout"] = f"{held:.3g}" if held is not None else ""
        if any("rank_heldout" in g.gof or "rank_aic" in g.gof for g in fits):
            row["rank(heldout/aic/bic)"] = "/".join(str(f.gof.get(k, "-")) for k in
                                                    ("rank_heldout", "rank_aic", "rank_bic"))
        row["warnings"] = ",".join(dict.fromkeys(f.warning_codes)) or "-"
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def verdict_lines(fits: list) -> str:
    """``verdicts:`` and one line per fit (:meth:`rlscale.forecast.verdict.Verdict.text`)."""
    return "\n".join(["verdicts:", *(f"  {v.text()}" for v in verdicts(fits))])


@click.command("fit")
@store_option
@fit_options()
@click.option("--save", is_flag=True,
              help="Store the fits under <store>/_fits/ for forecast and plot to reuse.")
@click.option("--json", "as_json", is_flag=True, help="Print {'fits': [...]} JSON, not a table.")
def fit_command(store: str | None, metric: str, x: str | None, by: str, law: str,
                burn_in: float | None, max_x: float | None, r0: str, loss: str,
                bootstrap: int, interval: str, resample: str, method: str, level: float, seed: int,
                drop_nan: bool, save: bool, as_json: bool) -> None:
    """Fit a compute-performance law per group of runs.

    \b
    Examples:
        rlscale fit --metric reward --x gpu_hours --by recipe
        rlscale fit --metric reward --burn-in 1500 --bootstrap 1000 --resample runs --save
        rlscale fit --metric reward --law all --json
        rlscale fit --metric reward --method scalerl-grid --r0 first
        rlscale fit --metric reward --max-x 3000 --interval profile
    """
    points = load_store_points(store, metric)
    x = resolve_x(points, metric, x)
    by_cols = [b.strip() for b in by.split(",") if b.strip()]
    fits = fit(points, metric=metric, x=x, law=law, by=by_cols, burn_in=burn_in, max_x=max_x,
               r0=r0, loss=loss, bootstrap=bootstrap, resample=resample, method=method,
               level=level, seed=seed, nan="drop" if drop_nan else "error", interval=interval)
    if as_json:
        docs = [{**f.summary(), "verdict": v.to_dict()} for f, v in zip(fits, verdicts(fits))]
        click.echo(json.dumps({"fits": docs}, indent=2, allow_nan=False))
    else:
        laws = "every law, ranked" if law == "all" else f"{law} law"
        click.echo(f"{metric} vs {x}: {laws}, {level:.0%} intervals")
        click.echo(format_table(fits))
        if law != "all":
            click.echo(verdict_lines(fits))
    if save:
        for path in save_fits(store_path(store), fits, by=by_cols):
            click.echo(f"saved fits to {path}", err=as_json)


COMMANDS = [fit_command]
