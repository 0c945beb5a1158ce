"""Fit one law to one curve (x, y, run_id arrays): starts, solve, intervals, warnings."""

from __future__ import annotations

import functools
import math
import warnings as pywarnings
from typing import Any

import numpy as np
import pandas as pd

from rlscale.fit import uncertainty as unc
from rlscale.fit.batch import Presolved, space_for
from rlscale.fit.checks import check_fit
from rlscale.fit.fast import fast_fit, suspicious
from rlscale.fit.grid import A_GRID, grid_fit
from rlscale.fit.heldout import heldout
from rlscale.fit.laws import Law
from rlscale.fit.profile import profile_interval
from rlscale.fit.result import FitResult, FitWarning, ParamEstimate
from rlscale.fit.solver import Space, solve

N_NORMAL_DRAWS = 1000


def starts_for(space: Space, x: np.ndarray, y: np.ndarray, *, first_only: bool = False
               ) -> np.ndarray:
    """The law's starting points as internal vectors (S, P), nudged strictly inside bounds
    (only the guess, (1, P), with ``first_only``)."""
    starts = [space.law.guess(x, y)] if first_only else space.law.starts(x, y)
    rows = np.array([space.vector(s) for s in starts])
    lo, hi = space.lower, space.upper
    span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    return np.clip(rows, lo + 1e-6 * span, hi - 1e-6 * span)


def _lmfit_polish(law: Law, space: Space, x: np.ndarray, y: np.ndarray, u: np.ndarray,
                  huber: float | None) -> tuple[np.ndarray, bool, int]:
    """Run lmfit from the best multi-start solution, in the solver's internal space (log of the
    scale parameters, which lmfit's bound transform handles far better than 1e-30..1e30).
    Returns (internal u, success, nfev)."""
    import lmfit

    params = lmfit.Parameters()
    names = [f"log_{n}" if lg else n for n, lg in zip(space.free, space.is_log())]
    for i, name in enumerate(names):
        lo, hi = float(space.lower[i]), float(space.upper[i])
        params.add(name, value=min(max(float(u[i]), lo), hi), min=lo, max=hi)

    def residual(p: lmfit.Parameters) -> np.ndarray:
        vec = np.array([p[n].value for n in names])
        r = space.predict(x, vec[None, :])[0] - y
        return np.where(np.isfinite(r), r, 1e6)

    # We compute the covariance ourselves (finish); lmfit's would only warn on degenerate data.
    mini = lmfit.Minimizer(residual, params, calc_covar=False)
    with pywarnings.catch_warnings(), np.errstate(all="ignore"):
        pywarnings.simplefilter("ignore", RuntimeWarning)
        if huber is None:
            res = mini.minimize(method="leastsq")
        else:
            res = mini.minimize(method="least_squares", loss="huber", f_scale=huber)
    out = np.array([res.params[n].value for n in names], dtype=float)
    return out, bool(res.success), int(res.nfev)


def _cost(space: Space, x, y, u, huber) -> float:
    r = space.predict(x, u[None, :])[0] - y
    if huber is None:
        c = 0.5 * np.sum(r * r)
    else:
        a = np.abs(r)
        c = np.sum(np.where(a <= huber, 0.5 * r * r, huber * a - 0.5 * huber**2))
    return float(c) if np.isfinite(c) else math.inf


def failed(*, law: Law, base: dict[str, Any], code: str, message: str,
           extra: list[FitWarning] | None = None) -> FitResult:
    """A FitResult for a group that could not be fitted (ok=False, no params)."""
    return FitResult(params={}, samples=pd.DataFrame(columns=list(law.param_names), dtype=float),
                     samples_method="none", resid_sd=float("nan"), resid_ar1=float("nan"),
                     gof={}, warnings=[*(extra or []), FitWarning(code, message)], ok=False,
                     **base)


