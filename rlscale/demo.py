"""``rlscale demo``: pretraining levels x RL recipes, fitted, reported, on a laptop's CPU.

The demo is a sweep spec shipped in the package (``rlscale/data/demo.toml``; ``--quick`` uses
``demo_quick.toml``) run through the sweep machinery on a local process pool, so everything it
does is what ``rlscale sweep`` + ``rlscale fit`` + ``rlscale report`` do by hand:

1. **bases**: the spec's pretraining levels name one base each; shipped bases
   (``rlscale/data/bases/``) and cached ones are reused, a missing one is pretrained by the first
   job of its level (``rlscale pretrain``'s code) and cached;
2. **RL**: every (level, recipe) job runs into the store; complete runs are skipped, killed ones
   resumed, so rerunning the demo reuses everything that exists;
3. **fit**: the ScaleRL sigmoid is fitted per (level, recipe) to the held-out metric against
   exact FLOPs;
4. **outputs** in ``--out``: ``report.html`` (:mod:`rlscale.plot.report`), ``curves.png`` (fitted
   curves, one panel per level), ``levels.png`` (A, B and C_mid against the pretraining level,
   one line per recipe), ``params.png`` and ``params.csv`` (the fitted parameters).

The pretraining level is the spec's one varied ``pretrain.*`` key; the runner records it in each
run's metadata as ``pretrain_<key>`` (e.g. ``pretrain_ops_max``), which the fits group by. The
fitted metric is the spec's ``metric`` (the shipped spec: ``eval/mean@8``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from rlscale.errors import RLScaleError, input_error
from rlscale.fit import fit
from rlscale.plot.charts import curves_chart, params_chart, save
from rlscale.plot.levels import level_params_chart, level_params_frame
from rlscale.plot.report import write_report
from rlscale.rl.config import JobConfig
from rlscale.store import Store, load_points, load_runs
from rlscale.sweep.executors import make_executor
from rlscale.sweep.progress import ProgressView
from rlscale.sweep.run import load_spec, plan_jobs, resolve_jobs, run_sweep

DATA = Path(__file__).resolve().parent / "data"
SPECS = {"full": DATA / "demo.toml", "quick": DATA / "demo_quick.toml"}
LAW = "sigmoid"
X_AXIS = "flops"


@dataclass
class DemoResult:
    """What a demo run did and wrote.

    ``run_ids``: the sweep's runs, in spec order; ``ran``: those this call started or resumed
    (empty when everything was reused); ``files``: name -> path of each output;
    ``params``: one row per (level, recipe, parameter) (see :func:`rlscale.plot.levels.level_params_frame`).
    """

    spec: str
    store: Path
    out: Path
    level: str
    metric: str
    run_ids: list[str]
    ran: list[str]
    files: dict[str, Path] = field(default_factory=dict)
    params: pd.DataFrame | None = None
    wall_s: float = 0.0


def spec_path(*, quick: bool = False) -> Path:
    """The shipped sweep spec the demo runs."""
    return SPECS["quick" if quick else "full"]


def level_key(spec: Any) -> tuple[str, str]:
    """(varied config key, metadata column) of the spec's pretraining level.

    The level is the one varied key under ``pretrain.``; the runner records it in each run's
    metadata as ``pretrain_<name>``.
    """
    keys = [k for k in spec.varied_keys if k.startswith("pretrain.")]
    if len(keys) != 1:
        raise input_error(f"the demo needs exactly one varied pretrain.* key, got {keys}",
                          path=spec.path, field="grid",
                          expected="one pretraining level key, e.g. pretrain.tokens")
    return keys[0], "pretrain_" + keys[0].split(".", 1)[1]


def run_demo(*, store: str | os.PathLike[str], out: str | os.PathLike[str], quick: bool = False,
             workers: int | None = None, spec: str | os.PathLike[str] | None = None,
             stream: IO[str] | None = None, refresh_s: float = 2.0) -> DemoResult:
    """Run the demo sweep into ``store`` (reusing complete runs), fit, and write outputs to ``out``.

    ``workers``: local processes (default one per core). ``spec``: another sweep spec in the
    demo's shape (one varied ``pretrain.*`` key, ``rl.recipe`` varied) instead of the shipped
    one. Progress goes to ``stream`` (default stdout). Raises :class:`RLScaleError` if a job
    failed (its error is in the message and in ``<store>/_sweeps/``).
    """

    t0 = time.perf_counter()
    stream = stream or sys.stdout
    path = Path(spec) if spec is not None else spec_path(quick=quick)
    sw = load_spec(path)
    key, column = level_key(sw)
    st = Store(store)
    jobs = resolve_jobs(sw)
    plan = plan_jobs(jobs, st)
    todo = [p.job.job_id for p in plan if p.action != "skip"]
    _say(stream, f"demo {sw.name}: {len(jobs)} runs ({len(jobs) - len(todo)} already complete in "
                 f"{st.root}), levels {key} = {_levels(jobs, key)}, recipes "
                 f"{sorted({j.config['rl']['recipe'] for j in jobs})}")
    _say(stream, _bases_line(jobs))
    if todo:
        executor = make_executor("local", workers=workers)
        view = ProgressView(st, name=sw.name, metric=sw.metric, stream=stream)
        result = run_sweep(sw, store=st, executor=executor, resume=True, refresh_s=refresh_s,
                           on_update=view)
        if result.failed:
            lines = "; ".join(f"{j.job_id}: {j.error}" for j in result.failed)
            msg = (f"{len(result.failed)} demo job(s) failed ({lines}); logs in "
                   f"{st.root / '_sweeps' / sw.name}; rerun the demo to resume them")
            raise RLScaleError(msg)
    _say(stream, f"fitting {LAW} to {sw.metric} against {X_AXIS} per ({column}, recipe) ...")
    res = DemoResult(spec=str(path), store=st.root, out=Path(out), level=column,
                     metric=sw.metric, run_ids=[j.job_id for j in jobs], ran=todo)
    write_outputs(res, st)
    res.wall_s = time.perf_counter() - t0
    _say(stream, summary_text(res))
    return res


def write_outputs(res: DemoResult, store: Any) -> None:
    """Fit the demo's runs and write the report, charts and parameter table into ``res.out``."""

    points = load_points(store, metric=res.metric, runs=res.run_ids, with_meta=True)
    if points.empty:
        msg = f"the demo runs in {str(store.root)!r} hold no {res.metric!r} points"
        raise RLScaleError(msg)
    fits = fit(points, metric=res.metric, x=X_AXIS, law=LAW, by=[res.level, "recipe"])
    runs = load_runs(store)
    runs = runs[runs["run_id"].isin(res.run_ids)]
    out = res.out
    out.mkdir(parents=True, exist_ok=True)
    title = f"rlscale demo: RL ceiling and efficiency against {res.level}"
    files = {"report": write_report(out / "report.html", fits, points=points, runs=runs,
                                    facet=res.level, title=title, store=str(store.root))}
    res.params = level_params_frame(fits, level=res.level, params=("A", "B", "C_mid", "R0"))
    res.params.to_csv(out / "params.csv", index=False)
    files["params_csv"] = out / "params.csv"
    ok = [f for f in fits if f.ok]
    if ok:
        files["levels"] = save(level_params_chart(ok, level=res.level), out / "levels.png")
        files["curves"] = save(curves_chart(ok, points=points, facet=res.level),
                               out / "curves.png")
        files["params"] = save(params_chart(ok), out / "params.png")
    res.files = files


