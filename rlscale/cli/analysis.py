"""``rlscale headroom``, ``rlscale passk``, ``rlscale sparsity``: the pretraining-vs-RL analyses."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from rlscale.analysis.checkpoints import NoConfigError
from rlscale.analysis.headroom import headroom
from rlscale.analysis.passk import VERDICTS
from rlscale.analysis.passk_arms import arm_verdicts, parse_arm
from rlscale.analysis.passk_counts import compare_to_base, read_counts, write_counts
from rlscale.analysis.passk_eval import plan_sampling, sample_counts
from rlscale.analysis.sparsity import overlap_between, sparsity_between
from rlscale.cli._common import parse_ints, store_option, store_path
from rlscale.cli._fitopts import fit_options, load_store_points, resolve_x, select_recipe
from rlscale.plot.charts import save_chart
from rlscale.plot.passk import comparisons_chart
from rlscale.store import Store
from rlscale.text import num, records


def _floats(value: str | None, *, name: str) -> list[float]:
    if not value:
        return []
    out = []
    for part in value.split(","):
        try:
            v = float(part)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a number", param_hint=name) from None
        if not (math.isfinite(v) and v > 0):
            raise click.BadParameter(f"{part!r} is not a positive number", param_hint=name)
        out.append(v)
    return out


def _g(v: Any, fmt: str = ".4g") -> str:
    """Ints too through ``fmt`` (pretraining budgets read 1.5e+06); non-finite as ``-``."""
    return num(_as_float(v), fmt, inf="-")


def _as_float(v: Any) -> Any:
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _interval(lo: Any, hi: Any) -> str:
    return f"[{_g(lo)}, {_g(hi)}]" if lo is not None and hi is not None else "(no interval)"


# -- headroom ----------------------------------------------------------------------------------------
@click.command("headroom")
@store_option
@fit_options(only=["metric"], helps={"metric": "Metric whose RL ceiling to model (e.g. reward)."})
@click.option("--by", required=True,
              help="Metadata key holding each run's pretraining budget (e.g. pretrain_tokens).")
@click.option("--recipe", default=None,
              help="Use only the runs of this recipe (default: every run, pooled per level).")
@fit_options(only=["x", "law"], helps={
    "x": "RL compute axis of the per-level fits.",
    "law": "RL law fitted per level (needs a ceiling): sigmoid, power or exp."})
@click.option("--headroom-law", type=click.Choice(["auto", "saturating", "loglinear"]),
              default="auto", show_default=True,
              help="Law of the ceiling A in the pretraining budget P: saturating "
                   "A_max - D*(P/P_ref)^-alpha, or loglinear a + b*log10(P/P_ref); auto picks "
                   "saturating from 3 levels (2 with --cap), else loglinear.")
@click.option("--cap", type=float, default=None,
              help="Fix A_max of the saturating law (e.g. 1.0 for a pass rate): one parameter "
                   "fewer, so 3 levels leave one degree of freedom to test the law.")
@click.option("--at", "at", default=None,
              help="Pretraining budget(s) to forecast the RL ceiling at, comma-separated.")
@fit_options(only=["burn_in", "max_x", "bootstrap", "resample", "level", "seed"], helps={
    "burn_in": "Drop points below this RL compute.",
    "max_x": "Use points up to this RL compute only.",
    "bootstrap": "Bootstrap refits per level (0: draws from each fit's covariance).",
    "resample": "Bootstrap unit for the per-level fits."})
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def headroom_command(store: str | None, metric: str, by: str, recipe: str | None,
                     x: str | None, law: str, headroom_law: str, cap: float | None, at: str | None,
                     burn_in: float | None, max_x: float | None, bootstrap: int, resample: str,
                     level: float, seed: int, as_json: bool) -> None:
    """Model the RL ceiling A as a function of pretraining and forecast it at a larger budget.

    Fits the RL law per level of --by (each level pools its runs), then the headroom law to the
    levels' ceilings, refitted on joint draws of them for the intervals.

    \b
    Examples:
        rlscale headroom --metric reward --by pretrain_tokens --at 1e10
        rlscale headroom --metric reward --by pretrain_tokens --cap 1 --at 1e10,1e11 --json
        rlscale headroom --metric eval/mean@8 --by pretrain_tokens --recipe grpo --x flops
    """
    at_values = _floats(at, name="--at")
    points = select_recipe(load_store_points(store, metric), recipe)
    x = resolve_x(points, metric, x)
    out = headroom(points, metric=metric, by=by, x=x, law=law, headroom_law=headroom_law,
                   cap=cap, at=at_values, burn_in=burn_in, max_x=max_x, bootstrap=bootstrap,
                   resample=resample, level=level, seed=seed)
    if as_json:
        click.echo(json.dumps(out.to_dict(), indent=2))
        return
    click.echo(format_headroom(out))


def format_headroom(out: Any) -> str:
    """The text report of ``rlscale headroom``."""
    ctx, pct = out.context, f"{100 * out.level:g}%"
    form = ("A(P) = A_max - D * (P / P_ref)^-alpha" if out.headroom_law == "saturating"
            else "A(P) = a + b * log10(P / P_ref)")
    lines = [f"RL ceiling of {ctx.get('metric')} vs {ctx.get('x')} ({ctx.get('law')} fit per level "
             f"of {ctx.get('by')}; draws: {ctx.get('samples_method')})", "",
             f"per level ({pct} intervals):"]
    for r in out.levels.to_dict(orient="records"):
        warn = r.get("fit_warnings") or ""
        lines.append(f"  {ctx.get('by')}={_g(r['level'])}: A = {_g(r['A'])} "
                     f"{_interval(r.get('A_lower'), r.get('A_upper'))}  law: {_g(r['A_law'])}  "
                     f"runs: {r.get('n_runs', '-')}" + (f"  warnings: {warn}" if warn else ""))
    chi = f", chi2/dof = {_g(out.chi2_dof, '.3g')}" if out.chi2_dof is not None else ""
    lines += ["", f"headroom law: {out.headroom_law}, {form}, P_ref = {_g(out.p_ref)} "
                  f"(dof = {out.dof}{chi}; {out.n_draws} joint draws)"]
    for name, p in out.params.items():
        ci = "(fixed)" if p.get("fixed") else _interval(p.get("lower"), p.get("upper"))
        lines.append(f"  {name:>5} = {_g(p['value'])} {ci}")
    if len(out.forecast):
        lines += ["", f"forecast RL ceiling ({pct}):"]
        for r in out.forecast.to_dict(orient="records"):
            lines.append(f"  {ctx.get('by')}={_g(r['P'])}: A = {_g(r['A'])} "
                         f"{_interval(r.get('lower'), r.get('upper'))}")
    if out.notes:
        lines += ["", "notes:"] + [f"  - {n}" for n in out.notes]
    return "\n".join(lines)


# -- sparsity ----------------------------------------------------------------------------------------
@click.command("sparsity")
@store_option
@click.argument("base")
@click.argument("rl")
@click.argument("others", nargs=-1)
@click.option("--cast", type=click.Choice(["none", "bf16"]), default="none", show_default=True,
              help="Round both checkpoints to this dtype before comparing. The papers' protocol "
                   "(Mukherjee et al. 2025): --cast bf16 --atol 1e-5.")
@click.option("--atol", type=click.FloatRange(min=0), default=None,
              help="Absolute tolerance: an entry changed iff |w_rl - w_base| > atol + rtol*|w_base|."
                   " Default 0 (with the default rtol).")
@click.option("--rtol", type=click.FloatRange(min=0), default=None,
              help="Relative tolerance. Default: the machine epsilon of the stored dtype (fp32 "
                   "1.2e-7, bf16 7.8e-3), i.e. changes of at most one ulp are rounding noise.")
@click.option("--rank-rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="Singular values of an update above rank_rtol * s_max count toward its rank.")
@click.option("--energy", type=click.FloatRange(0, 1, min_open=True), default=0.99,
              show_default=True, help="Fraction of ||dW||_F^2 for the energy rank.")
@click.option("--no-rank", is_flag=True, help="Skip the SVDs (fast on large models).")
@click.option("--matrices/--no-matrices", default=True, show_default=True,
              help="Also list every tensor, not only layers and the total.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def sparsity_command(store: str | None, base: str, rl: str, others: tuple[str, ...], cast: str,
                     atol: float | None, rtol: float | None, rank_rtol: float, energy: float,
                     no_rank: bool, matrices: bool, as_json: bool) -> None:
    """Which parameters did RL change, and how low-rank is each update?

    BASE and RL are torch checkpoint files of the same architecture (a state dict, or a dict
    holding one under 'policy'/'model'/'state_dict'), base directories (model.pt + base.json),
    or run ids in the store (BASE: the base that run started from; RL: its latest checkpoint).

    \b
    Examples:
        rlscale sparsity RUN_ID RUN_ID                        # a run's base vs its policy
        rlscale sparsity base.pt rl.pt
        rlscale sparsity base.pt rl.pt --rtol 0 --atol 0      # bitwise inequality
        rlscale sparsity base.pt rl.pt --cast bf16 --atol 1e-5  # the papers' protocol
        rlscale sparsity base.pt rl0.pt rl1.pt --cast bf16 --atol 1e-5  # + overlap between them

    With more than one RL reference (RL OTHERS...), the report of RL is followed by the
    pairwise overlap of the changed sets against the chance overlap of random sets of the same
    sizes (over the model, and within each tensor).
    """
    st = Store(store_path(store))
    rep = sparsity_between(base, rl, store=st, atol=atol, rtol=rtol, rank_rtol=rank_rtol,
                           energy=energy, ranks=not no_rank, cast=cast)
    ov = (overlap_between(base, [rl, *others], store=st, atol=atol, rtol=rtol, cast=cast)
          if others else None)
    if as_json:
        out = rep.to_dict()
        if ov is not None:
            out["overlap"] = ov.to_dict(orient="records")
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(format_sparsity(rep, matrices=matrices))
    if ov is not None:
        click.echo("\n" + format_overlap(ov))


def format_overlap(ov: Any) -> str:
    """The overlap table of ``rlscale sparsity BASE RL OTHERS...``."""
    t = ov.copy()
    for col in ("frac_a", "frac_b"):
        t[col] = (100 * t[col]).map(lambda v: f"{v:.2f}%")
    for col in ("jaccard", "chance_jaccard", "chance_jaccard_tensor", "ratio", "ratio_tensor"):
        t[col] = t[col].map(lambda v: _g(v, ".3g"))
    cols = ["a", "b", "frac_a", "frac_b", "n_both", "jaccard", "chance_jaccard", "ratio",
            "chance_jaccard_tensor", "ratio_tensor"]
    return ("overlap of the changed sets (ratio: |A&B| / chance |A&B|; chance: independent "
            "random sets of the same sizes, over the model / within each tensor):\n"
            + t[cols].to_string(index=False))


def format_sparsity(rep: Any, *, matrices: bool = True) -> str:
    """The text report of ``rlscale sparsity``."""
    t = rep.total
    lines = [f"changed: {rep.rule}",
             f"total: {t['n_changed']:,} of {t['numel']:,} parameters changed "
             f"({100 * t['frac_changed']:.2f}%), ||dW||/||W|| = {_g(t['rel_delta_fro'], '.3g')}",
             "", "per layer:"]
    lay = rep.layers.copy()
    lay["changed %"] = (100 * lay["frac_changed"]).map(lambda v: f"{v:.2f}")
    lay["||dW||/||W||"] = lay["rel_delta_fro"].map(lambda v: _g(v, ".3g"))
    lines.append(lay[["layer", "n_tensors", "numel", "n_changed", "changed %", "||dW||/||W||"]]
                 .to_string(index=False))
    if matrices:
        m = rep.matrices.copy()
        m["shape"] = m["shape"].map(lambda s: "x".join(map(str, s)) or "scalar")
        m["changed %"] = (100 * m["frac_changed"]).map(lambda v: f"{v:.2f}")
        m["||dW||/||W||"] = m["rel_delta_fro"].map(lambda v: _g(v, ".3g"))
        for col in ("rank", "max_rank", "rank_energy"):
            m[col] = m[col].map(lambda v: "-" if v is None or v != v else str(int(v)))
        m["stable_rank"] = m["stable_rank"].map(lambda v: _g(v, ".3g"))
        m = m.rename(columns={"rank_energy": f"rank@{rep.energy:g}"})
        cols = ["name", "shape", "changed %", "||dW||/||W||", "rank", f"rank@{rep.energy:g}",
                "stable_rank", "max_rank"]
        lines += ["", f"per tensor (rank: singular values > {rep.rank_rtol:g} * s_max):",
                  m[cols].to_string(index=False)]
    return "\n".join(lines)


# -- passk -------------------------------------------------------------------------------------------
@click.command("passk")
@store_option
@click.argument("base")
@click.argument("rl", nargs=-1)
@click.option("--arm", "arms", multiple=True, metavar="NAME=RUN,RUN,...",
              help="Group RL runs of one arm (one per seed): each arm also gets, per "
                   "difficulty, the mean RL - base over its seeds with a t-interval over seeds, "
                   "how many seeds got each verdict, and a verdict across seeds (repeatable; "
                   "its runs are compared even when not listed as RL).")
@click.option("--difficulties", default=None,
              help="Held-out difficulties (numbers of ops), comma-separated (default: the run's "
                   "eval.ops_min..eval.ops_max).")
@click.option("--problems", type=click.IntRange(min=1), default=None,
              help="Held-out problems per difficulty (default: the run's eval.problems).")
@click.option("--samples", type=click.IntRange(min=1), default=32, show_default=True,
              help="Completions sampled per problem and model; pass@k is reported for k <= this.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to sample.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads for sampling (default: the physical cores not busy, from "
                   "the load average, as rlscale run chooses).")
@click.option("--n-boot", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Bootstrap resamples of the problems for the intervals.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Interval coverage.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for sampling and the bootstrap.")
@click.option("--counts", "counts_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the per-problem correct counts (model, problem_id, difficulty, n, "
                   "c) to this CSV.")
@click.option("--from-counts", "from_counts", type=click.Path(dir_okay=False, exists=True),
              default=None, help="Compare models from a CSV written by --counts (BASE and RL are "
                                 "its model names) instead of sampling.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Save the pass@k curves chart (.png, .svg, .html, .json by suffix).")
@click.option("--json", "as_json", is_flag=True, help="Print verdicts and curves as JSON.")
def passk_command(store: str | None, base: str, rl: tuple[str, ...], arms: tuple[str, ...],
                  difficulties: str | None,
                  problems: int | None, samples: int, temperature: float, device: str,
                  threads: int | None, n_boot: int, level: float, seed: int, counts_path: str | None,
                  from_counts: str | None, out_path: str | None, as_json: bool) -> None:
    """Does RL expand what the model can solve, or only sharpen it? pass@k, base vs RL.

    BASE and RL are run ids in the store (BASE = the pretrained base that run started from;
    RL = the run's latest checkpoint), base directories (model.pt + base.json) or checkpoint
    files. Each model samples --samples completions of every held-out problem; the verifier
    scores them; pass@k curves per difficulty get bootstrap-over-problems intervals, and each
    difficulty a verdict: expanded, sharpened, regressed or no_change (see docs/analysis.md).
    With --from-counts, BASE and RL are model names in a CSV written by --counts, and nothing
    is sampled.

    \b
    Examples:
        rlscale passk RUN_ID RUN_ID --samples 64 --counts c.csv   # a run's base vs its policy
        rlscale passk RUN_A RUN_A RUN_B --difficulties 2,4,6 --out passk.png
        rlscale passk ~/.cache/rlscale/bases/HASH runs/store/_ckpt/RUN/ckpt.pt --json
        rlscale passk --from-counts c.csv "base of RUN_ID" RUN_ID --level 0.9
        rlscale passk --from-counts c.csv "base of A-s0" --arm edge=A-s0,A-s1,A-s2
    """
    groups = dict(parse_arm(a) for a in arms)
    rl = tuple(dict.fromkeys([*rl, *(m for ms in groups.values() for m in ms)]))
    if not rl:
        raise click.UsageError("name at least one RL model (RL... or --arm NAME=RUN,...)")
    chance = None
    if from_counts:
        counts = read_counts(from_counts, base=base, rl=rl)
        diffs = parse_ints(difficulties, name="--difficulties")
        if diffs:
            counts = counts.only(diffs)
        # a counts CSV does not say which task it came from; a model named after a run of the
        # store does (rlscale passk --counts names them so)
        chance = _chance_from_store(Store(store_path(store)), [*rl, base], counts)
    else:
        from rlscale.rl.threads import setup_threads

        setup_threads(threads)  # before torch loads: passive OpenMP waiting
        diffs = parse_ints(difficulties, name="--difficulties")
        try:
            plan = plan_sampling(base, rl, store=Store(store_path(store)), difficulties=diffs,
                                 problems=problems, samples=samples, temperature=temperature,
                                 device=device, seed=seed)
        except NoConfigError as exc:
            raise click.UsageError(str(exc)) from exc
        click.echo(f"sampling {samples} completions x {plan.problems} problems x "
                   f"{len(plan.difficulties)} difficulties per model on {plan.device}", err=True)
        counts = sample_counts(plan)
        chance = _chance(plan.config.task, plan.difficulties)
    report = compare_to_base(counts, n_boot=n_boot, level=level, seed=seed)
    arm_table = (arm_verdicts(counts, report.comparisons, groups, level=level, n_boot=n_boot,
                             seed=seed) if groups else None)
    if counts_path:
        write_counts(counts, counts_path)
    if out_path:
        save_chart(comparisons_chart(report.comparisons, base=report.base), out_path)
    if as_json:
        data = report.to_dict()
        if chance is not None:
            data["chance_verified"] = {str(d): c for d, c in chance.items()}
        if arm_table is not None:
            data["arms"] = records(arm_table)
        click.echo(json.dumps(data, indent=2))
        return
    for label, cmp in report.comparisons:
        click.echo(format_passk(cmp, base=report.base, rl=label, chance=chance))
    if arm_table is not None:
        click.echo(format_arms(arm_table, base=report.base, level=level, chance=chance))


def _chance_from_store(st: Store, labels: list[str], counts: Any) -> dict[int, float] | None:
    """Per difficulty, the chance level of the task of the first label (``RUN`` or ``base of
    RUN``) that is a run of ``st`` made by rlscale; None when no label is."""
    from rlscale.analysis.checkpoints import job_config

    for label in labels:
        run = label.removeprefix("base of ")
        if not st.has_run(run):
            continue
        meta = st.read_meta(run)
        if not meta.config:
            continue
        config = job_config(meta.config, source=str(st.run_dir(run) / "run.json"))
        diffs = sorted({int(d) for t in counts.tables.values() for d in t["difficulty"]})
        return _chance(config.task, diffs)
    return None


def _chance(task: Any, difficulties: Any) -> dict[int, float]:
    """Per difficulty, the chance that one completion's work checks by guessing."""
    from rlscale.rl.chance import chance_levels

    return {c.difficulty: c.reward for c in chance_levels(task, difficulties, verified=True)}


def format_arms(table: Any, *, base: str, level: float,
                chance: dict[int, float] | None = None) -> str:
    """The across-seed block of ``rlscale passk --arm``."""
    pct = f"{100 * level:g}%"
    lines = [f"arms vs {base} (d = RL - base, mean over seeds [{pct} interval over seeds "
             "and problems]; seeds: how many got each verdict)"]
    for r in table.to_dict(orient="records"):
        k = r["k_max"]
        seeds = ", ".join(f"{v} {r[f'seeds_{v}']}" for v in VERDICTS if r[f"seeds_{v}"])
        luck = _luck(chance, r["difficulty"], k)
        lines.append(
            f"  {r['arm']} ({r['n_seeds']} seeds) ops={r['difficulty']}: "
            f"pass@1 d {r['d_pass1']:+.3f} {_signed(r['d_pass1_lower'], r['d_pass1_upper'])}   "
            f"pass@{k} d {r['d_passk']:+.3f} {_signed(r['d_passk_lower'], r['d_passk_upper'])}   "
            f"{r['verdict']}   seeds: {seeds}{luck}")
    return "\n".join(lines)


def _luck(chance: dict[int, float] | None, difficulty: Any, k: int) -> str:
    """What pass@1 and pass@k would be on luck alone at ``difficulty`` ("" when unknown)."""
    if chance is None or difficulty not in chance:
        return ""
    c = chance[difficulty]
    return f"   chance: pass@1 {c:.3f}, pass@{k} {1 - (1 - c) ** k:.3f}"


def _signed(lo: float, hi: float) -> str:
    return "[-]" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:+.3f}, {hi:+.3f}]"


