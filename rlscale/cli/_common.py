"""Options and error handling shared by the sub-commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click

from rlscale.errors import RLScaleError

DEFAULT_STORE = "runs/store"


class LibraryErrorGroup(click.Group):
    """A click group that shows library errors as one clean line with exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RLScaleError as exc:
            raise click.ClickException(str(exc)) from exc


def store_path(value: str | None) -> Path:
    """The store directory: ``--store``, else ``$RLSCALE_STORE``, else ``./runs/store``."""
    return Path(value or os.environ.get("RLSCALE_STORE") or DEFAULT_STORE)


def store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--store DIR``, shared by every command that reads or writes a store."""
    return click.option(
        "--store",
        "store",
        type=click.Path(file_okay=False),
        default=None,
        help=f"Run store directory (default: $RLSCALE_STORE or ./{DEFAULT_STORE}).",
    )(func)
