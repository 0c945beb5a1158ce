"""How well rlscale's forecasts extrapolate real reward curves, against naive baselines.

For every curve and each cut (the first 30%, 50% and 70% of its compute range), each method sees
only the points up to the cut and forecasts every later point. Per method and cut it reports:

* ``gm/last``: the geometric mean over curves of the method's mean absolute error divided by the
  last-value baseline's (curves have different scales, so ratios, not errors, are averaged);
  ``beats``: on how many curves that ratio is below 1; ``worst``: the largest ratio;
* ``flagged``: forecasts that carried the ``far_from_recent`` warning (they move more than 4x
  the curve's recent wobble away from its recent level), and ``worst*``, the worst ratio among
  the others;
* ``cov50``/``cov80``/``cov90``: the share of later points inside the 50/80/90% prediction
  intervals, pooled over points (and, in brackets, averaged per curve).

Methods: ``rlscale`` (the default forecast of ``rlscale forecast`` / ``backtest``: the ensemble of
:mod:`rlscale.forecast.ensemble`), ``sigmoid`` (the plain ScaleRL sigmoid with R0 free, least
squares, with its own intervals: ``--forecast law``, the default before this benchmark),
``scalerl-grid`` (ScaleRL's grid procedure), and the baselines of
:mod:`rlscale.forecast.baselines`: ``last``, ``last-k`` and ``log-linear``.

Curves: ``../shared/real-curves/curves.csv`` (39 real curves; see its README) and any files given
with ``--curves`` (same long layout: curve, step, value; optional x column). ``--sim N`` also runs
N simulated ScaleRL curves per noise kind (iid and AR(1)), where the law is exactly right, so a
change that helps real curves cannot quietly break the well-posed case.

    python benchmarks/extrapolation.py                   # real curves, the headline and targets
    python benchmarks/extrapolation.py --sim 20          # plus simulated curves
    python benchmarks/extrapolation.py --per-curve       # plus one line per curve and cut
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlscale.fit import fit  # noqa: E402
from rlscale.forecast.backtest import forecast_fit  # noqa: E402
from rlscale.forecast.baselines import BASELINES, baseline_forecast  # noqa: E402

LEVELS = (0.5, 0.8, 0.9)
CUTS = (0.3, 0.5, 0.7)
REAL = ROOT.parent / "shared" / "real-curves" / "curves.csv"
NAIVE = BASELINES  # the yardsticks the targets name


def load_curves(paths: list[Path]) -> list[tuple[str, str, pd.DataFrame]]:
    """``[(source label, curve name, frame with columns x, y)]`` from long tables."""
    out = []
    for path in paths:
        df = pd.read_csv(path)
        xcol = "x" if "x" in df.columns else "step"
        for name, g in df.groupby("curve", sort=True):
            g = g[[xcol, "value"]].dropna().sort_values(xcol)
            g = g.drop_duplicates(xcol, keep="last")
            out.append((path.name, str(name), pd.DataFrame({"x": g[xcol].to_numpy(float),
                                                            "y": g["value"].to_numpy(float)})))
    return out


def add_curve_arguments(ap: argparse.ArgumentParser, cuts: tuple[float, ...]) -> None:
    """``--curves`` (long tables, default the real-curve set) and ``--cuts``, for the benchmarks
    that score other answers on the same curves (``verdicts.py``, ``targets.py``)."""
    ap.add_argument("--curves", type=Path, nargs="*", default=None,
                    help=f"long tables of curves (default: {REAL})")
    ap.add_argument("--cuts", default=",".join(str(c) for c in cuts))


def curve_paths(given: list[Path] | None) -> list[Path]:
    """The tables named by ``--curves`` that exist (default: the real-curve set)."""
    return [p for p in (given if given is not None else [REAL]) if p.exists()]


def sim_curves(n: int) -> list[tuple[str, str, pd.DataFrame]]:
    from tests.fitsim import TABLE1, ar1_noise, curve

    out = []
    for kind, rho in (("iid", 0.0), ("ar1", 0.7)):
        rng = np.random.default_rng(7 if rho else 3)
        for i in range(n):
            A, B, C_mid, R0 = TABLE1[i % len(TABLE1)]
            noise = ar1_noise(rng, 75, rho, 0.01) if rho else None
            df = curve(A, B, C_mid, R0, rng=rng, noise=noise)
            out.append((f"sim-{kind}", f"sim-{kind}-{i}",
                        pd.DataFrame({"x": df["gpu_hours"].to_numpy(float),
                                      "y": df["value"].to_numpy(float)})))
    return out


def _frame(train: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"run_id": "run", "metric": "reward", "step": train["x"],
                         "gpu_hours": train["x"], "value": train["y"]})


def rlscale_default(train: pd.DataFrame, x_new: np.ndarray) -> dict[str, np.ndarray]:
    """Exactly what ``rlscale backtest`` does with default options (one run, one group)."""
    fitted = fit(_frame(train), metric="reward", x="gpu_hours")
    return forecast_fit(fitted, x_new, levels=LEVELS)


def plain(method: str) -> Callable[[pd.DataFrame, np.ndarray], dict[str, np.ndarray]]:
    """The sigmoid with R0 free, least squares, and its own joint-draw intervals (``--forecast
    law``): the default before this benchmark."""
    def run(train: pd.DataFrame, x_new: np.ndarray) -> dict[str, np.ndarray]:
        fitted = fit(_frame(train), metric="reward", x="gpu_hours", law="sigmoid", r0="fit",
                     method=method)
        return forecast_fit(fitted, x_new, levels=LEVELS, forecast="law")
    return run


def baseline(name: str) -> Callable[[pd.DataFrame, np.ndarray], dict[str, np.ndarray]]:
    def run(train: pd.DataFrame, x_new: np.ndarray) -> dict[str, np.ndarray]:
        return baseline_forecast(name, train["x"].to_numpy(), train["y"].to_numpy(), x_new,
                                 levels=LEVELS)
    return run


METHODS: dict[str, Callable] = {"rlscale": rlscale_default, "sigmoid": plain("lmfit"),
                                "scalerl-grid": plain("scalerl-grid"),
                                **{b: baseline(b) for b in BASELINES}}


def evaluate(curves, cuts, methods) -> pd.DataFrame:
    """One row per (curve, cut, method): mae and coverage counts."""
    rows = []
    for source, name, df in curves:
        x = df["x"].to_numpy()
        lo, hi = float(x.min()), float(x.max())
        for cut in cuts:
            cx = lo + cut * (hi - lo)
            train, test = df[x <= cx], df[x > cx]
            if len(train) < 5 or test.empty:
                continue
            xt, yt = test["x"].to_numpy(), test["y"].to_numpy()
            for mname in methods:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        pred = METHODS[mname](train, xt)
                    except Exception as exc:  # a method that crashes scores as failed
                        print(f"  {mname} failed on {name} cut {cut}: {exc}", file=sys.stderr)
                        pred = {"mean": np.full(xt.shape, np.nan)}
                mean = np.asarray(pred["mean"], dtype=float)
                row = {"source": source, "curve": name, "cut": cut, "method": mname,
                       "n_test": len(yt), "mae": float(np.mean(np.abs(yt - mean))),
                       "flagged": bool(np.any(pred.get("far", False)))}
                for lv in LEVELS:
                    lo_ = pred.get(f"lower@{lv:g}")
                    hi_ = pred.get(f"upper@{lv:g}")
                    if lo_ is None:
                        row[f"cov{int(lv * 100)}"] = np.nan
                    else:
                        inside = (yt >= lo_) & (yt <= hi_)
                        row[f"cov{int(lv * 100)}"] = float(np.mean(inside)) \
                            if np.isfinite(lo_).all() else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


def summarize(res: pd.DataFrame, methods) -> pd.DataFrame:
    """Per (cut, method): gm ratio to last (and to each naive baseline), beats, worst, coverage."""
    out = []
    piv = res.pivot_table(index=["curve", "cut"], columns="method", values="mae")
    for cut in sorted(res["cut"].unique()):
        p = piv.xs(cut, level="cut")
        for m in methods:
            ratio = p[m] / p["last"]
            ok = np.isfinite(ratio) & (ratio > 0)
            r = res[(res["cut"] == cut) & (res["method"] == m)]
            row = {"cut": cut, "method": m, "curves": int(len(p)),
                   "failed": int((~np.isfinite(p[m])).sum()),
                   "gm/last": float(np.exp(np.log(ratio[ok]).mean())) if ok.any() else np.nan,
                   "beats": int((ratio[ok] < 1).sum()),
                   "worst": float(ratio[ok].max()) if ok.any() else np.nan}
            flagged = r.set_index("curve")["flagged"].reindex(p.index).fillna(False).astype(bool)
            plain = ok & ~flagged
            row["flagged"] = int(flagged.sum())
            row["worst_unflagged"] = float(ratio[plain].max()) if plain.any() else np.nan
            # curves whose later points equal the last value exactly (a run that collapsed to a
            # constant): the ratio is undefined, so they are out of every ratio above; a method
            # that misses them unflagged is worse than 2x the last value however small its error
            exact = (p["last"] == 0) & np.isfinite(p[m])
            row["exact_last"] = int(exact.sum())
            row["exact_missed"] = int((exact & (p[m] > 0) & ~flagged).sum())
            for b in NAIVE:
                if b != "last":
                    rb = p[m] / p[b]
                    okb = np.isfinite(rb) & (rb > 0)
                    row[f"gm/{b}"] = float(np.exp(np.log(rb[okb]).mean())) if okb.any() else np.nan
            w = r["n_test"].to_numpy(float)
            for lv in LEVELS:
                c = r[f"cov{int(lv * 100)}"].to_numpy(float)
                good = np.isfinite(c)
                row[f"cov{int(lv * 100)}"] = float((c[good] * w[good]).sum() / w[good].sum()) \
                    if good.any() else np.nan
                row[f"cov{int(lv * 100)}/curve"] = float(c[good].mean()) if good.any() else np.nan
            out.append(row)
    return pd.DataFrame(out)


def print_table(title: str, summ: pd.DataFrame) -> None:
    print(f"\n{title}")
    head = (f"{'cut':>4} {'method':<13} {'gm/last':>7} {'beats':>6} {'worst':>6} "
            f"{'gm/lastk':>8} {'gm/loglin':>9}  {'cov50':>11} {'cov80':>11} {'cov90':>11} "
            f"{'flagged':>7} {'worst*':>6}")
    print(head)
    for _, r in summ.iterrows():
        def cov(lv):
            a, b = r[f"cov{lv}"], r[f"cov{lv}/curve"]
            return "        -  " if not np.isfinite(a) else f"{a:.2f} ({b:.2f})"
        beats = f"{r['beats']}/{r['curves']}"
        print(f"{r['cut']:>4.1f} {r['method']:<13} {r['gm/last']:>7.3f} {beats:>6} "
              f"{r['worst']:>6.2f} {r.get('gm/last-k', np.nan):>8.3f} "
              f"{r.get('gm/log-linear', np.nan):>9.3f}  {cov(50):>11} {cov(80):>11} {cov(90):>11} "
              + (f"{r['flagged']:>7} {r['worst_unflagged']:>6.2f}" if r["flagged"] else
                 f"{'-':>7} {'-':>6}")
              + (f"  failed {r['failed']}" if r["failed"] else ""))


def targets(summ: pd.DataFrame) -> list[tuple[str, bool]]:
    """The issue's targets for the default method on real curves."""
    d = summ[summ["method"] == "rlscale"].set_index("cut")
    checks = ([("gm MAE ratio vs last <= 0.8 at the 50% cut", d.loc[0.5, "gm/last"] <= 0.8)]
              if 0.5 in d.index else [])
    for cut in d.index:
        worst_naive = max(d.loc[cut, "gm/last"], d.loc[cut, "gm/last-k"],
                          d.loc[cut, "gm/log-linear"])
        checks.append((f"cut {cut:.1f}: gm ratio <= 1.0 vs every naive baseline "
                       f"(max {worst_naive:.3f})", worst_naive <= 1.0))
        missed = int(d.loc[cut, "exact_missed"])
        checks.append((f"cut {cut:.1f}: no curve worse than 2x last unless flagged "
                       f"far_from_recent (worst unflagged {d.loc[cut, 'worst_unflagged']:.2f}; "
                       f"worst {d.loc[cut, 'worst']:.2f}; {d.loc[cut, 'flagged']} flagged; "
                       f"{missed} of {int(d.loc[cut, 'exact_last'])} curves where the last value "
                       "is exact missed unflagged)",
                       d.loc[cut, "worst_unflagged"] <= 2.0 and missed == 0))
        c90, c50 = d.loc[cut, "cov90"], d.loc[cut, "cov50"]
        checks.append((f"cut {cut:.1f}: 90% coverage in [0.85, 0.95] ({c90:.3f})",
                       0.85 <= c90 <= 0.95))
        checks.append((f"cut {cut:.1f}: 50% coverage in [0.45, 0.60] ({c50:.3f})",
                       0.45 <= c50 <= 0.60))
    return checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", type=Path, nargs="*", default=None,
                    help=f"long tables of curves (default: {REAL} and benchmarks/data/*.csv)")
    ap.add_argument("--sim", type=int, default=0, help="simulated curves per noise kind")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    ap.add_argument("--cuts", default=",".join(str(c) for c in CUTS))
    ap.add_argument("--per-curve", action="store_true", help="print one line per curve and cut")
    ap.add_argument("--out", type=Path, default=None, help="write the per-curve rows as CSV")
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for must in ("last", *methods):
        if must not in METHODS:
            ap.error(f"unknown method {must!r}; one of {list(METHODS)}")
    if "last" not in methods:
        methods.append("last")
    for b in NAIVE:
        if b not in methods:
            methods.append(b)
    cuts = tuple(float(c) for c in args.cuts.split(","))
    paths = args.curves if args.curves is not None else \
        [REAL, *sorted((ROOT / "benchmarks" / "data").glob("*.csv"))]
    paths = [p for p in paths if p.exists()]
    real = load_curves(paths)
    failed_targets = False
    sets = [("real curves: " + ", ".join(p.name for p in paths), real)] if real else []
    if args.sim:
        sets.append((f"simulated ScaleRL curves ({args.sim} iid + {args.sim} AR(1))",
                     sim_curves(args.sim)))
    all_rows = []
    for title, curves in sets:
        t0 = time.perf_counter()
        res = evaluate(curves, cuts, methods)
        all_rows.append(res.assign(set=title))
        summ = summarize(res, methods)
        print_table(f"{title}: {len(curves)} curves, {time.perf_counter() - t0:.0f} s", summ)
        if args.per_curve:
            piv = res.pivot_table(index=["curve", "cut"], columns="method", values="mae")
            ratio = piv.div(piv["last"], axis=0)
            cov = res[res["method"] == "rlscale"].set_index(["curve", "cut"])["cov90"]
            print(ratio.assign(cov90=cov).round(2).to_string())
        if title.startswith("real") and "rlscale" in methods:
            print("\ntargets (default method, real curves):")
            for text, ok in targets(summ):
                print(f"  [{'met' if ok else 'NOT met'}] {text}")
                failed_targets |= not ok
    if args.out:
        pd.concat(all_rows).to_csv(args.out, index=False)
    return 1 if failed_targets else 0


if __name__ == "__main__":
    raise SystemExit(main())
