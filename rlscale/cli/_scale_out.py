"""How ``forecast --scale-by`` and ``backtest --scale-by --leave-largest-out`` print."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rlscale.cli._forecast_out import compute_table, reward_table
from rlscale.forecast.scale_forecast import ScaleBacktest, ScaleForecast, summary_line
from rlscale.text import interval, num


def _g(v: Any) -> str:
    return num(float(v)) if v is not None else "-"


def _law_line(name: str, law: dict[str, Any]) -> str:
    p = law["params"]

    def est(k: str) -> str:
        return f"{_g(p[k]['value'])} {interval(p[k]['lower'], p[k]['upper'])}"

    form = law["form"]
    if form == "saturating":
        text = f"A = A_max - D * (N/N_ref)^-alpha: A_max = {est('A_max')}, D = {est('D')}, " \
               f"alpha = {est('alpha')}"
    elif form == "power":
        text = f"log10 C_mid = a + b * z: a = {est('a')}, b = {est('b')} (C_mid ~ N^b)"
    elif form == "shared":
        text = f"{name} = {est('a')} at every scale"
    else:
        text = f"{name} = a + b * z: a = {est('a')}, b = {est('b')}"
    check = (f"chi2/dof = {law['chi2_dof']:.3g}" if law["chi2_dof"] is not None
             else "no spare scale to check it" if law["dof"] == 0 else "no check")
    scores = law.get("scores") or {}
    chosen = (f"; held-out error: shared {num(scores['shared'], '.3g')}, loglinear "
              f"{num(scores['loglinear'], '.3g')}" if scores else "")
    return f"  {name:<5} {form:<10} {text}  ({check}, dof {law['dof']}{chosen})"


def scale_report(fc: ScaleForecast) -> str:
    """The text of ``rlscale forecast --scale-by``."""
    laws, d = fc.laws, fc.to_dict()
    key, pct = fc.key, f"{fc.level:.0%}"
    runs = [int(f.data["run_id"].nunique()) for f in laws.fits]
    lines = [f"{fc.metric} vs {fc.x_axis} across {key}: sigmoid fit per scale, then laws of its "
             f"parameters in z = log10(N / {num(laws.laws['A'].point.p_ref)}); {pct} intervals "
             f"from {len(laws.draws[0]['A'])} joint draws",
             "scales fitted: " + ", ".join(f"{num(n)} ({r} run{'s' * (r != 1)})"
                                           for n, r in zip(laws.scales, runs)),
             "", "laws:"]
    lines += [_law_line(name, law) for name, law in d["laws"].items()]
    params = fc.params[fc.params["kind"] == "predicted"]
    for n in dict.fromkeys(fc.curve["scale"]):
        here = params[params["scale"] == n]
        lines += ["", f"{key}={num(n)} (predicted, {n / laws.largest:.3g}x the largest "
                      f"observed): " + ", ".join(
                          f"{r['param']} = {_g(r['value'])} {interval(r['lower'], r['upper'])}"
                          for r in here.to_dict("records"))]
        rows = fc.curve[fc.curve["scale"] == n].assign(group=f"{key}={num(n)}")
        lines += ["  reward at compute:", _indent(reward_table(rows))]
        if fc.compute is not None:
            c = fc.compute[fc.compute["scale"] == n].assign(group=f"{key}={num(n)}",
                                                            warnings=[[]])
            lines += ["  compute:", _indent(compute_table(c))]
        lines.append("  " + _overtake_text(fc.overtakes[fc.overtakes["scale"] == n].iloc[0]))
    warns = [(n, w) for n, ws in fc.warnings.items() for w in ws]
    if warns:
        lines += ["", "warnings:"]
        seen = set()
        for _, w in warns:
            if (w.code, w.message) not in seen:
                seen.add((w.code, w.message))
                lines.append(f"  - {w.code}: {w.message}")
    return "\n".join(lines)


def _overtake_text(r: pd.Series) -> str:
    if r["status"] == "crosses":
        return (f"overtakes {r['vs']} at {num(r['x'])} {interval(r['x_lower'], r['x_upper'])} "
                f"(P(crosses in range) = {num(r['p_cross'], '.3g')})")
    return f"{r['status']} {r['vs']} over the compute range"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def scale_backtest_report(bt: ScaleBacktest) -> str:
    """The text of ``rlscale backtest --scale-by --leave-largest-out``."""
    s = bt.summary
    lines = [f"leave-largest-out backtest of {bt.metric} vs {bt.x_axis} across {bt.key}: laws "
             f"fitted on {', '.join(num(v) for v in bt.fitted)}; forecast the whole curve at "
             f"{num(bt.held_out)} ({s['n_test']} points)", "",
             f"  mean |err| forecast {num(s['mae'])}, naive {num(s['mae_naive'])} (the "
             f"{bt.key}={num(bt.fitted[-1])} curve unchanged), vs naive {num(s['vs_naive'])}; "
             f"the held-out scale's own fit {num(s['mae_own_fit'])}",
             "  coverage of the prediction intervals: " + ", ".join(
                 f"{num(s[k])} at {k.split('@')[1]}" for k in s if k.startswith("coverage@")),
             "", "  parameters of the held-out scale, predicted against its own fit:"]
    rows = [{"param": r["param"], "predicted": num(r["predicted"]),
             "interval": interval(r["lower"], r["upper"]), "fitted": num(r["fitted"]),
             "inside": num(r["inside"])} for r in bt.params.to_dict("records")]
    lines += [_indent(_indent(pd.DataFrame(rows).to_string(index=False))), "", summary_line(bt)]
    if bt.warnings:
        lines += ["", "warnings:"] + [f"  - {w.code}: {w.message}" for w in bt.warnings]
    return "\n".join(lines)
