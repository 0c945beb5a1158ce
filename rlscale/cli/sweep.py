"""``rlscale sweep``: run a sweep spec locally or on a Ray cluster."""

from __future__ import annotations

from typing import Any

import click

from rlscale.cli._common import store_option, store_path
from rlscale.store import Store
from rlscale.sweep import run as sw
from rlscale.sweep.executors import EXECUTORS, make_executor
from rlscale.sweep.progress import ProgressView
from rlscale.text import short


@click.command("sweep")
@click.argument("spec_path", metavar="SPEC.toml", type=click.Path(dir_okay=False))
@store_option
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="Where jobs run: a local process pool, a Ray cluster, or in this process.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="local: processes (default one per core; each gets cores // workers threads). "
                   "ray: CPUs of the local Ray instance it starts.")
@click.option("--cores", type=click.IntRange(min=1), default=None,
              help="local: the cores this sweep may use (default: all of the machine's), e.g. "
                   "to share it with another sweep; each worker gets cores // workers threads.")
@click.option("--address", default=None,
              help="Ray cluster to submit to (e.g. 'auto', 'ray://head:10001'); "
                   "default: start a local Ray instance.")
@click.option("--dry-run", is_flag=True,
              help="Print the jobs and their estimated compute, run nothing.")
@click.option("--resume", is_flag=True,
              help="Continue a sweep: skip complete runs, resume killed or failed ones.")
@click.option("--refresh", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="Seconds between progress updates.")
def sweep(spec_path: str, store: str | None, executor: str, workers: int | None,
          cores: int | None, address: str | None, dry_run: bool, resume: bool, refresh: float) -> None:
    """Run every job of a sweep spec (base config x grid/points x seeds) into the store.

    Run ids are NAME-KEY=VALUE-...-sSEED, so rerunning with --resume finds the runs again:
    complete runs are skipped, killed ones resume from their checkpoints, and a job that fails
    is reported without stopping the others (exit code 1 if any failed).

    \b
    Examples:
        rlscale sweep runs/pretrain_study.toml --dry-run
        rlscale sweep runs/pretrain_study.toml --workers 4
        rlscale sweep runs/pretrain_study.toml --workers 1 --cores 1   # beside another job
        rlscale sweep runs/pretrain_study.toml --resume
        rlscale sweep runs/pretrain_study.toml --executor ray --address auto
    """
    if address is not None and executor != "ray":
        raise click.UsageError("--address is for --executor ray")
    if cores is not None and executor != "local":
        raise click.UsageError("--cores is for --executor local")
    spec = sw.load_spec(spec_path)
    st = Store(store_path(store))
    if dry_run:
        _print_plan(spec, st)
        return
    view = ProgressView(st, name=spec.name, metric=spec.metric)
    result = sw.run_sweep(spec, store=st, resume=resume, refresh_s=refresh, on_update=view,
                          executor=lambda: make_executor(executor, workers=workers,
                                                         address=address, cores=cores))
    counts = result.counts()
    click.echo(f"sweep {spec.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
               + f"; state in {sw.sweep_state_path(st, spec.name)}")
    for job in result.failed:
        click.echo(f"FAILED {job.job_id}: {job.error}", err=True)
    if result.failed:
        raise click.exceptions.Exit(1)


def _print_plan(spec: Any, store: Store) -> None:
    jobs = sw.resolve_jobs(spec)
    plan = sw.plan_jobs(jobs, store)
    estimates = sw.estimate_jobs(spec, jobs)
    keys = spec.varied_keys
    header = ["run_id", "action", *keys, "seed", "flops", "device_h"]
    rows = []
    for p, est in zip(plan, estimates):
        rows.append([p.job.job_id, p.action, *(short(p.job.varied[k], ".3g") for k in keys),
                     str(p.job.seed), short(None if est is None else est["flops"], ".3g"),
                     short(None if est is None else est["device_hours"], ".3g")])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    todo = [(p, e) for p, e in zip(plan, estimates) if p.action != "skip"]
    n = {a: sum(p.action == a for p in plan) for a in ("start", "resume", "skip")}
    jobs = "1 job" if len(plan) == 1 else f"{len(plan)} jobs"
    line = f"{jobs}: {n['start']} to start, {n['resume']} to resume, {n['skip']} complete"
    if todo and all(e is not None for _, e in todo):
        flops, hours = _total(todo)
        line += f"; estimated compute to run: {flops:.3g} FLOPs, {hours:.3g} device-hours"
    click.echo(line + f" (resources per job: {spec.num_cpus:g} CPU, {spec.num_gpus:g} GPU)")


def _total(todo: list[tuple[Any, dict[str, float]]]) -> tuple[float, float]:
    """Summed FLOPs and device-hours, counting the ``shared_flops`` of a job group once."""
    flops = hours = 0.0
    seen: set[str] = set()
    for planned, est in todo:
        share = 0.0
        group = planned.job.group
        if group is not None and group in seen and est["flops"] > 0:
            share = est.get("shared_flops", 0.0) / est["flops"]
        if group is not None:
            seen.add(group)
        flops += est["flops"] * (1 - share)
        hours += est["device_hours"] * (1 - share)
    return flops, hours


COMMANDS = [sweep]
