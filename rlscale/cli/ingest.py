"""``rlscale ingest``, ``rlscale runs``, ``rlscale show``: get logs into the store and look at it."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from rlscale.cli._common import store_option, store_path
from rlscale.ingest.options import FORMATS, parse_set
from rlscale.ingest.pipeline import ingest_paths
from rlscale.store import COMPUTE_AXES, X_AXES, Store


class AxisChoice(click.Choice):
    """An axis of :data:`rlscale.store.X_AXES`; ``steps``, the spelling before it, means ``step``."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert("step" if value == "steps" else value, param, ctx)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@store_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Log format; auto tells it from the name (and .json content).")
@click.option("--run-id", default=None, help="Run id (default: from the file or directory name).")
@click.option("--recipe", default=None, help="Recipe name stored with the run(s).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Metadata, repeatable: --set pretrain_tokens=2e9; seed/task/model fill the "
                   "run's fields.")
@click.option("--step-col", default=None, help="Column holding the step (default: step, _step, "
              "global_step, ... in any case).")
@click.option("--x-col", default=None, help="Column to use as a compute axis (with --x-unit).")
@click.option("--x-unit", type=AxisChoice(X_AXES), default=None,
              help="Which axis --x-col is (step: use it as the step column).")
@click.option("--metric", "metrics", multiple=True,
              help="Keep only this metric (column or name); repeatable. Default: all numeric.")
@click.option("--run-col", default=None,
              help="Column naming the run of each row: one table -> many runs.")
@click.option("--replace", is_flag=True, help="Overwrite runs that exist with another source.")
@click.option("--drop-nonfinite", is_flag=True,
              help="Drop NaN/inf metric values (and empty long-table values) instead of failing.")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def ingest_cmd(paths: tuple[str, ...], store: str | None, fmt: str, run_id: str | None,
               recipe: str | None, sets: tuple[str, ...], step_col: str | None,
               x_col: str | None, x_unit: str | None, metrics: tuple[str, ...],
               run_col: str | None, replace: bool, drop_nonfinite: bool, dry_run: bool,
               as_json: bool) -> None:
    """Ingest logs (CSV/TSV, JSONL/JSON, Parquet, W&B exports, TensorBoard, trainer_state.json).

    A directory ingests every log inside it, one run per file (TensorBoard: per run directory).
    Every log is validated before anything is written: one bad file leaves the store unchanged.

    \b
    Examples:
        rlscale ingest examples/scalerl_seed0.csv --recipe scalerl --set seed=0
        rlscale ingest examples/ --store runs/store
        rlscale ingest history.csv --format wandb --x-col gpu_time --x-unit gpu_hours
        rlscale ingest all_runs.csv --run-col run_id --metric reward
    """
    results = ingest_paths(
        list(paths), store_path(store), dry_run=dry_run, format=fmt, run_id=run_id,
        recipe=recipe, set_values=parse_set(sets), step_col=step_col, x_col=x_col,
        x_unit=x_unit, metrics=metrics, run_col=run_col, replace=replace,
        drop_nonfinite=drop_nonfinite,
    )
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for r in results:
        what = {"written": "ingested", "replaced": "replaced", None: "valid (dry run)",
                "unchanged": "unchanged (same source already ingested)"}[r.status]
        click.echo(f"{what}: {r.run_id} <- {r.path} [{r.format}] {r.n_points} points, "
                   f"metrics {', '.join(r.metrics)}")


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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run, as a list.")
def runs_cmd(store: str | None, as_json: bool) -> None:
    """List runs: recipe, metadata, metrics, point count, compute range.

    \b
    Examples:
        rlscale runs
        rlscale runs --store runs/store --json
    """
    runs = Store(store_path(store)).runs()
    rows = [{k: _clean(v) for k, v in row.items()} for row in runs.to_dict("records")]
    for row in rows:  # pandas turns an int column with gaps into floats
        if isinstance(row.get("seed"), float) and row["seed"].is_integer():
            row["seed"] = int(row["seed"])
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
            f"{a} {_fmt(row[f'min_{a}'])}..{_fmt(row[f'max_{a}'])}"
            for a in X_AXES if a in COMPUTE_AXES and row.get(f"max_{a}") is not None)
        meta = [f"{k}={row[k]}" for k in ("seed", "task", "model") if row.get(k) is not None]
        meta += [f"{k}={_fmt(v)}" for k, v in row.items() if k not in fixed and not
                 k.startswith(("min_", "max_")) and v is not None]
        click.echo(f"{row['run_id']}  recipe={row['recipe']}  points={row['n_points']}  "
                   f"steps<={row['max_step']}  {compute or 'no compute axis'}  "
                   f"metrics={','.join(row['metrics'])}" + (f"  {' '.join(meta)}" if meta else ""))


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


@click.command("show")
@click.argument("run_id")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print meta and summary as JSON.")
def show_cmd(run_id: str, store: str | None, as_json: bool) -> None:
    """Show one run: its metadata and a per-metric summary (points, steps, first/last/min/max).

    \b
    Examples:
        rlscale show scalerl_seed0
        rlscale show scalerl_seed0 --json
    """
    st = Store(store_path(store))
    meta = st.read_meta(run_id)
    pts = st.read_points_table(run_id).to_pandas()
    summary = []
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
    if as_json:
        click.echo(json.dumps({"meta": meta.to_dict(), "metrics": summary}, indent=2, default=str))
        return
    d = meta.to_dict()
    for key in ("run_id", "recipe", "seed", "task", "model", "status", "created"):
        click.echo(f"{key}: {d[key]}")
    for key, value in sorted(d["metadata"].items()):
        click.echo(f"metadata.{key}: {value}")
    if d["source"]:
        src = d["source"]
        click.echo(f"source: {src.get('path')} [{src.get('format')}] sha256 {str(src.get('sha256'))[:12]}")
    click.echo(f"{'metric':<28} {'n':>6} {'steps':>13} {'first':>10} {'last':>10} {'min':>10} "
               f"{'max':>10}  compute")
    for r in summary:
        comp = " ".join(f"{k[4:]}<={_fmt(v)}" for k, v in r.items() if k.startswith("max_"))
        click.echo(f"{r['metric']:<28} {r['n']:>6} {r['first_step']:>6}-{r['last_step']:<6} "
                   f"{r['first']:>10.4g} {r['last']:>10.4g} {r['min']:>10.4g} {r['max']:>10.4g}  "
                   f"{comp}")


COMMANDS = [ingest_cmd, runs_cmd, show_cmd]