def fit_curve(x: np.ndarray, y: np.ndarray, run_id: np.ndarray, *, law: Law,
              fixed: dict[str, float], base: dict[str, Any], loss: str, method: str,
              level: float, bootstrap: int, resample: str, seed: int,
              warnings: list[FitWarning], presolved: Presolved | None = None,
              with_heldout: bool = True, interval: str = "wald",
              fast_path: bool = True, fast_only: bool = False) -> FitResult | None:
    """Fit ``law`` to the arrays (already windowed, finite). ``base`` carries the FitResult's
    bookkeeping fields (group, law, metric, x, n_points, window, method, level, data, options).
    ``presolved``: the best multi-start solution when many groups were solved together;
    ``with_heldout=False`` leaves the held-out score to the caller (batched over groups).
    ``fast_path``: try one MINPACK start first (:mod:`rlscale.fit.fast`) and run the multi-start
    and lmfit polish only when its answer is suspicious (linear loss, ``method='lmfit'``);
    ``fast_only=True`` returns None instead of falling back (the caller batches those groups)."""
    space = space_for(law, x, y, fixed, base.get("metric"))
    n_free = len(space.free)
    n_distinct = np.unique(x).size
    if n_distinct < n_free + 1 or x.size < n_free + 2:
        return failed(law=law, base=base, code="too_few_points", extra=warnings,
                      message=f"{x.size} points at {n_distinct} distinct {base['x']} values; the "
                              f"{law.name} law has {n_free} free parameters and needs at least "
                              f"{n_free + 2} points at {n_free + 1} distinct values")
    huber = None
    if loss == "huber":
        u_ls, c_ls, _ = solve(space, x, y, 1.0, starts_for(space, x, y))
        r = space.predict(x, u_ls[np.argmin(c_ls)][None, :])[0] - y
        mad = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        huber = 1.345 * max(mad, 1e-12)
    fast = None
    if method == "scalerl-grid":
        u, conv, nfev = grid_fit(space, x, y, huber=huber)
        a = float(space.to_natural(u)[space.free.index("A")])
        if a <= A_GRID.min() + 1e-9 or a >= A_GRID.max() - 1e-9:
            warnings.append(FitWarning("param_at_bound", f"A = {a:.3f} is at the edge of the "
                                       f"ScaleRL grid [{A_GRID.min():.3f}, {A_GRID.max():.3f}]; "
                                       "use --method lmfit for metrics outside that range"))
    else:
        common = dict(space=space, x=x, y=y, run_id=run_id, base=base, level=level,
                      seed=seed, huber=huber)
        if presolved is not None and huber is None:
            u, best_cost, conv = presolved
        elif huber is None and fast_path:
            fast = fast_fit(space, x, y, starts_for(space, x, y, first_only=True)[0])
        if fast is not None:  # one MINPACK start (lmfit's engine): no multi-start, no polish,
            u, best_cost, conv, nfev = fast  # unless the finished fit looks suspicious
            cheap = bootstrap == 0 and interval == "wald"
            trial = finish(u=u, converged=True, bootstrap=0, resample=resample,
                           warnings=list(warnings), nfev=nfev, with_heldout=with_heldout and cheap,
                           interval="wald", **common)
            if not suspicious(set(trial.warning_codes), trial.resid_ar1):
                if cheap:
                    return trial
                return finish(u=u, converged=True, bootstrap=bootstrap, resample=resample,
                              warnings=warnings, nfev=nfev, with_heldout=with_heldout,
                              interval=interval, **common)
            fast = None
        if fast_only:
            return None
        if presolved is None or huber is not None:
            uu, cost, conv_all = solve(space, x, y, 1.0, starts_for(space, x, y), huber=huber)
            best = int(np.argmin(cost))
            u, best_cost, conv = uu[best], float(cost[best]), bool(conv_all[best])
        if not math.isfinite(best_cost):
            return failed(law=law, base=base, code="did_not_converge", extra=warnings,
                          message="no start gave a finite loss")
    if method != "scalerl-grid":
        try:
            u_lm, ok_lm, nfev = _lmfit_polish(law, space, x, y, u, huber)
        except (ValueError, FloatingPointError) as exc:  # lmfit refuses some degenerate data
            u_lm, ok_lm, nfev = u, False, 0
            warnings.append(FitWarning("did_not_converge", f"lmfit failed: {exc}"))
        if _cost(space, x, y, u_lm, huber) <= _cost(space, x, y, u, huber) * (1 + 1e-9):
            u, conv = u_lm, ok_lm or conv
    return finish(space=space, x=x, y=y, run_id=run_id, u=u, converged=conv, base=base,
                  level=level, bootstrap=bootstrap, resample=resample, seed=seed, huber=huber,
                  warnings=warnings, nfev=nfev, with_heldout=with_heldout, interval=interval)


