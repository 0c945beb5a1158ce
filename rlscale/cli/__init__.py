"""The ``rlscale`` command line: a thin shell over the library.

Each sub-command lives in its own module in this package and exposes a ``click.Command`` (or
group) in a module-level ``COMMANDS`` list; :func:`main` discovers them, so adding a command
never touches a central registry. Library errors (:class:`rlscale.errors.RLScaleError`) become
``click.ClickException`` here, and nowhere else.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from rlscale import __version__

from ._common import LibraryErrorGroup


@click.group(cls=LibraryErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rlscale")
def main() -> None:
    """rlscale: fit, forecast and run RL compute-scaling experiments.

    \b
    Example:
        rlscale ingest examples/*.csv --recipe grpo
        rlscale fit --metric reward --x gpu_hours --by recipe
    """


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_register()
