"""``rlscale check``: verify every run of a store, and name what a killed writer left.

Per run: ``run.json`` readable and valid (:func:`~rlscale.store.damage.check_meta_dict`),
``points.parquet`` readable with exactly the store's schema, its ``run_id`` column the run's own,
no nulls, each metric's steps non-decreasing and (step, metric) unique. Per store: a directory
that looks like a run but has no ``run.json``, a run absent but recoverable from a copy a crash
left (``rlscale clean`` puts it back), and the debris ``rlscale clean`` removes (not a problem).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rlscale.store import layout, recover
from rlscale.store.damage import DamagedRun, check_points_table, one_line
from rlscale.store.runs import Store, read_meta_file
from rlscale.store.schema import POINTS_SCHEMA


class Problem(NamedTuple):
    run_id: str
    path: Path
    problem: str

    def line(self) -> str:
        return f"{self.run_id}: {self.path}: {self.problem}"


class Report(NamedTuple):
    runs: int  # run directories checked
    problems: list[Problem]
    debris: list[Path]  # what `rlscale clean` removes
    debris_bytes: int


def check_store(store: Store) -> Report:
    """Check every run directory of ``store`` (see the module docstring)."""
    root, problems, n = store.root, [], 0
    entries = sorted(root.iterdir()) if root.is_dir() else []
    for d in entries:
        if not (d.is_dir() and layout.is_run_name(d.name)):
            continue
        n += 1
        problems += check_run(d, d.name)
    for c in recover.plan_recovery(root, min_age=0, interrupted_only=False):
        problems.append(Problem(c.run_id, layout.run_dir(root, c.run_id),
                                f"absent, but a complete copy is at {c.path} "
                                "(rlscale clean recovers it)"))
    junk = recover.debris(root)
    return Report(n, problems, junk, sum(recover.size_of(p) for p in junk))


def check_run(d: Path, run_id: str) -> list[Problem]:
    out = []
    meta_path, points_path = d / layout.RUN_FILE, d / layout.POINTS_FILE
    if not meta_path.is_file():
        out.append(Problem(run_id, meta_path, "missing: not a run (readers skip this directory)"))
    else:
        try:
            read_meta_file(meta_path, run_id)
        except DamagedRun as exc:
            out.append(Problem(run_id, meta_path, exc.problem))
    if not points_path.is_file():
        out.append(Problem(run_id, points_path, "missing (every run has one, empty or not)"))
        return out
    try:
        table = pq.ParquetFile(points_path).read()
    except (OSError, pa.ArrowException, ValueError) as exc:
        return [*out, Problem(run_id, points_path, f"unreadable Parquet: {one_line(exc)}")]
    checked, problem = check_points_table(table, run_id)
    if checked is None:
        return [*out, Problem(run_id, points_path, problem or "bad points")]
    if not table.schema.equals(POINTS_SCHEMA):
        differ = [f"{f.name} {table.schema.field(f.name).type}" for f in POINTS_SCHEMA
                  if table.schema.field(f.name).type != f.type]
        order = "" if differ else "columns in another order"
        out.append(Problem(run_id, points_path,
                           f"schema is not the store's ({', '.join(differ) or order}; readers "
                           "cast it)"))
    out += _order_problems(checked, run_id, points_path)
    return out


def _order_problems(table: pa.Table, run_id: str, path: Path) -> list[Problem]:
    """Steps that decrease within a metric (in file order), and repeated (step, metric)."""
    out = []
    if table.num_rows < 2:
        return out
    metric, step = table["metric"].combine_chunks(), table["step"].combine_chunks()
    same = pc.equal(metric[1:], metric[:-1])
    back = pc.and_(same, pc.less(step[1:], step[:-1]))
    if pc.any(back).as_py():
        i = pc.index(back, True).as_py() + 1
        out.append(Problem(run_id, path, f"steps decrease for metric {metric[i].as_py()!r} at row "
                                         f"{i + 1} ({step[i - 1].as_py()} then {step[i].as_py()})"))
    dup = table.group_by(["metric", "step"]).aggregate([([], "count_all")])
    dup = dup.filter(pc.greater(dup["count_all"], 1))
    if dup.num_rows:
        out.append(Problem(run_id, path, f"{dup.num_rows} (step, metric) pair(s) repeated, first "
                                         f"step {dup['step'][0].as_py()} of "
                                         f"{dup['metric'][0].as_py()!r}"))
    return out
