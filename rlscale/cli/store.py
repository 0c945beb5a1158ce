"""``rlscale runs`` and ``rlscale show``: look at what a store holds (pyarrow only, no pandas)."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from rlscale.cli._common import store_option, store_path, strict_option
from rlscale.errors import StoreError
from rlscale.store import COMPUTE_AXES, X_AXES, Store
from rlscale.store.damage import DamagedRun
from rlscale.store.liveness import shown_status
from rlscale.text import short


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return [_clean(v) for v in value]
    return value


@click.command("runs")
@store_option
@strict_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run, as a list.")
def runs_cmd(store: str | None, as_json: bool) -> None:
    """List runs: recipe, metadata, metrics, point count, compute range.

    A damaged run (unreadable run.json or points.parquet) is left out with a one-line warning on
    stderr naming it and its file; --strict refuses instead. `rlscale check` lists every problem.

    \b
    Examples:
        rlscale runs
        rlscale runs --store runs/store --json
    """
    runs = Store(store_path(store)).summaries()
    keys = list(dict.fromkeys(k for run in runs for k in run))  # every run lists every key
    rows = [{k: _clean(run.get(k)) for k in keys} for run in runs]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo(f"no runs in {store_path(store)}")
        return
    fixed = {"run_id", "recipe", "seed", "task", "model", "status", "source_path",
             "source_format", "n_points", "metrics", "max_step"}
    for row in rows:
        compute = ", ".join(
            f"{a} {short(float(row[f'min_{a}']))}..{short(float(row[f'max_{a}']))}"
            for a in X_AXES if a in COMPUTE_AXES and row.get(f"max_{a}") is not None)
        meta = [f"{k}={row[k]}" for k in ("seed", "task", "model") if row.get(k) is not None]
        meta += [f"{k}={short(v)}" for k, v in row.items() if k not in fixed and not
                 k.startswith(("min_", "max_")) and v is not None]
        click.echo(f"{row['run_id']}  recipe={row['recipe']}  points={row['n_points']}  "
                   f"steps<={row['max_step']}  {compute or 'no compute axis'}  "
                   f"metrics={','.join(row['metrics'])}" + (f"  {' '.join(meta)}" if meta else ""))


@click.command("show")
@click.argument("run_id")
@store_option
@strict_option
@click.option("--json", "as_json", is_flag=True, help="Print meta and summary as JSON.")
def show_cmd(run_id: str, store: str | None, as_json: bool) -> None:
    """Show one run: its metadata and a per-metric summary (points, steps, first/last/min/max).

    A damaged part of the run (run.json or points.parquet) is reported in a one-line warning and
    the rest shown; --strict refuses instead.

    \b
    Examples:
        rlscale show scalerl_seed0
        rlscale show scalerl_seed0 --json
    """
    st = Store(store_path(store))
    meta = pts = None
    try:
        meta = st.read_meta(run_id)
    except DamagedRun as exc:
        st.skip_damaged(exc)
    try:
        pts = st.read_points_table(run_id).to_pandas()
    except DamagedRun as exc:
        st.skip_damaged(exc)
    if meta is None and pts is None:
        raise StoreError(f"run {run_id!r} in {str(st.root)!r}: nothing readable (see above)")
    summary = []
    if pts is None:
        import pandas as pd

        pts = pd.DataFrame(columns=["metric", "step", "value", *COMPUTE_AXES])
    for metric, g in pts.groupby("metric", sort=True):
        g = g.sort_values("step")
        row = {"metric": metric, "n": len(g), "first_step": int(g["step"].iloc[0]),
               "last_step": int(g["step"].iloc[-1]), "first": float(g["value"].iloc[0]),
               "last": float(g["value"].iloc[-1]), "min": float(g["value"].min()),
               "max": float(g["value"].max())}
        for axis in (a for a in X_AXES if a in COMPUTE_AXES):
            if g[axis].notna().any():
                row[f"max_{axis}"] = _clean(g[axis].max())
        summary.append(row)
    d = meta.to_dict() if meta else {"run_id": run_id, "metadata": {}, "source": None}
    if meta:
        d["status"] = shown_status(meta.status, meta.writer)  # a killed writer's run is not running
    if as_json:
        click.echo(json.dumps({"meta": d if meta else None, "metrics": summary}, indent=2,
                              default=str))
        return
    for key in ("run_id", "recipe", "seed", "task", "model", "status", "created"):
        if key in d:
            click.echo(f"{key}: {d[key]}")
    for key, value in sorted(d["metadata"].items()):
        click.echo(f"metadata.{key}: {value}")
    if d["source"]:
        src = d["source"]
        click.echo(f"source: {src.get('path')} [{src.get('format')}] sha256 {str(src.get('sha256'))[:12]}")
    click.echo(f"{'metric':<28} {'n':>6} {'steps':>13} {'first':>10} {'last':>10} {'min':>10} "
               f"{'max':>10}  compute")
    for r in summary:
        comp = " ".join(f"{k[4:]}<={short(v)}" for k, v in r.items() if k.startswith("max_"))
        click.echo(f"{r['metric']:<28} {r['n']:>6} {r['first_step']:>6}-{r['last_step']:<6} "
                   f"{r['first']:>10.4g} {r['last']:>10.4g} {r['min']:>10.4g} {r['max']:>10.4g}  "
                   f"{comp}")


COMMANDS = [runs_cmd, show_cmd]
