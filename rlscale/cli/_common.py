"""Options, error handling and the lazily loading group shared by the sub-commands."""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from gettext import gettext as _
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import click

from rlscale.errors import DamagedRunWarning, RLScaleError

DEFAULT_STORE = "runs/store"
# optional dependency -> how to install it (torch first and pinned: a plain `pip install torch`
# pulls a multi-GB CUDA build; the pinned version is the CPU wheel)
EXTRAS = {
    "torch": "the 'rl' extra: pip install torch==2.13.0 && pip install 'rlscale[rl]'",
    "ray": "the 'ray' extra: pip install 'rlscale[ray]'",
}


class LibraryErrorGroup(click.Group):
    """A click group that shows library errors as one clean line with exit code 1, and a
    missing optional dependency (torch, ray) as the line that says which extra to install."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with damage_warnings():
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except RLScaleError as exc:
            raise click.ClickException(one_line(str(exc))) from exc
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in EXTRAS:
                raise _unexpected(ctx, exc) from exc
            command = ctx.invoked_subcommand or "this command"
            msg = (f"rlscale {command} needs {missing}, which is not installed; "
                   f"install {EXTRAS[missing]}")
            raise click.ClickException(msg) from exc
        except Exception as exc:  # the boundary: no traceback reaches a user
            if os.environ.get(TRACEBACK_ENV):
                raise
            raise _unexpected(ctx, exc) from exc


TRACEBACK_ENV = "RLSCALE_TRACEBACK"


def one_line(text: str) -> str:
    """The first non-empty line of ``text`` (library errors are one line; this keeps them so)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else text.strip()


def _unexpected(ctx: click.Context, exc: BaseException) -> click.ClickException:
    """One line for an error no library code turned into an RLScaleError: what failed (the file,
    for an OSError) and how; the traceback only with $RLSCALE_TRACEBACK set."""
    command = f"rlscale {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "rlscale"
    if isinstance(exc, OSError):
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        what = exc.strerror or one_line(str(exc)) or type(exc).__name__
        where = f"{' -> '.join(names)}: " if names else ""
        return click.ClickException(f"{command}: {where}{what}")
    if isinstance(exc, MemoryError):
        return click.ClickException(f"{command}: out of memory")
    if isinstance(exc, RecursionError):
        return click.ClickException(f"{command}: input nested too deeply to process")
    detail = one_line(str(exc))[:300]
    return click.ClickException(
        f"{command}: {type(exc).__name__}{': ' + detail if detail else ''} (an unexpected "
        f"error; {TRACEBACK_ENV}=1 shows where)")


STRICT_HELP = ("Refuse a damaged run in the store (one-line error, exit 1) instead of skipping "
               "it with a warning (also: RLSCALE_STRICT=1).")


def set_strict(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--strict``'s callback: sets :data:`rlscale.store.damage.STRICT` for the command."""
    if not value:
        return
    from rlscale.store.damage import STRICT  # deferred: pyarrow, not for --help

    token = STRICT.set(True)
    ctx.call_on_close(lambda: STRICT.reset(token))


def strict_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--strict``: refuse a damaged run instead of skipping it (not passed to the command)."""
    return click.option("--strict", is_flag=True, expose_value=False, callback=set_strict,
                        help=STRICT_HELP)(func)


@contextlib.contextmanager
def damage_warnings() -> Iterator[None]:
    """Show each :class:`~rlscale.errors.DamagedRunWarning` as one ``Warning: ...`` line on
    stderr, each text once (several readers meet the same damaged run); other warnings as
    Python shows them."""
    with warnings.catch_warnings():
        shown: set[str] = set()
        plain = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kw: Any) -> None:
            if not issubclass(category, DamagedRunWarning):
                plain(message, category, *args, **kw)
                return
            text = " ".join(str(message).split())
            if text not in shown:
                shown.add(text)
                click.echo(f"Warning: {text}", err=True)

        warnings.showwarning = show
        warnings.simplefilter("always", DamagedRunWarning)
        yield


class Entry(NamedTuple):
    """Where a lazily loaded command lives, and its one-line help for ``--help`` listings."""

    module: str  # module of the group's package whose ``COMMANDS`` list holds the command
    help: str  # the command's short help (``get_short_help_str``), untruncated


class LazyGroup(LibraryErrorGroup):
    """A group whose commands are imported only when one of them is looked up.

    ``registry`` maps each command name to an :class:`Entry`; ``get_command`` imports
    ``<package>.<entry.module>`` and registers the commands of its ``COMMANDS`` list. The
    group's own ``--help`` lists the commands from the registry, importing none of them (click's
    "lazily loading subcommands" pattern). ``self.commands`` holds only what was loaded (or
    added); look commands up with ``get_command``.
    """

    def __init__(self, *args: Any, package: str, registry: Mapping[str, Entry],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.package = package
        self.registry = dict(registry)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.registry) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.registry:
            self.load(cmd_name)
        return self.commands.get(cmd_name)

    def load(self, cmd_name: str) -> click.Command:
        """Import the module that defines ``cmd_name`` and register its commands."""
        module_name = f"{self.package}.{self.registry[cmd_name].module}"
        module = importlib.import_module(module_name)
        for command in getattr(module, "COMMANDS", []):
            if command.name not in self.commands:
                self.add_command(command)
        if cmd_name not in self.commands:
            msg = f"{module_name}.COMMANDS has no command {cmd_name!r}, the registry says it does"
            raise RuntimeError(msg)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but an unloaded command's line comes from the registry: nothing loads."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:  # a stand-in, so click shortens the help exactly as for the real one
                cmd = click.Command(name, help=self.registry[name].help)
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _cmd in rows)
            with formatter.section(_("Commands")):  # click's heading, translated as click does
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


MAX_EXPAND_HELP = ("Let each compressed log (.gz) expand to at most SIZE bytes (e.g. 8G, 512M). "
                   "Default: $RLSCALE_MAX_EXPAND, else 100x its compressed size, at least "
                   "256M.")


def _max_expand(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from rlscale.errors import InputError  # deferred with the module below (start-up)
    from rlscale.ingest.compressed import OPTION, parse_size

    try:
        return parse_size(value, OPTION)
    except InputError as exc:
        raise click.BadParameter(f"{value!r} is not a size (e.g. 8G, 512M or 1000000)") from exc


def max_expand_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--max-expand SIZE``: the decompression bound of every command that reads logs."""
    return click.option("--max-expand", "max_expand", metavar="SIZE", default=None,
                        callback=_max_expand, help=MAX_EXPAND_HELP)(func)


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


def parse_ints(value: str | None, *, name: str) -> list[int] | None:
    if not value:
        return None
    try:
        out = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers",
                                 param_hint=name) from None
    if any(v < 1 for v in out):
        raise click.BadParameter(f"{value!r}: difficulties are numbers of ops, >= 1",
                                 param_hint=name)
    return out
