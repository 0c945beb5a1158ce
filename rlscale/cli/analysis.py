"""``rlscale headroom``, ``rlscale passk``, ``rlscale sparsity``: the pretraining-vs-RL analyses."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from rlscale.cli._common import store_option, store_path

X_CHOICES = ["gpu_hours", "flops", "tokens", "wall_s", "step"]


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
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, fmt)


def _interval(lo: Any, hi: Any) -> str:
    return f"[{_g(lo)}, {_g(hi)}]" if lo is not None and hi is not None else "(no interval)"


# -- headroom ----------------------------------------------------------------------------------------
@click.command("headroom")
@store_option
@click.option("--metric", required=True, help="Metric whose RL ceiling to model (e.g. reward).")
@click.option("--by", required=True,
              help="Metadata key holding each run's pretraining budget (e.g. pretrain_tokens).")
@click.option("--x", "x", type=click.Choice(X_CHOICES), default="gpu_hours", show_default=True,
              help="RL compute axis of the per-level fits.")
@click.option("--law", default="sigmoid", show_default=True,
              help="RL law fitted per level (needs a ceiling): sigmoid, power or exp.")
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
@click.option("--burn-in", type=float, default=None, help="Drop points below this RL compute.")
@click.option("--max-x", type=float, default=None, help="Use points up to this RL compute only.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Bootstrap refits per level (0: draws from each fit's covariance).")
@click.option("--resample", type=click.Choice(["points", "runs"]), default="points",
              show_default=True, help="Bootstrap unit for the per-level fits.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Interval coverage.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for resampling.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def headroom_command(store: str | None, metric: str, by: str, x: str, law: str,
                     headroom_law: str, cap: float | None, at: str | None,
                     burn_in: float | None, max_x: float | None, bootstrap: int, resample: str,
                     level: float, seed: int, as_json: bool) -> None:
    """Model the RL ceiling A as a function of pretraining and forecast it at a larger budget.

    Fits the RL law per level of --by (each level pools its runs), then the headroom law to the
    levels' ceilings, refitted on joint draws of them for the intervals.

    \b
    Examples:
        rlscale headroom --metric reward --by pretrain_tokens --at 1e10
        rlscale headroom --metric reward --by pretrain_tokens --cap 1 --at 1e10,1e11 --json
    """
    from rlscale.analysis.headroom import headroom
    from rlscale.errors import StoreError
    from rlscale.store import Store, load_points

    at_values = _floats(at, name="--at")
    root = store_path(store)
    st = Store(root)
    if not st.run_ids():
        msg = f"no runs in store {str(root)!r} (pass --store DIR or set RLSCALE_STORE)"
        raise StoreError(msg)
    points = load_points(st, metric=metric, with_meta=True)
    if points.empty:
        raise click.BadParameter(f"no points for metric {metric!r} in {str(root)!r}",
                                 param_hint="--metric")
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
        tag = " (fixed)" if p.get("fixed") else ""
        lines.append(f"  {name:>5} = {_g(p['value'])} {_interval(p.get('lower'), p.get('upper'))}"
                     f"{tag}")
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
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("rl", type=click.Path(dir_okay=False))
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
def sparsity_command(base: str, rl: str, atol: float | None, rtol: float | None,
                     rank_rtol: float, energy: float, no_rank: bool, matrices: bool,
                     as_json: bool) -> None:
    """Which parameters did RL change, and how low-rank is each update?

    BASE and RL are torch checkpoint files of the same architecture (a state dict, or a dict
    holding one under 'model'/'state_dict').

    \b
    Examples:
        rlscale sparsity base.pt rl.pt
        rlscale sparsity base.pt rl.pt --rtol 0 --atol 0      # bitwise inequality
        rlscale sparsity base.pt rl.pt --rtol 0.0039 --json   # would it survive a bf16 cast?
    """
    from rlscale.analysis.sparsity import load_state_dict, update_sparsity

    rep = update_sparsity(load_state_dict(base), load_state_dict(rl), atol=atol, rtol=rtol,
                          rank_rtol=rank_rtol, energy=energy, ranks=not no_rank,
                          base_source=base, rl_source=rl)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
        return
    click.echo(format_sparsity(rep, matrices=matrices))


def format_sparsity(rep: Any, *, matrices: bool = True) -> str:
    """The text report of ``rlscale sparsity``."""
    t = rep.total
    lines = [f"changed: |w_rl - w_base| > {rep.atol:g} + {rep.rtol:.3g} * |w_base|",
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


COMMANDS = [headroom_command, sparsity_command]
