"""Benchmark the fitting engine against lmfit ``Model.fit`` in a Python loop, in the same run.

(a) one sigmoid fit of a 100-point curve; (b) a 1,000-resample bootstrap of it; (c) 1,000 groups
fitted at once. Prints times and ratios (baseline / ours: > 1 means rlscale is faster) and, for
(b) and (c), how far our estimates are from lmfit's on the same data.

    python benchmarks/fit.py            # full sizes
    python benchmarks/fit.py --quick    # 100 resamples / 100 groups, for a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings

import lmfit
import numpy as np
import pandas as pd

from rlscale.fit import fit
from rlscale.fit import uncertainty as unc
from rlscale.fit.solver import Space, solve
from rlscale.fit.laws import get_law

LAW = get_law("sigmoid")
TRUTH = {"A": 0.610, "B": 1.92, "C_mid": 2542.0, "R0": 0.45}


def sig(x, A, B, C_mid, R0):
    return LAW.func(x, A=A, B=B, C_mid=C_mid, R0=R0)


MODEL = lmfit.Model(sig)


def curve(rng: np.random.Generator, n: int = 100, run_id: str = "r", truth=None) -> pd.DataFrame:
    t = truth or TRUTH
    c = np.geomspace(t["C_mid"] / 30, t["C_mid"] * 15, n)
    y = sig(c, **t) + rng.normal(0, 0.01, n)
    return pd.DataFrame({"run_id": run_id, "step": np.arange(n), "metric": "reward",
                         "value": y, "gpu_hours": c})


def lmfit_fit(x, y, start, bounds, weights=None):
    params = MODEL.make_params(**start)
    for k, (lo, hi) in bounds.items():
        params[k].set(min=lo, max=hi)
    return MODEL.fit(y, params, x=x, weights=weights)


def timed(func, repeat: int = 1, warm: bool = True):
    if warm:
        func()  # warm-up (imports, caches)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_single(df: pd.DataFrame) -> None:
    x, y = df["gpu_hours"].to_numpy(), df["value"].to_numpy()
    bounds, starts = LAW.bounds(x, y), LAW.starts(x, y)
    t_ours, ours = timed(lambda: fit(df), repeat=20)
    t_one, one = timed(lambda: lmfit_fit(x, y, starts[0], bounds), repeat=20)
    t_multi, _ = timed(lambda: min((lmfit_fit(x, y, s, bounds) for s in starts),
                                   key=lambda r: r.chisqr), repeat=20)
    print(f"(a) single fit, {len(x)} points")
    print(f"    rlscale.fit (intervals + warnings + held-out; draws on use):  {1e3 * t_ours:8.2f} ms"
          f"  (nfev {ours.gof['nfev']})")
    print(f"    lmfit Model.fit, one start (guess):                          {1e3 * t_one:8.2f} ms"
          f"  ratio {t_one / t_ours:5.2f}")
    print(f"    lmfit Model.fit, loop over the same {len(starts)} starts:          "
          f"{1e3 * t_multi:8.2f} ms  ratio {t_multi / t_ours:5.2f}")
    diffs = {p: abs(ours.params[p].value - one.best_values[p]) / (abs(one.best_values[p])
                                                                  if p == "C_mid" else 1.0)
             for p in LAW.param_names}
    print("    |ours - lmfit| (C_mid relative): "
          + ", ".join(f"{p} {d:.1e}" for p, d in diffs.items())
          + ("  (all within 1e-3)" if max(diffs.values()) <= 1e-3 else "  (NOT within 1e-3)"))
    t_draws, _ = timed(lambda: len(fit(df).samples), repeat=20)
    print(f"    rlscale.fit then reading .samples (1,000 normal draws):      {1e3 * t_draws:8.2f} ms"
          f"  ratio {t_one / t_draws:5.2f}")


def bench_bootstrap(df: pd.DataFrame, n: int) -> None:
    x, y = df["gpu_hours"].to_numpy(), df["value"].to_numpy()
    run = df["run_id"].to_numpy()
    full = fit(df)
    bounds = LAW.bounds(x, y)
    space = Space.build(LAW, bounds, {})
    u = space.vector(full.values)
    wts = unc.resample_weights(run, x, n=n, how="points", block=1, seed=0)

    def ours():
        uu, cost, conv = solve(space, x, y, wts, np.repeat(u[None, :], n, axis=0))
        return space.to_natural(uu)

    def loop():
        out = np.empty((n, 4))
        for i in range(n):
            keep = wts[i] > 0
            r = lmfit_fit(x[keep], y[keep], full.values, bounds, weights=np.sqrt(wts[i][keep]))
            out[i] = [r.best_values[p] for p in LAW.param_names]
        return out

    t_ours, est = timed(ours, repeat=3)
    t_loop, ref = timed(loop, warm=False)
    t_e2e, _ = timed(lambda: fit(df, bootstrap=n), repeat=3)
    diff = np.abs(est - ref)
    diff[:, 2] /= ref[:, 2]  # C_mid compared relatively
    within = np.mean(np.all(diff <= 1e-3, axis=1))
    print(f"(b) bootstrap, {n} resamples of the {len(x)}-point curve (warm start at the full fit)")
    print(f"    rlscale batched LM (all resamples at once):   {t_ours:8.3f} s")
    print(f"    lmfit Model.fit loop, same resample weights:  {t_loop:8.3f} s"
          f"  ratio {t_loop / t_ours:6.1f}x")
    print(f"    rlscale.fit(bootstrap={n}) end to end:       {t_e2e:8.3f} s"
          f"  ratio {t_loop / t_e2e:6.1f}x")
    print(f"    estimates within 1e-3 of lmfit (A, B, R0 absolute; C_mid relative): "
          f"{100 * within:.1f}% of resamples; max diffs A {diff[:, 0].max():.1e}, "
          f"B {diff[:, 1].max():.1e}, C_mid {diff[:, 2].max():.1e}, R0 {diff[:, 3].max():.1e}")


def bench_groups(n_groups: int) -> None:
    rng = np.random.default_rng(1)
    frames = []
    for g in range(n_groups):
        truth = {"A": rng.uniform(0.55, 0.75), "B": rng.uniform(1.4, 2.2),
                 "C_mid": rng.uniform(2000, 11000), "R0": rng.uniform(0.4, 0.5)}
        frames.append(curve(rng, run_id=f"g{g:04d}", truth=truth))
    points = pd.concat(frames, ignore_index=True)

    def loop():
        out = {}
        for run_id, gdf in points.groupby("run_id", sort=True):
            x, y = gdf["gpu_hours"].to_numpy(), gdf["value"].to_numpy()
            r = lmfit_fit(x, y, LAW.guess(x, y), LAW.bounds(x, y))
            out[run_id] = r.best_values["A"]
        return out

    def loop_multi():
        for _, gdf in points.groupby("run_id", sort=True):
            x, y = gdf["gpu_hours"].to_numpy(), gdf["value"].to_numpy()
            bounds = LAW.bounds(x, y)
            min((lmfit_fit(x, y, s, bounds) for s in LAW.starts(x, y)), key=lambda r: r.chisqr)

    t_ours, fits = timed(lambda: fit(points, by="run_id"), warm=False)
    t_loop, ref = timed(loop, warm=False)
    t_multi, _ = timed(loop_multi, warm=False)
    a_diff = np.array([abs(f.params["A"].value - ref[f.group["run_id"]]) for f in fits])
    print(f"(c) {n_groups} groups of 100 points")
    print(f"    rlscale.fit(points, by='run_id'):             {t_ours:8.3f} s")
    print(f"    lmfit Model.fit loop (one start per group):   {t_loop:8.3f} s"
          f"  ratio {t_loop / t_ours:5.2f}")
    print(f"    lmfit Model.fit loop (the same 5 starts):     {t_multi:8.3f} s"
          f"  ratio {t_multi / t_ours:5.2f}")
    print(f"    |A_ours - A_lmfit|: median {np.median(a_diff):.1e}, "
          f"{np.mean(a_diff < 1e-3) * 100:.1f}% within 1e-3")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 resamples and 100 groups")
    args = ap.parse_args()
    n = 100 if args.quick else 1000
    warnings.simplefilter("ignore")
    df = curve(np.random.default_rng(0))
    bench_single(df)
    bench_bootstrap(df, n)
    bench_groups(n)


if __name__ == "__main__":
    main()
