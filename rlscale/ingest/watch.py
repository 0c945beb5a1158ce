"""Polling logs that are still growing: re-ingest the ones that changed, report what came in.

No daemon and no file-system events: :func:`poll_logs` looks at each path's size and mtime every
``interval`` seconds and re-ingests (:func:`rlscale.ingest.pipeline.ingest_paths`, with an
unterminated last line held back: the writer may be mid-line) when they changed. The clock is
the ``sleep`` it is given, so a test drives it without waiting.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from rlscale.ingest.pipeline import IngestResult, ingest_paths
from rlscale.store import Store

Signature = tuple[tuple[str, int, int], ...]


def signature(paths: list[Path]) -> Signature:
    """``(path, size, mtime_ns)`` of every file given or under a directory given, sorted."""
    out = []
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in files:
            try:
                st = p.stat()
            except OSError:  # removed between the listing and the stat: seen next time
                continue
            out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def poll_logs(paths: list[str | os.PathLike[str]], store: Store | str | os.PathLike[str], *,
              interval: float = 10.0, sleep: Callable[[float], Any] = time.sleep,
              **options: Any) -> Iterator[list[IngestResult]]:
    """Yield the ingest results of every poll that brought new points (the first poll always).

    Each poll compares :func:`signature` with the last one and, when a log changed, ingests all
    ``paths`` (``options`` as for :func:`~rlscale.ingest.pipeline.ingest_paths`; unchanged logs
    are no-ops). A poll yields when a run was written or gained points; then ``sleep(interval)``.
    Errors (:class:`~rlscale.errors.InputError`, ``StoreError``) propagate: the store is left as
    the last good poll wrote it. Runs until the caller stops iterating.
    """
    plist = [Path(p) for p in paths]
    last: Signature | None = None
    first = True
    while True:
        now = signature(plist)
        if now != last:
            results = ingest_paths(plist, store, hold_last_line=True, **options)
            last = now
            if first or any(r.status in ("written", "replaced") or (r.added or 0) > 0
                            for r in results):
                yield results
            first = False
        sleep(interval)