def summary_text(res: DemoResult) -> str:
    """The table printed at the end: A, B, C_mid per (level, recipe), and the files written."""
    lines = [f"{'level':>12}  {'recipe':<10} {'A':>16} {'B':>16} {'C_mid':>22}  warnings"]
    if res.params is not None:
        wide = res.params.pivot_table(index=["level", "color"], columns="param",
                                      values=["value", "lower", "upper"], dropna=False)
        warn = res.params.groupby(["level", "color"])["warnings"].first()
        warn = warn.fillna("").map(lambda w: ",".join(dict.fromkeys(w.split(","))) if w else "")
        for (lvl, recipe), row in wide.iterrows():
            cells = [_cell(row["value"][p], row["lower"][p], row["upper"][p], p)
                     for p in ("A", "B", "C_mid")]
            lines.append(f"{lvl:>12.4g}  {recipe:<10} {cells[0]:>16} {cells[1]:>16} "
                         f"{cells[2]:>22}  {warn[(lvl, recipe)] or '-'}")
    reused = len(res.run_ids) - len(res.ran)
    lines.append(f"({len(res.run_ids)} runs: {len(res.ran)} run now, {reused} reused; "
                 f"{res.wall_s:.0f} s)")
    lines += [f"wrote {p}" for p in res.files.values()]
    return "\n".join(lines)


def _cell(value: float, lower: float, upper: float, name: str) -> str:
    if pd.isna(value):
        return "failed"
    fmt = ".3g" if name == "C_mid" else ".3f"
    if pd.isna(lower) or pd.isna(upper):  # the fit did not converge: a value, no interval
        return f"{value:{fmt}} [no interval]"
    return f"{value:{fmt}} [{lower:{fmt}},{upper:{fmt}}]"


def _levels(jobs: list[Any], key: str) -> list[Any]:
    section, name = key.split(".", 1)
    return sorted({j.config[section][name] for j in jobs})


def _bases_line(jobs: list[Any]) -> str:
    """Which pretrained bases exist (shipped or cached) and which the jobs will pretrain."""
    from rlscale.rl.pretrain import SHIPPED, find_base

    seen: dict[str, str] = {}
    for j in jobs:
        if j.group in seen:
            continue
        found = find_base(JobConfig.from_dict(j.config))
        seen[j.group] = ("missing" if found is None else
                         "shipped" if found.parent == SHIPPED else "cached")
    counts = {s: sum(v == s for v in seen.values()) for s in ("shipped", "cached", "missing")}
    line = f"bases: {counts['shipped']} shipped, {counts['cached']} cached"
    if counts["missing"]:
        line += f", {counts['missing']} to pretrain (each by the first job of its level)"
    return line


def _say(stream: IO[str], text: str) -> None:
    stream.write(text + "\n")
    stream.flush()
