"""Held-out scores: refit on the first 80% of a fit's window (by x) and score the last 20%.

The score (gof ``heldout_rmse``) ranks laws in ``--law all`` and tells a fit that only
interpolates from one that extrapolates. :func:`heldout` scores one fit, :func:`heldout_many`
many fits of one law in one batched solve.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlscale.fit.batch import space_for
from rlscale.fit.fast import inside, minpack
from rlscale.fit.laws import Law
from rlscale.fit.solver import Space, solve

HELDOUT_FRAC = 0.2


def heldout_split(x: np.ndarray, n_free: int, frac: float = HELDOUT_FRAC
                  ) -> tuple[np.ndarray, float] | None:
    """Train mask (x below the cut) and the cut that leaves the last ``frac`` of points out;
    None when either side would be too small to fit or score."""
    n_hold = max(2, int(round(frac * x.size)))
    if x.size - n_hold < n_free + 2:
        return None
    cut = float(np.sort(x, kind="stable")[x.size - n_hold])
    train = x < cut
    if train.sum() < n_free + 2 or (~train).sum() < 1:
        return None
    return train, cut


def heldout_gof(space: Space, x, y, u_train, train, cut) -> dict[str, Any]:
    r = space.predict(x[~train], u_train[None, :])[0] - y[~train]
    rmse = float(np.sqrt(np.mean(r**2)))
    return {"heldout_rmse": rmse if math.isfinite(rmse) else None,
            "heldout_n": int((~train).sum()), "heldout_from": cut}


def heldout(space: Space, x, y, u, *, huber) -> dict[str, Any]:
    """Refit on the first 80% of the window (by x) and score the last 20%.

    Warm-started at the full-window fit: the same basin, far fewer iterations than a fresh
    multi-start; a law that cannot extrapolate from the shorter window still shows it."""
    split = heldout_split(x, len(space.free))
    if split is None:
        return {"heldout_rmse": None, "heldout_n": 0}
    train, cut = split
    if huber is None and space.law.grad is not None and inside(space, u):  # MINPACK, warm
        u_tr, _, ok, _ = minpack(space, x[train], y[train], u)
        if ok and inside(space, u_tr):
            return heldout_gof(space, x, y, u_tr, train, cut)
    uu, cost, _ = solve(space, x, y, train.astype(float), u[None, :], huber=huber)
    return heldout_gof(space, x, y, uu[0], train, cut)


def heldout_many(law: Law, fits: list) -> None:
    """Held-out scores (gof ``heldout_*``) of many linear-loss fits of one law, refitted on
    their first 80% in one batched solve, each warm-started at its full-window fit."""
    jobs = []
    for f in fits:
        if not f.ok:
            continue
        x, y = f.data["x"].to_numpy(), f.data["y"].to_numpy()
        fixed = dict(f.options.get("fixed", {}))
        space = space_for(law, x, y, fixed, f.metric)
        split = heldout_split(x, len(space.free))
        if split is None:
            f.gof.update(heldout_rmse=None, heldout_n=0)
            continue
        jobs.append((f, x, y, fixed, space, *split))
    buckets: dict[tuple[str, ...], list] = {}
    for job in jobs:
        buckets.setdefault(job[4].free, []).append(job)
    for free, members in buckets.items():
        n_rows, n_max = len(members), max(j[1].size for j in members)
        xs, ys, ws = np.empty((n_rows, n_max)), np.zeros((n_rows, n_max)), np.zeros((n_rows, n_max))
        lower, upper = np.empty((n_rows, len(free))), np.empty((n_rows, len(free)))
        fixed_names = sorted(members[0][3])
        held = {k: np.array([j[3][k] for j in members]) for k in fixed_names}
        u0 = np.empty((n_rows, len(free)))
        for r, (f, x, y, fixed, space, train, cut) in enumerate(members):
            xs[r] = x[0]
            xs[r, :x.size], ys[r, :x.size], ws[r, :x.size] = x, y, train
            lower[r], upper[r] = space.lower, space.upper
            u0[r] = space.vector(f.values)
        u, _, _ = solve(Space(law, free, {}, lower, upper), xs, ys, ws, u0, row_fixed=held)
        for r, (f, x, y, fixed, space, train, cut) in enumerate(members):
            f.gof.update(heldout_gof(space, x, y, u[r], train, cut))
