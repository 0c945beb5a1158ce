"""How forecast and backtest results are printed: plain-text tables and JSON."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from rlscale.text import group_label, interval, jsonable, num, records


def to_json(payload: dict[str, Any]) -> str:
    """``payload`` with DataFrames as lists of records, NaN/inf as null, indented."""
    clean = {k: records(v) if isinstance(v, pd.DataFrame) else jsonable(v)
             for k, v in payload.items()}
    return json.dumps(clean, indent=2, allow_nan=False)


def reward_table(df: pd.DataFrame) -> str:
    rows = []
    for r in df.to_dict("records"):
        row = {"group": _label(r), "x": num(r["x"]), "mean": num(r["mean"]),
               "mean interval": interval(r["mean_lower"], r["mean_upper"]),
               "new-run interval": interval(r["pred_lower"], r["pred_upper"])}
        row.update(_cost_cells(r, bounds=False))
        row["warnings"] = _warn(r)
        if "rank" in r:
            row = {"rank": r["rank"], **row, "P(best)": num(r["p_best"])}
        rows.append(row)
    return _text(rows)


def compute_table(df: pd.DataFrame) -> str:
    rows = []
    for r in df.to_dict("records"):
        row = {"group": _label(r)}
        if "fraction" in r:
            row["fraction"] = num(r["fraction"])
        x = {"never": "never", "uncertain": f">{num(r['x_lower'])}"}.get(r["status"], num(r["x"]))
        row.update({"target": num(r["target"]), "x": x,
                    "interval": "-" if r["status"] == "never" else interval(r["x_lower"], r["x_upper"]),
                    "P(reach)": num(r["p_reach"]), "status": r["status"]})
        row.update(_cost_cells(r, bounds=True))
        row["warnings"] = _warn(r)
        rows.append(row)
    return _text(rows)


def crossover_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "no crossovers in range"
    rows = [{"overtaker": r["leader_after"], "overtaken": r["leader_before"], "at x": num(r["x"]),
             "interval": interval(r["x_lower"], r["x_upper"]), "P(cross in range)": num(r["p_cross"])}
            for r in df.to_dict("records")]
    return _text(rows)


def backtest_table(df: pd.DataFrame) -> str:
    """The per-group table, then the baselines beside the forecast and a plain verdict."""
    recs = df.to_dict("records")
    rows = [{"group": r["group"], "cut": num(r["cut_x"]), "fit on": r["n_fit"],
             "tested": r["n_test"], "mean |err|": num(r["mae"]), "max |err|": num(r["max_abs_error"]),
             "coverage": num(r["coverage"]), "nominal": num(r["level"]),
             "warnings": ",".join(dict.fromkeys(r["warnings"])) or "-"} for r in recs]
    base = [{"group": r["group"], "forecast": num(r["mae"]),
             "last value": num(r.get("mae_last")), "last-5 mean": num(r.get("mae_last_k")),
             "log-linear": num(r.get("mae_log_linear")),
             "vs best": num(r.get("vs_best"))} for r in recs]
    lines = [_text(rows), "", "mean |err| of the forecast and of naive baselines (each run "
             "forecast from its own points before the cut); vs best = forecast / best baseline:",
             _text(base)]
    groups = [r for r in recs if r["group"] != "overall"]
    losing = [f"{r['group']} (best: {r['best_baseline']})" for r in groups
              if r.get("vs_best") is not None and r["vs_best"] == r["vs_best"]
              and r["vs_best"] >= 1]
    if losing:
        lines.append(f"the forecast does not beat the best naive baseline on {len(losing)} of "
                     f"{len(groups)} group(s): " + ", ".join(losing))
    elif groups:
        lines.append(f"the forecast beats every naive baseline on all {len(groups)} group(s)")
    return "\n".join(lines)


def _cost_cells(r: dict[str, Any], *, bounds: bool) -> dict[str, str]:
    cells = {}
    for unit in ("gpu_hours", "usd"):
        if unit not in r:
            continue
        if bounds and r.get("status") == "uncertain":
            cells[unit] = f">{num(r[unit + '_lower'])}"
        elif bounds and r.get("status") != "never":
            cells[unit] = f"{num(r[unit])} {interval(r[unit + '_lower'], r[unit + '_upper'])}"
        else:
            cells[unit] = "never" if r.get("status") == "never" else num(r[unit])
    return cells


def _label(r: dict[str, Any]) -> str:
    g = r["group"]
    return group_label(g) if isinstance(g, dict) else str(g)


def _warn(r: dict[str, Any]) -> str:
    w = r.get("warnings")
    return ",".join(dict.fromkeys(w)) if isinstance(w, list) and w else "-"


def _text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(nothing to show)"
    return pd.DataFrame(rows).to_string(index=False)
