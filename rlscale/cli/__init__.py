"""The ``rlscale`` command line: a thin shell over the library.

Each sub-command lives in a module of this package that exposes it in a module-level
``COMMANDS`` list. :data:`REGISTRY` names, for every command, that module and the command's
one-line help, and :func:`main` (a :class:`~rlscale.cli._common.LazyGroup`) imports a command's
module only when that command is looked up: ``rlscale --help`` and ``rlscale --version`` import
no command module, hence neither scipy nor pandas, and each command pays only for its own
imports. A new command goes into its module's ``COMMANDS`` and into :data:`REGISTRY`;
``tests/test_cli_startup.py`` fails when the two disagree (name, module or help line).
Look commands up with ``main.get_command(ctx, name)``: ``main.commands`` holds only the
loaded ones.

Start-up (``python benchmarks/startup.py --repeat 7``, 2 cores, load ~1.3, median wall time;
ratio to ``python -c "import click"``, 0.13 s): ``rlscale --version`` 0.9x, ``--help`` 0.8x,
``rlscale runs`` on the ingested ``examples/*.csv`` 0.61 s (4.7x): it reads the store with
pyarrow alone (``Store.summaries``), no pandas. Before the commands loaded lazily, every command,
``--version`` included, took 2.7-3.5 s (21-27x): each imported scipy, pandas and pyarrow.

Library errors (:class:`rlscale.errors.RLScaleError`) become ``click.ClickException`` here (in
:class:`~rlscale.cli._common.LibraryErrorGroup`), and nowhere else.
"""

from __future__ import annotations

import click

from rlscale import __version__

from ._common import Entry, LazyGroup

#: command name -> (module of this package, its one-line help as ``rlscale --help`` lists it)
REGISTRY: dict[str, Entry] = {
    "backtest": Entry("forecast", "Fit each group only up to a cut, forecast the points past it, "
                                  "and score the forecast."),
    "chance": Entry("rl", "The chance level of a job's task: how often a rule that does no "
                          "arithmetic is right."),
    "check": Entry("maint", "Verify every run of a store; print one line per problem and a "
                            "summary (exit 1 if any)."),
    "clean": Entry("maint", "Recover runs a crash left in a hidden copy, then remove what "
                            "killed writers left."),
    "demo": Entry("demo", "Pretraining levels x RL recipes: run, fit ScaleRL's law, report how A "
                          "and B move."),
    "fit": Entry("fit", "Fit a compute-performance law per group of runs."),
    "forecast": Entry("forecast", "Forecast each group's reward at a budget, or the compute for a "
                                  "reward, with intervals."),
    "headroom": Entry("analysis", "Model the RL ceiling A as a function of pretraining and "
                                  "forecast it at a larger budget."),
    "ingest": Entry("ingest", "Ingest logs (CSV/TSV, JSONL/JSON, Parquet, W&B exports, "
                              "TensorBoard, trainer_state.json)."),
    "passk": Entry("analysis", "Does RL expand what the model can solve, or only sharpen it? "
                               "pass@k, base vs RL."),
    "plot": Entry("plot", "Draw a chart of the runs in a store and their fitted laws."),
    "pretrain": Entry("rl", "Pretrain the base model a job config names, and cache it by config "
                            "hash."),
    "report": Entry("plot", "Write one self-contained HTML report: fits, warnings, forecasts, "
                            "backtest, charts, data."),
    "run": Entry("rl", "Pretrain (or reuse) a base, run RL on it, and write its points into the "
                       "store."),
    "runs": Entry("store", "List runs: recipe, metadata, metrics, point count, compute range."),
    "show": Entry("store", "Show one run: its metadata and a per-metric summary (points, steps, "
                            "first/last/min/max)."),
    "sparsity": Entry("analysis", "Which parameters did RL change, and how low-rank is each "
                                  "update?"),
    "sweep": Entry("sweep", "Run every job of a sweep spec (base config x grid/points x seeds) "
                            "into the store."),
    "watch": Entry("watch", "Re-ingest logs as they grow; at each update print the fit, the "
                            "forecast and the trend."),
}


@click.group(cls=LazyGroup, package=__name__, registry=REGISTRY,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rlscale")
def main() -> None:
    """rlscale: fit, forecast and run RL compute-scaling experiments.

    \b
    Example:
        rlscale ingest examples/*.csv --recipe grpo
        rlscale fit --metric reward --x gpu_hours --by recipe
    """
