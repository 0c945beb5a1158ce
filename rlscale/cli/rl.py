"""``rlscale run`` and ``rlscale pretrain``: small RL jobs (torch is imported only when they run)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rlscale.cli._common import parse_ints, store_option, store_path
from rlscale.errors import input_error
from rlscale.rl.config import JobConfig
from rlscale.rl.flops import estimate_job
from rlscale.store import Store


def _load_config(config_path: str | None, overrides: tuple[str, ...], device: str | None):
    config = JobConfig.from_toml(config_path) if config_path else JobConfig()
    extra = list(overrides) + ([f"device={device}"] if device else [])
    return config.with_overrides(extra) if extra else config


def _print_config(config) -> None:
    click.echo(json.dumps(config.to_dict(), indent=2))


def _threads(threads: int | None, why: str = "--threads") -> None:
    """Passive OpenMP waiting and the thread count, before torch is imported (rl/threads.py)."""
    from rlscale.rl.threads import setup_threads

    click.echo(f"threads: {setup_threads(threads, why).reason}")


_set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                           help="Override a config field, e.g. --set rl.lr=1e-4 (repeatable).")
_device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                              help="Where to run (default: the config's device, 'auto').")
_THREADS_HELP = "torch CPU threads (default: the physical cores not busy, from the load average"


def _threads_option(more: str = ""):
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help=f"{_THREADS_HELP}{more}).")


@click.command("run")
@click.argument("config_path", metavar="[CONFIG.toml]", required=False,
                type=click.Path(exists=True, dir_okay=False))
@_set_option
@store_option
@_device_option
@_threads_option("; on --resume, the count the run started with")
@click.option("--resume", "resume_id", default=None, metavar="RUN_ID",
              help="Continue a killed run from its last checkpoint (config read from the store).")
@click.option("--dry-run", is_flag=True, help="Print the config and a compute estimate; run nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def run(config_path, overrides, store, device, threads, resume_id, dry_run, no_progress) -> None:
    """Pretrain (or reuse) a base, run RL on it, and write its points into the store.

    \b
    Examples:
        rlscale run                                  # the default job (~2 min on 2 cores)
        rlscale run job.toml --set rl.recipe=dapo --set rl.lr=1e-4 --store runs/store
        rlscale run --dry-run --set pretrain.tokens=2e6
        rlscale run --resume rl-grpo-d128-L4-1a2b3c4d-s0
    """
    root = store_path(store)
    why = "--threads"
    if resume_id:
        if config_path or overrides:
            raise click.UsageError("--resume takes its config from the store; drop CONFIG/--set")
        meta = Store(root).read_meta(resume_id)
        if not meta.config:  # an ingested run (or one with no job config): nothing to resume
            came = f" (ingested from {meta.source.get('path')})" if meta.source else ""
            raise input_error(f"run {resume_id!r} is an ingested run{came}, not an RL run",
                              path=f"{root}/{resume_id}/run.json",
                              expected="the id of a run written by rlscale run or rlscale sweep")
        config = JobConfig.from_stored(meta.config, source=f"{root}/{resume_id}/run.json")
        if device:
            config = config.with_overrides([f"device={device}"])
        if threads is None and isinstance(meta.metadata.get("threads"), int):
            threads = meta.metadata["threads"]  # same count: the resumed curve retraces the run
            why = "the count the run started with; --threads N overrides"
    else:
        config = _load_config(config_path, overrides, device)
    _print_config(config)
    if dry_run:
        from rlscale.rl.pretrain import find_base

        est = estimate_job(config, include_pretrain=find_base(config) is None)
        click.echo(json.dumps(est, indent=2))
        return
    _threads(threads, why)
    from rlscale.rl.runner import run_job

    run_id = run_job(config, store=root, resume=bool(resume_id), progress=not no_progress)
    click.echo(f"wrote run {run_id} to {root}")


@click.command("pretrain")
@click.argument("config_path", metavar="[CONFIG.toml]", required=False,
                type=click.Path(exists=True, dir_okay=False))
@_set_option
@_device_option
@_threads_option()
@click.option("--force", is_flag=True, help="Train again even if a cached base exists.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def pretrain(config_path, overrides, device, threads, force, no_progress) -> None:
    """Pretrain the base model a job config names, and cache it by config hash.

    \b
    Examples:
        rlscale pretrain                              # the default base (~1M params)
        rlscale pretrain --set pretrain.tokens=2e6 --set pretrain.ops_max=3
    """
    config = _load_config(config_path, overrides, device)
    _print_config(config)
    _threads(threads)
    from rlscale.rl.pretrain import find_base, get_base
    from rlscale.rl.runner import pick_device

    found = None if force else find_base(config)
    if found is not None:
        click.echo(f"cached base: {found}")
        return
    get_base(config, device=pick_device(config.device), progress=not no_progress, force=True)
    found = find_base(config)
    info = json.loads((Path(found) / "base.json").read_text())
    click.echo(f"pretrained base {found}: {info['n_params']:,} params, {info['tokens']:,} tokens, "
               f"{info['wall_s']:.0f} s, final loss {info['final_loss']:.4f}")


@click.command("chance")
@click.argument("config_path", metavar="[CONFIG.toml]", required=False,
                type=click.Path(exists=True, dir_okay=False))
@_set_option
@click.option("--difficulties", default=None, metavar="D1,D2,...",
              help="Numbers of operations (default: the config's eval.ops_min..ops_max).")
@click.option("--problems", type=click.IntRange(min=20), default=4000, show_default=True,
              help="Problems sampled per difficulty (half learn each rule's table, half score it).")
def chance(config_path, overrides, difficulties, problems) -> None:
    """The chance level of a job's task: how often a rule that does no arithmetic is right.

    Per difficulty: the best such rule's accuracy on the final answer, and its chance of earning
    the task's reward (the same where a bare answer is rewarded; where only verified work is,
    every step's result must be guessed). No model is involved; torch is not needed.

    \b
    Examples:
        rlscale chance                                 # the default job's task (one digit)
        rlscale chance --set task.digits=2 --set task.operators=+- --set task.reward=verified
    """
    from rlscale.rl.chance import chance_levels, chance_table

    config = _load_config(config_path, overrides, None)
    diffs = (parse_ints(difficulties, name="--difficulties")
             or list(range(config.eval.ops_min, config.eval.ops_max + 1)))
    t = config.task
    click.echo(f"task: {t.name}, {t.digits} digit(s), operators {t.operators!r}, "
               f"reward {t.reward!r}; {problems} problems per difficulty")
    click.echo(chance_table(chance_levels(t, diffs, problems=problems)))


COMMANDS = [run, pretrain, chance]
