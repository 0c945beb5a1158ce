"""Stable-Baselines3 / RL Zoo logs: ``monitor.csv`` (per episode) and ``progress.csv`` (logger).

``*monitor.csv`` (written by ``stable_baselines3.common.monitor.Monitor``): a first line
``#{"t_start": ..., "env_id": ...}``, then ``r,l,t`` and one row per episode: return, length
and seconds since ``t_start``. The step of an episode is the running sum of ``l`` (environment
steps at its end), ``wall_s`` is ``t``, and ``r``/``l`` are the metrics ``episode_reward`` and
``episode_length`` (extra ``info_keywords`` columns are metrics under their own names);
``env_id`` is the run's task.

``progress.csv`` (``configure(folder, ["csv"])``): one row per logger dump;
``time/total_timesteps`` (or ``total_timesteps``) is the step, ``time/time_elapsed`` is
``wall_s``, every other numeric column a metric, an empty cell "not logged". Several runs
appended to one file (``learn()`` again with ``reset_num_timesteps=True``, or models sharing a
logger) restart their step count: each restart starts a new run, ``<name>-1``, ``<name>-2``, ...
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rlscale.ingest.columns import steps
from rlscale.ingest.options import IngestOptions
from rlscale.ingest.points import RawPoints
from rlscale.ingest.readers import read_csv, records_to_table
from rlscale.ingest.source import Source
from rlscale.ingest.table import table_points

MONITOR_COLUMNS = {"r": "episode_reward", "l": "episode_length", "t": "wall_s"}
STEP_COLUMNS = ("time/total_timesteps", "total_timesteps")
WALL_COLUMNS = ("time/time_elapsed", "time_elapsed")
RUN_COLUMN = "run_id"


def _head(path: Path, n: int) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return [fh.readline() for _ in range(n)]
    except OSError:
        return []


def is_monitor(path: Path) -> bool:
    first, second = (_head(path, 2) + ["", ""])[:2]
    return first.startswith("#{") and second.strip().split(",")[:3] == ["r", "l", "t"]


def progress_step_column(path: Path) -> str | None:
    """The step column of an SB3 ``progress.csv`` (by its header), or None if it is not one."""
    if path.name.lower() != "progress.csv":
        return None
    header = next(csv.reader(_head(path, 1)), [])
    return next((c for c in STEP_COLUMNS if c in header), None)


def is_sb3(path: Path) -> bool:
    return is_monitor(path) or progress_step_column(path) is not None


def file_part(path: Path) -> str:
    """What the file name adds to a run id: ``0`` for ``0.monitor.csv``, ``lunar`` for
    ``lunar.monitor.csv``, nothing for ``progress.csv`` or ``monitor.csv``."""
    name = path.name
    if name.lower() == "progress.csv" or not name.lower().endswith("monitor.csv"):
        return "" if name.lower() == "progress.csv" else name.split(".")[0]
    return name[: -len("monitor.csv")].rstrip(".")


def default_run_id(path: Path) -> str:
    """``LunarLander-v2_1/0.monitor.csv`` -> ``LunarLander-v2_1-0``; ``PPO_1/progress.csv`` ->
    ``PPO_1``; ``lunar.monitor.csv`` -> ``lunar`` (a bare number or nothing takes the folder's
    name in front: SB3 names files by env rank inside a run's folder)."""
    parent = path.resolve().parent.name
    part = file_part(path)
    if not part or part.isdigit():
        return "-".join(p for p in (parent, part) if p) or "sb3"
    return part


def read_sb3(path: Path, opts: IngestOptions, run_id: str
             ) -> tuple[RawPoints, Source, dict[str, dict[str, Any]], str | None]:
    """``(points, source, {run_id: metadata}, note)``; the note says when a file held several runs."""
    if is_monitor(path):
        return (*_read_monitor(path, opts, run_id), None)
    return _read_progress(path, opts, run_id)


def _read_monitor(path: Path, opts: IngestOptions, run_id: str
                  ) -> tuple[RawPoints, Source, dict[str, dict[str, Any]]]:
    lines: list[int] = []
    src = Source(path=path, format="sb3", locate=lambda row: (lines[row], None))
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline()
        try:
            head = json.loads(first[1:])
        except json.JSONDecodeError as exc:
            raise src.error(f"first line is not '#' + JSON ({exc.msg})", expected='#{"t_start": '
                            '..., "env_id": ...} as Monitor writes it') from None
        reader = csv.reader(fh)
        header = next(reader, None)
        records: list[dict[str, Any]] = []
        total = 0
        while True:
            number = reader.line_num + 2
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise src.error(f"unreadable CSV record ({exc})", expected="r,l,t rows") from None
            if not fields:
                continue
            lines.append(number)
            row = len(lines) - 1
            if len(fields) != len(header):
                raise src.error(f"{len(fields)} fields", row=row,
                                expected=f"{len(header)} fields, as in the header {header}")
            rec: dict[str, Any] = {}
            for name, cell in zip(header, fields):
                try:
                    value = float(cell)
                except ValueError:
                    raise src.error(f"cannot parse {cell[:40]!r} as a number", row=row,
                                    field=name, expected="a number") from None
                rec[MONITOR_COLUMNS.get(name, name)] = value
            length = rec["episode_length"]
            if not (length >= 1 and length == int(length)):
                raise src.error(f"episode length {fields[1]!r}", row=row, field="l",
                                expected="a positive integer (environment steps)")
            total += int(length)
            rec["step"] = total
            records.append(rec)
    if not records:
        raise src.error("no episodes", expected="rows of r,l,t after the header")
    env_id = head.get("env_id") if isinstance(head, dict) else None
    meta = {"task": str(env_id)} if env_id else {}
    raw = table_points(records_to_table(records, src), src, replace(opts, step_col="step"))
    return raw, src, {run_id: meta}


def _read_progress(path: Path, opts: IngestOptions, run_id: str
                   ) -> tuple[RawPoints, Source, dict[str, dict[str, Any]], str | None]:
    tab, src = read_csv(path, fmt="sb3")
    src.format = "sb3"
    names = tab.column_names
    step_col = opts.step_col or next((c for c in STEP_COLUMNS if c in names), None)
    step = steps(tab[step_col], name=step_col, src=src)
    restarts = np.flatnonzero(step[1:] < step[:-1]) + 1  # NaN (an empty cell) never restarts
    note = None
    if len(restarts):
        run_of_row = np.zeros(len(step), np.int32)
        run_of_row[restarts] = 1
        run_of_row = np.cumsum(run_of_row)
        ids = [f"{run_id}-{k + 1}" for k in range(len(restarts) + 1)]
        tab = tab.append_column(RUN_COLUMN, pa.array([ids[k] for k in run_of_row]))
        starts = ", ".join(str(src.locate(int(r))[0]) for r in restarts)
        note = (f"{path.name} holds {len(ids)} runs (time steps restart at line "
                f"{starts}): {', '.join(ids)}")
        opts = replace(opts, run_col=RUN_COLUMN)
    wall = next((c for c in WALL_COLUMNS if c in names), None)
    if opts.x_col is None and wall is not None:
        opts = replace(opts, x_col=wall, x_unit="wall_s")
    raw = table_points(tab, src, replace(opts, step_col=step_col))
    return raw, src, {}, note
