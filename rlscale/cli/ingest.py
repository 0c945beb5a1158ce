"""``rlscale ingest``: get logs into the store (``runs`` and ``show`` look at it: cli/store.py)."""

from __future__ import annotations

import json
from typing import Any

import click

from rlscale.cli._common import max_expand_option, store_option, store_path
from rlscale.ingest.options import FORMATS, parse_set
from rlscale.ingest.pipeline import IngestResult, ingest_paths
from rlscale.store import X_AXES


class AxisChoice(click.Choice):
    """An axis of :data:`rlscale.store.X_AXES`; ``steps``, the spelling before it, means ``step``."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert("step" if value == "steps" else value, param, ctx)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@store_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Log format; auto tells it from the name (and, for .json, .log and "
                   "framework files, the content).")
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
@click.option("--run-col", "run_cols", multiple=True,
              help="Column naming the run of each row: one table -> many runs (repeatable: the "
                   "values joined). Default: a column run_id, run, run_name or name.")
@click.option("--recipe-col", default=None,
              help="Column holding each run's recipe (default: a column named recipe).")
@click.option("--seed-col", default=None,
              help="Column holding each run's seed (default: a column named seed).")
@click.option("--run-prefix", default=None, metavar="PREFIX",
              help="Put PREFIX before every run id; {file} in it is the log's name "
                   "(--run-prefix '{file}-' keeps runs of two files apart).")
@click.option("--gpus", type=float, default=None,
              help="GPUs of the run: gpu_hours = cumulative per-step time (timing_s/step, "
                   "step_time, time/step) x GPUs / 3600.")
@click.option("--replace", is_flag=True, help="Overwrite runs that exist with another source.")
@click.option("--drop-nonfinite", is_flag=True,
              help="Drop NaN/inf metric values (and empty long-table values) instead of failing.")
@max_expand_option
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def ingest_cmd(paths: tuple[str, ...], store: str | None, fmt: str, run_id: str | None,
               recipe: str | None, sets: tuple[str, ...], step_col: str | None,
               x_col: str | None, x_unit: str | None, metrics: tuple[str, ...],
               run_cols: tuple[str, ...], recipe_col: str | None, seed_col: str | None,
               run_prefix: str | None, gpus: float | None, replace: bool, drop_nonfinite: bool,
               max_expand: int | None, dry_run: bool, as_json: bool) -> None:
    """Ingest logs (CSV/TSV, JSONL/JSON, Parquet, W&B exports, TensorBoard, trainer_state.json).

    Framework logs are told by their content: verl console logs and file-logger JSONL, SB3
    monitor.csv and progress.csv, MLflow mlruns directories.

    A directory ingests every log inside it, one run per file (TensorBoard: per run directory).
    Every log is validated before anything is written: one bad file leaves the store unchanged.

    \b
    Examples:
        rlscale ingest examples/scalerl_seed0.csv --recipe scalerl --set seed=0
        rlscale ingest examples/ --store runs/store
        rlscale ingest history.csv --format wandb --x-col gpu_time --x-unit gpu_hours
        rlscale ingest all_runs.csv --run-col run_id --metric reward
        rlscale ingest a/runs.csv b/runs.csv --run-prefix '{file}-' --recipe-col algorithm
    """
    results = ingest_paths(
        list(paths), store_path(store), dry_run=dry_run, format=fmt, run_id=run_id,
        recipe=recipe, set_values=parse_set(sets), step_col=step_col, x_col=x_col,
        x_unit=x_unit, metrics=metrics, run_col=run_cols, recipe_col=recipe_col,
        seed_col=seed_col, run_prefix=run_prefix, gpus=gpus, replace=replace,
        drop_nonfinite=drop_nonfinite, max_expand=max_expand,
    )
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for r in results:
        click.echo(result_line(r))
    for note in dict.fromkeys(r.note for r in results if r.note):
        click.echo(f"note: {note}")


def result_line(r: IngestResult) -> str:
    """One line per run: what happened, where from, how many points (and how many were new)."""
    what = {"written": "ingested", "replaced": "replaced", None: "valid (dry run)",
            "appended": "appended (the log grew)",
            "unchanged": "unchanged (same source already ingested)"}[r.status]
    new = f" (+{r.added} new)" if r.added is not None else ""
    dropped = f" ({r.n_dropped} non-finite dropped)" if r.n_dropped else ""
    held = (f"; line {r.held_line} is incomplete (no newline yet), left for the next ingest"
            if r.held_line is not None else "")
    return (f"{what}: {r.run_id} <- {r.path} [{r.format}] {r.n_points} points{new}{dropped}, "
            f"metrics {', '.join(r.metrics)}{held}")


COMMANDS = [ingest_cmd]
