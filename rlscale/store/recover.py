"""Crash recovery and debris: what a killed writer leaves in a store, and putting it right.

A replace (``ingest --replace``) stages the new copy under ``.tmp-<uuid>/<run_id>/``, renames
the old one to ``.trash-<uuid>/<run_id>/``, renames the new one into place, then deletes the
trash. A crash between the two renames leaves the run absent and two complete copies:
:func:`recover` renames the newest complete one (by the time its ``run.json`` was written) back
into place and deletes nothing. Readers and writers call it for replaces interrupted longer
ago than :attr:`Store.RECOVER_AFTER_S <rlscale.store.runs.Store.RECOVER_AFTER_S>` (a younger one
may be a writer between its renames); :func:`clean` calls it for every absent run with a
complete copy (a killed ingest's staged run too), then removes the rest. Deleted runs
(``.deleted-*``) are never recovered.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import NamedTuple

from rlscale.errors import StoreError
from rlscale.store import layout


class Copy(NamedTuple):
    """A copy of a run inside a debris directory of the store's root."""

    run_id: str
    path: Path  # <root>/<debris dir>/<run_id>
    kind: str  # "staged" (.tmp-), "old" (.trash-) or "deleted" (.deleted-)


class Cleaned(NamedTuple):
    """One thing :func:`clean` did (or would do): ``recovered`` a run or ``removed`` a path."""

    action: str
    path: Path
    size: int  # bytes
    run_id: str | None = None


def copies(root: Path) -> list[Copy]:
    """Every run copy under the root's debris directories."""
    out = []
    kinds = {layout.STAGING_PREFIX: "staged", layout.TRASH_PREFIX: "old",
             layout.DELETED_PREFIX: "deleted"}
    for d in sorted(root.iterdir()) if root.is_dir() else ():
        kind = next((k for p, k in kinds.items() if d.name.startswith(p)), None)
        if kind is None or not d.is_dir():
            continue
        for sub in sorted(d.iterdir()):
            if sub.is_dir() and layout.is_run_name(sub.name):
                out.append(Copy(sub.name, sub, kind))
    return out


def has_old_copy(root: Path, run_id: str) -> bool:
    """Whether a replace of ``run_id`` left its old copy in ``.trash-*`` (it was interrupted)."""
    return any(c.run_id == run_id and c.kind == "old" for c in copies(root))


def is_complete(copy: Copy) -> bool:
    """Whether a copy holds a valid run.json and points.parquet of its run (the reader's checks)."""
    from rlscale.store.damage import DamagedRun
    from rlscale.store.runs import read_meta_file, read_points_file

    try:
        read_meta_file(copy.path / layout.RUN_FILE, copy.run_id)
        read_points_file(copy.path / layout.POINTS_FILE, copy.run_id)
    except DamagedRun:
        return False
    return True


def _age(path: Path) -> float:
    """Seconds since the debris directory holding ``path`` last changed (a rename into it)."""
    try:
        return time.time() - path.parent.stat().st_mtime
    except OSError:
        return 0.0


def plan_recovery(root: Path, *, min_age: float, interrupted_only: bool = True) -> list[Copy]:
    """The copy to put in place for each absent run: the newest complete copy. Only runs whose
    replace was interrupted (an old copy exists) unless not ``interrupted_only``; none where a
    copy changed less than ``min_age`` seconds ago."""
    by_run: dict[str, list[Copy]] = {}
    for c in copies(root):
        if c.kind != "deleted" and not layout.run_dir(root, c.run_id).exists():
            by_run.setdefault(c.run_id, []).append(c)
    chosen = []
    for run_id, found in sorted(by_run.items()):
        if interrupted_only and not any(c.kind == "old" for c in found):
            continue
        if any(_age(c.path) < min_age for c in found):
            continue  # perhaps a writer between its renames: leave it to finish
        complete = [c for c in found if is_complete(c)]
        if complete:
            chosen.append(max(complete, key=lambda c: (c.path / layout.RUN_FILE).stat().st_mtime))
    return chosen


def recover(root: Path, *, min_age: float, interrupted_only: bool = True) -> list[tuple[str, Path]]:
    """Rename the copies :func:`plan_recovery` chooses into place; return (run_id, from)."""
    done = []
    for c in plan_recovery(root, min_age=min_age, interrupted_only=interrupted_only):
        try:
            os.rename(c.path, layout.run_dir(root, c.run_id))
        except FileExistsError:
            continue  # another process recovered it first
        except OSError as exc:
            if layout.run_dir(root, c.run_id).exists():
                continue
            raise StoreError(f"cannot recover run {c.run_id!r} from {c.path}: {exc}") from None
        done.append((c.run_id, c.path))
    return done


def size_of(path: Path) -> int:
    """Bytes under ``path`` (a file or a directory tree); what cannot be read counts 0."""
    if path.is_file() or path.is_symlink():
        try:
            return path.lstat().st_size
        except OSError:
            return 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def debris(root: Path) -> list[Path]:
    """What killed writers left: debris directories at the root, ``.*.tmp`` files anywhere else."""
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        if layout.is_debris(entry.name) and entry.is_dir():
            found.append(entry)
        elif entry.is_dir():
            for dirpath, dirs, files in os.walk(entry):
                dirs.sort()
                found += [Path(dirpath, f) for f in sorted(files) if layout.is_debris_file(f)]
        elif layout.is_debris_file(entry.name):
            found.append(entry)
    return found


def clean(root: Path, *, dry_run: bool = False) -> list[Cleaned]:
    """Recover every absent run that has a complete copy (newest first), then remove all debris.

    Safe only while nothing else writes to the store: a writer's staged run or half-written
    file looks exactly like a killed one's. ``dry_run``: say what would be done, do nothing.
    """
    out = []
    chosen = plan_recovery(root, min_age=0, interrupted_only=False)
    for c in chosen:
        out.append(Cleaned("recovered", c.path, size_of(c.path), c.run_id))
        if not dry_run:
            os.rename(c.path, layout.run_dir(root, c.run_id))
    keep = {c.path for c in chosen}
    for path in debris(root):
        size = size_of(path) - sum(size_of(k) for k in keep if k.parent == path and dry_run)
        out.append(Cleaned("removed", path, size))
        if not dry_run:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return out