def format_passk(cmp: Any, *, base: str, rl: str, chance: dict[int, float] | None = None) -> str:
    """The text report of one base-vs-RL comparison. ``chance``: per difficulty, the chance that
    one completion's work checks by guessing (:mod:`rlscale.rl.chance`); shown as what pass@1
    and pass@k would be on luck alone."""
    pct = f"{100 * cmp.level:g}%"
    lines = [f"pass@k: {rl} vs {base} (d = RL - base, {pct} paired bootstrap over problems; "
             "verified work only)"]
    for r in cmp.verdicts.to_dict(orient="records"):
        k = r["k_max"]
        cross = " (base above at large k)" if r["crossover"] else ""
        luck = _luck(chance, r["difficulty"], k)
        lines.append(
            f"  ops={r['difficulty']}: pass@1 {r['base_pass1']:.3f} -> {r['rl_pass1']:.3f} "
            f"d {r['d_pass1']:+.3f} [{r['d_pass1_lower']:+.3f}, {r['d_pass1_upper']:+.3f}]   "
            f"pass@{k} {r['base_passk']:.3f} -> {r['rl_passk']:.3f} d {r['d_passk']:+.3f} "
            f"[{r['d_passk_lower']:+.3f}, {r['d_passk_upper']:+.3f}]   "
            f"{r['verdict']}{cross}  (n={r['n_problems']}){luck}")
    lines += [f"  note: {n}" for n in cmp.notes]
    return "\n".join(lines)


COMMANDS = [headroom_command, passk_command, sparsity_command]
