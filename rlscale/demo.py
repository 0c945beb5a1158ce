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
from rlscale.forecast.budgets import compute_for_fraction
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
FRACTION = 0.9  # the report's "compute to 90% of each level's gain"
# verified pass@k of each level's base against its first recipe's RL run: (samples = the largest
# k, held-out problems per difficulty)
PASSK = {"full": (64, 16), "quick": (4, 4)}


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
    compute: pd.DataFrame | None = None  # compute to FRACTION of each fit's gain
    passk: dict[float, Any] = field(default_factory=dict)  # level -> PasskComparison
    summary: list[str] = field(default_factory=list)  # the finding, computed from the fits
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
             stream: IO[str] | None = None, refresh_s: float = 2.0,
             passk: tuple[int, int] | None = None) -> DemoResult:
    """Run the demo sweep into ``store`` (reusing complete runs), fit, and write outputs to ``out``.

    ``workers``: local processes (default one per core). ``spec``: another sweep spec in the
    demo's shape (one varied ``pretrain.*`` key, ``rl.recipe`` varied) instead of the shipped
    one. Progress goes to ``stream`` (default stdout). ``passk``: (samples, problems) of the
    verified pass@k comparison per level (default :data:`PASSK`; samples 0: none). Raises
    :class:`RLScaleError` if a job failed (its error is in the message and in ``<store>/_sweeps/``).
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
    samples, problems = passk if passk is not None else PASSK["quick" if quick else "full"]
    if samples:
        _say(stream, f"verified pass@k per difficulty, base vs RL, per level ({samples} samples "
                     f"of {problems} held-out problems each) ...")
        res.passk = passk_by_level(jobs, st, key=key, samples=samples, problems=problems)
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
    res.params = level_params_frame(fits, level=res.level, params=("A", "B", "C_mid", "R0"))
    ok = [f for f in fits if f.ok]
    res.compute = compute_for_fraction(ok, FRACTION) if ok else None
    res.summary = finding(res.params, level=res.level, compute=res.compute, passk=res.passk)
    extra = [("pass@k: base vs RL", passk_html(res.passk))] if res.passk else []
    files = {"report": write_report(out / "report.html", fits, points=points, runs=runs,
                                    facet=res.level, title=title, store=str(store.root),
                                    fractions=(0.5, FRACTION), summary=res.summary,
                                    extra=extra)}
    res.params.to_csv(out / "params.csv", index=False)
    files["params_csv"] = out / "params.csv"
    if ok:
        files["levels"] = save(level_params_chart(ok, level=res.level), out / "levels.png")
        files["curves"] = save(curves_chart(ok, points=points, facet=res.level),
                               out / "curves.png")
        files["params"] = save(params_chart(ok), out / "params.png")
    res.files = files


def passk_by_level(jobs: list[Any], store: Any, *, key: str, samples: int,
                   problems: int) -> dict[float, Any]:
    """Verified pass@k of each level's base against the RL run of its first job, per difficulty
    (:mod:`rlscale.analysis.passk_eval`; the counts count only checked work)."""
    from rlscale.analysis.passk_counts import compare_to_base
    from rlscale.analysis.passk_eval import plan_sampling, sample_counts

    section, name = key.split(".", 1)
    first: dict[float, str] = {}
    for j in jobs:
        first.setdefault(float(j.config[section][name]), j.job_id)
    out = {}
    for lvl, run_id in sorted(first.items()):
        plan = plan_sampling(run_id, [run_id], store=store, samples=samples, problems=problems)
        report = compare_to_base(sample_counts(plan))
        out[lvl] = report.comparisons[0][1]
    return out


def finding(params: pd.DataFrame, *, level: str, compute: pd.DataFrame | None = None,
            passk: dict[float, Any] | None = None) -> list[str]:
    """The demo's finding in a few sentences, computed from the fitted parameters (``params``:
    :func:`~rlscale.plot.levels.level_params_frame`), the compute to :data:`FRACTION` of the gain
    and the pass@k comparisons: how the ceiling A moves from the lowest to the highest level
    (and whether their intervals are apart), how many fits carry warnings, and what RL did to
    verified pass@1 and pass@k per difficulty."""
    lines = []
    a = params[params["param"] == "A"]
    for color, rows in a.groupby("color", sort=True):
        rows = rows[rows["value"].notna()].sort_values("level")
        if len(rows) < 2:
            lines.append(f"{color}: fewer than two levels fitted; no trend in A to report.")
            continue
        lo, hi = rows.iloc[0], rows.iloc[-1]
        steps = rows["value"].diff().dropna()
        trend = ("rises" if (steps > 0).all() else "falls" if (steps < 0).all()
                 else "stays" if (steps == 0).all() else "moves, not monotonically,")
        apart = hi["lower"] > lo["upper"] or lo["lower"] > hi["upper"]
        lines.append(
            f"{color}: the RL ceiling A {trend} from {_ci(lo)} to {_ci(hi)} as {level} goes "
            f"{lo['level']:g} -> {hi['level']:g}; the extreme levels' 95% intervals "
            + ("do not overlap." if apart else "overlap, so these runs do not tell them apart."))
    fits = params.drop_duplicates(["level", "color"])
    flagged = fits[(fits["warnings"].fillna("") != "") | ~fits["ok"]]
    if len(fits):
        lines.append(f"{len(flagged)} of {len(fits)} fits carry warnings"
                     + (f" ({', '.join(sorted(_codes(flagged)))})." if len(flagged) else "."))
    if compute is not None and len(compute):
        known = compute[compute["status"] == "reached"]
        lines.append(f"Compute to {FRACTION:.0%} of the gain: identified for {len(known)} of "
                     f"{len(compute)} fits" + (f", {_num(known['x'].min())} to "
                                               f"{_num(known['x'].max())} {X_AXIS}."
                                               if len(known) else "."))
    for lvl, cmp in sorted((passk or {}).items()):
        v = cmp.verdicts
        k = int(v["k_max"].max())
        groups: dict[str, list[int]] = {}
        for _, row in v.iterrows():
            groups.setdefault(str(row["verdict"]), []).append(int(row["difficulty"]))
        parts = [f"{_VERDICT_WORDS.get(name, name).format(k=k)} at {_span(ds)}"
                 for name, ds in groups.items()]
        lines.append(f"{level} = {lvl:g}, verified pass@k (base -> RL): " + "; ".join(parts)
                     + " operations.")
    return lines


_VERDICT_WORDS = {"sharpened": "RL sharpened pass@1 without expanding pass@{k}",
                  "expanded": "RL expanded pass@{k}", "regressed": "RL regressed",
                  "no_change": "no significant change"}


def passk_html(passk: dict[float, Any]) -> str:
    """The pass@k comparisons as an HTML table: per level and difficulty, base -> RL at k = 1 and
    at the largest k, with the 95% interval of the difference, and the verdict."""
    import html

    head = ("<p>Verified pass@k (only solutions whose every step checks count; a bare answer "
            "never does) of each level's base and of its RL run, on the same held-out problems; "
            "intervals from a paired bootstrap over problems.</p><table><tr><th>level</th>"
            "<th>ops</th><th>pass@1 base -> RL [95% of diff]</th><th>pass@k base -> RL "
            "[95% of diff]</th><th>k</th><th>verdict</th></tr>")
    rows = []
    for lvl, cmp in sorted(passk.items()):
        for _, r in cmp.verdicts.iterrows():
            cells = [f"{lvl:g}", str(int(r["difficulty"])),
                     f"{r['base_pass1']:.3f} -> {r['rl_pass1']:.3f} "
                     f"[{r['d_pass1_lower']:+.3f}, {r['d_pass1_upper']:+.3f}]",
                     f"{r['base_passk']:.3f} -> {r['rl_passk']:.3f} "
                     f"[{r['d_passk_lower']:+.3f}, {r['d_passk_upper']:+.3f}]",
                     str(int(r["k_max"])), str(r["verdict"])]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return head + "".join(rows) + "</table>"


def _ci(row: Any) -> str:
    if pd.isna(row["lower"]) or pd.isna(row["upper"]):
        return f"{row['value']:.2f} [no interval]"
    return f"{row['value']:.2f} [{row['lower']:.2f}, {row['upper']:.2f}]"


def _codes(flagged: pd.DataFrame) -> set[str]:
    codes = {c for w in flagged["warnings"].fillna("") for c in w.split(",") if c}
    return codes | ({"not_fitted"} if (~flagged["ok"]).any() else set())


def _num(x: float) -> str:
    return f"{x:.2g}"


def _span(ds: list[int]) -> str:
    """1,2,3,5 -> '1-3, 5'."""
    ds = sorted(ds)
    runs, start, prev = [], ds[0], ds[0]
    for d in ds[1:] + [None]:
        if d is not None and d == prev + 1:
            prev = d
            continue
        runs.append(f"{start}" if start == prev else f"{start}-{prev}")
        if d is not None:
            start = prev = d
    return ", ".join(runs)


def summary_text(res: DemoResult) -> str:
    """The finding, then the table printed at the end: A, B, C_mid per (level, recipe), the
    compute to 90% of the gain, and the files written."""
    lines = [*res.summary, ""] if res.summary else []
    lines.append(f"{'level':>12}  {'recipe':<10} {'A':>16} {'B':>16} {'C_mid':>22} "
                 f"{'compute to ' + format(FRACTION, '.0%'):>27}  warnings")
    to_frac = {}
    if res.compute is not None:
        for _, r in res.compute.iterrows():
            g = r["group"]
            cell = (f"{r['x']:.2g} [{r['x_lower']:.2g},{r['x_upper']:.2g}]"
                    if r["status"] == "reached" else str(r["status"]))
            to_frac[(float(g[res.level]), str(g["recipe"]))] = cell
    if res.params is not None:
        wide = res.params.pivot_table(index=["level", "color"], columns="param",
                                      values=["value", "lower", "upper"], dropna=False)
        warn = res.params.groupby(["level", "color"])["warnings"].first()
        warn = warn.fillna("").map(lambda w: ",".join(dict.fromkeys(w.split(","))) if w else "")
        for (lvl, recipe), row in wide.iterrows():
            cells = [_cell(row["value"][p], row["lower"][p], row["upper"][p], p)
                     for p in ("A", "B", "C_mid")]
            lines.append(f"{lvl:>12.4g}  {recipe:<10} {cells[0]:>16} {cells[1]:>16} "
                         f"{cells[2]:>22} {to_frac.get((float(lvl), recipe), '-'):>27}  "
                         f"{warn[(lvl, recipe)] or '-'}")
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