def finish(*, space: Space, x, y, run_id, u, converged, base, level, bootstrap, resample, seed,
           huber, warnings, nfev, with_heldout: bool = True, interval: str = "wald"
           ) -> FitResult:
    """Intervals, samples, goodness of fit and warnings around a solution ``u``."""
    law = space.law
    seed = unc.group_seed(seed, base.get("group", {}), x, y)
    n, k = x.size, len(space.free)
    pred = space.predict(x, u[None, :])[0]
    resid = y - pred
    dof = max(n - k, 1)
    rss = float(np.sum(resid**2))
    sd = math.sqrt(rss / dof)
    rho = unc.ar1(resid, run_id, x)
    infl = unc.inflation(rho)
    cov_u = unc.covariance(space, x, y, u, sd) * infl
    q = unc.t_quantile(level, dof)
    nat = space.to_natural(u)
    se_u = np.sqrt(np.clip(np.diag(cov_u), 0, None)) if cov_u.size else np.zeros(0)
    wald = "wald-ar1" if infl > 1 else "wald"
    is_log = space.is_log()
    lo_nat, hi_nat = space.to_natural(space.lower), space.to_natural(space.upper)
    params: dict[str, ParamEstimate] = {}
    for i, name in enumerate(space.free):
        se_nat = se_u[i] * nat[i] if is_log[i] else se_u[i]
        lo, hi = unc.wald_interval(float(nat[i]), float(se_nat), log=bool(is_log[i]), q=q)
        lo, hi = max(lo, float(lo_nat[i])), min(hi, float(hi_nat[i]))  # NaN stays NaN
        params[name] = ParamEstimate(float(nat[i]), lo, hi, float(se_nat), True, wald)
    if interval == "profile" and huber is None:
        base_cost = 0.5 * rss
        how = "profile-ar1" if infl > 1 else "profile"
        for i, name in enumerate(space.free):
            lo, hi = profile_interval(space, x, y, u, i, se=float(se_u[i]),
                                      threshold=0.5 * q * q * sd * sd * infl,
                                      base_cost=base_cost)
            params[name] = ParamEstimate(float(nat[i]), lo, hi, params[name].stderr, True, how)
    for name, value in space.fixed.items():
        params[name] = ParamEstimate(float(value), float(value), float(value), 0.0, False, "fixed")
    params = {p: params[p] for p in law.param_names}

    draws = None  # normal draws: made on first use of FitResult.samples
    samples_method = f"normal-{wald}"
    gof: dict[str, Any] = {}
    if bootstrap > 0:
        how = resample
        if how == "runs" and pd.unique(run_id).size < 2:
            warnings.append(FitWarning("resample_fallback",
                                       "--resample runs needs >= 2 runs in the group; "
                                       "resampled points instead"))
            how = "points"
        elif how == "runs" and pd.unique(run_id).size < 5:
            k = pd.unique(run_id).size
            warnings.append(FitWarning("few_runs", f"--resample runs over only {k} runs: the "
                                       "bootstrap sees few distinct resamples, so intervals are "
                                       "coarse and tend to be too narrow; add seeds or use "
                                       "--resample points"))
        block = 1
        if how == "points" and math.isfinite(rho) and rho > 0.2:
            # 3x the AR(1) integrated autocorrelation time: shorter blocks under-cover (79% at
            # rho = 0.7 with 1x, 91% with 3x; benchmarks/fit_coverage.py).
            block = max(2, min(x.size // 4, math.ceil(3 * infl)))
        wts = unc.resample_weights(run_id, x, n=bootstrap, how=how, block=block, seed=seed)
        bdraws, conv_frac = unc.bootstrap(space, x, y, u, wts, huber=huber)
        samples_method = (f"bootstrap-{how}" if block == 1
                          else f"bootstrap-blocks(length={block})")
        gof["bootstrap_converged"] = float(conv_frac)
        if len(bdraws) >= 10:
            draws = bdraws
            bnat = space.to_natural(bdraws)
            a = (1 - level) / 2
            for i, name in enumerate(space.free):
                lo, hi = np.quantile(bnat[:, i], [a, 1 - a])
                params[name] = ParamEstimate(float(nat[i]), float(lo), float(hi),
                                             float(np.std(bnat[:, i], ddof=1)), True,
                                             samples_method)
    lazy = {}
    if draws is None:
        lazy["samples"] = functools.partial(_normal_samples, space, u, cov_u, seed)
        samples = None
    else:
        samples = samples_frame(space, draws)

    tss = float(np.sum((y - y.mean()) ** 2))
    gof.update(rmse=math.sqrt(rss / n), r2=1 - rss / tss if tss > 0 else float("nan"),
               aic=n * math.log(max(rss, 1e-300) / n) + 2 * k,
               bic=n * math.log(max(rss, 1e-300) / n) + k * math.log(n), nfev=nfev)
    if with_heldout:
        gof.update(heldout(space, x, y, u, huber=huber))
    warnings.extend(check_fit(space, x, y, u, params, cov_u, converged=converged, rho=rho,
                              metric=base.get("metric"), run_id=run_id))
    return FitResult(params=params, samples=samples, samples_method=samples_method,
                     resid_sd=sd, resid_ar1=rho, gof=gof, warnings=warnings, ok=True,
                     _lazy={**base.get("_lazy", {}), **lazy},
                     **{k: v for k, v in base.items() if k != "_lazy"})


def samples_frame(space: Space, draws: np.ndarray) -> pd.DataFrame:
    """Internal draws (S, P) as a DataFrame of natural values, one column per law parameter
    (fixed ones constant)."""
    law = space.law
    nat = space.to_natural(draws) if len(draws) else np.empty((0, len(space.free)))
    cols = {name: nat[:, i] for i, name in enumerate(space.free)}
    cols.update({name: np.full(len(nat), float(v)) for name, v in space.fixed.items()})
    return pd.DataFrame({name: cols[name] for name in law.param_names})


def _normal_samples(space: Space, u: np.ndarray, cov_u: np.ndarray, seed: int) -> pd.DataFrame:
    return samples_frame(space, unc.normal_draws(space, u, cov_u, n=N_NORMAL_DRAWS, seed=seed))
