"""``rlscale check`` and ``rlscale clean``: verify a store, and tidy what killed writers left."""

from __future__ import annotations

import click

from rlscale.cli._common import store_option, store_path
from rlscale.store import Store
from rlscale.store.check import check_store
from rlscale.store.recover import clean


def size(n: int) -> str:
    """Bytes as people read them: 812 B, 4.1 kB, 75.3 MB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@click.command("check")
@store_option
def check_cmd(store: str | None) -> None:
    """Verify every run of a store; print one line per problem and a summary (exit 1 if any).

    Checks each run's run.json (readable, valid, its own run_id) and points.parquet (readable,
    the store's schema, only its own run_id, no nulls, steps non-decreasing per metric,
    (step, metric) unique), and finds runs a crash left absent but recoverable. Debris of killed
    writers is counted, not a problem: `rlscale clean` removes it.

    \b
    Examples:
        rlscale check
        rlscale check --store runs/store
    """
    root = store_path(store)
    report = check_store(Store(root))
    for p in report.problems:
        click.echo(p.line())
    damaged = len({p.run_id for p in report.problems})
    line = (f"checked {report.runs} run(s) in {root}: "
            + (f"{len(report.problems)} problem(s) in {damaged} run(s)" if report.problems
               else "no problems"))
    if report.debris:
        line += (f"; {len(report.debris)} debris entr{'y' if len(report.debris) == 1 else 'ies'}"
                 f" ({size(report.debris_bytes)}) that `rlscale clean` removes")
    if report.problems:
        raise click.ClickException(line)  # "Error: <summary>", exit 1
    click.echo(line)


@click.command("clean")
@store_option
@click.option("--dry-run", is_flag=True, help="Print what would be recovered and removed; "
                                              "change nothing.")
def clean_cmd(store: str | None, dry_run: bool) -> None:
    """Recover runs a crash left in a hidden copy, then remove what killed writers left.

    Run it only while nothing else writes to the store (no ingest, RL run or sweep): a write
    in flight looks exactly like a killed one. A run a crash left absent is first put back from
    its newest complete copy (a replace stopped between its renames, a staged run); then the
    .tmp-*, .trash-* and .deleted-* directories and the .*.tmp files anywhere in the store are
    removed. Each is printed with its size.

    \b
    Examples:
        rlscale clean --dry-run
        rlscale clean --store runs/store
    """
    root = store_path(store)
    done = clean(root, dry_run=dry_run)
    would = "would " if dry_run else ""
    for c in done:
        rel = c.path.relative_to(root) if c.path.is_relative_to(root) else c.path
        if c.action == "recovered":
            verb = "recover" if dry_run else "recovered"
            click.echo(f"{would}{verb} run {c.run_id!r} from {rel} ({size(c.size)})")
        else:
            click.echo(f"{would}{'remove' if dry_run else 'removed'} {rel} ({size(c.size)})")
    removed = [c for c in done if c.action == "removed"]
    if not done:
        click.echo(f"nothing to clean in {root}")
        return
    entries = f"{len(removed)} entr{'y' if len(removed) == 1 else 'ies'}"
    total = size(sum(c.size for c in removed))
    click.echo(f"would remove {entries}, {total} (dry run: nothing changed)" if dry_run
               else f"removed {entries}, {total}")


COMMANDS = [check_cmd, clean_cmd]
