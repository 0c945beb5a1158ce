"""``rlscale demo``: the pretraining-levels x recipes study, end to end, on this machine's CPUs."""

from __future__ import annotations

import click

from rlscale.cli._common import store_option, store_path
from rlscale.demo import run_demo


@click.command("demo")
@store_option
@click.option("--out", type=click.Path(file_okay=False), default="demo-out", show_default=True,
              help="Directory for report.html, levels.png, curves.png, params.png, params.csv.")
@click.option("--quick", is_flag=True,
              help="A tiny configuration (seconds per job; for CI and a first look).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Parallel jobs (default: one per core; each gets cores // workers threads).")
@click.option("--spec", "spec", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Run another sweep spec of the demo's shape instead of the shipped one.")
def demo(store: str | None, out: str, quick: bool, workers: int | None, spec: str | None) -> None:
    """Pretraining levels x RL recipes: run, fit ScaleRL's law, report how A and B move.

    Tiny transformers pretrained at three levels (shipped bases, no pretraining on a fresh
    install) get RL with two recipes; the sigmoid is fitted per (level, recipe) and the report
    and charts show the ceiling A and the exponent B against the pretraining level. Rerunning
    reuses every complete run in the store; an interrupted demo resumes.

    \b
    Examples:
        rlscale demo                                  # 1.5-8 min on 2 cores
        rlscale demo --quick --store /tmp/s --out /tmp/demo
        rlscale demo --workers 4 --out demo-out
    """
    run_demo(store=store_path(store), out=out, quick=quick, workers=workers, spec=spec)


COMMANDS = [demo]
