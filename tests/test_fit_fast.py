"""The single-start fast path: used on clean curves, never worse than the multi-start, lazy draws."""

from __future__ import annotations

import pickle
import warnings

import lmfit
import numpy as np
import pytest

from rlscale.fit import core, fit
from rlscale.fit.laws import get_law
from tests.fitsim import TABLE1, ar1_noise, curve


@pytest.fixture
def spy(monkeypatch):
    used = []
    orig = core.fast_fit

    def wrapped(*args, **kwargs):
        out = orig(*args, **kwargs)
        used.append(out is not None)
        return out
    monkeypatch.setattr(core, "fast_fit", wrapped)
    return used


def _full_path(monkeypatch, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(core, "fast_fit", lambda *a, **k: None)
        return fit(*args, **kwargs)


def test_clean_curve_takes_the_fast_path_and_matches_lmfit(spy, monkeypatch):
    df = curve(*TABLE1[0], rng=np.random.default_rng(0), n=100)
    f = fit(df)
    assert spy == [True] and f.gof["nfev"] < 40
    full = _full_path(monkeypatch, df)
    law = get_law("sigmoid")
    x, y = df["gpu_hours"].to_numpy(), df["value"].to_numpy()
    model = lmfit.Model(lambda x, A, B, C_mid, R0: law.func(x, A=A, B=B, C_mid=C_mid, R0=R0))
    params = model.make_params(**law.guess(x, y))
    for k, (lo, hi) in law.bounds(x, y).items():
        params[k].set(min=lo, max=hi)
    ref = model.fit(y, params, x=x).best_values
    for name in law.param_names:
        assert f.params[name].value == pytest.approx(full.params[name].value, rel=1e-5)
        assert f.params[name].value == pytest.approx(ref[name], rel=1e-4)
        assert f.params[name].lower == pytest.approx(full.params[name].lower, rel=1e-4)


def _stream(seed: int, count: int):
    """Random curves: Table 1 truths, 8-150 points, noise sd 0.003-0.06 (iid or AR(1)), data
    ending anywhere from 0.3x to 20x C_mid."""
    rng = np.random.default_rng(seed)
    for trial in range(count):
        truth = TABLE1[trial % 3]
        n = int(rng.integers(8, 150))
        sd = float(10 ** rng.uniform(-2.5, -1.2))
        hi = float(10 ** rng.uniform(-0.5, 1.3))
        noise = ar1_noise(rng, n, float(rng.uniform(0, 0.8)), sd) if trial % 2 else None
        yield trial, curve(*truth, rng=rng, n=n, sd=sd, hi=hi, noise=noise)


# (stream seed, trial): curves where one start from the guess lands in a worse basin than the
# multi-start finds (all with R0 fixed and the asymptote not identified), plus a random sample
HARD = {(6, 235), (6, 470), (7, 25)}


@pytest.mark.parametrize("seed,count", [(6, 471), (7, 26), (21, 40)])
def test_fast_path_is_never_worse_than_the_multi_start(monkeypatch, seed, count):
    checked = 0
    for trial, df in _stream(seed, count):
        if seed != 21 and (seed, trial) not in HARD:
            continue
        kw = {"r0": "first" if (seed, trial) in HARD or trial % 4 == 0 else "fit",
              "law": "exp" if seed == 21 and trial % 5 == 0 else "sigmoid"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast, full = fit(df, **kw), _full_path(monkeypatch, df, **kw)
        if fast.ok and full.ok:
            checked += 1
            assert fast.gof["rmse"] ** 2 <= full.gof["rmse"] ** 2 * (1 + 1e-6), trial
    assert checked >= (30 if seed == 21 else 1)


def test_suspicious_first_answers_go_to_the_multi_start(spy):
    # data that stop before C_mid: the asymptote is not identified, so the fit is redone
    f = fit(curve(*TABLE1[1], rng=np.random.default_rng(3), hi=0.4))
    assert "asymptote_not_identified" in f.warning_codes
    assert f.gof["nfev"] > 0 and spy in ([False], [True])  # either way the full path ran
    groups = fit(__import__("pandas").concat(
        [curve(*TABLE1[i % 3], rng=np.random.default_rng(i), run_id=f"r{i}",
               hi=0.4 if i == 0 else 15.0) for i in range(5)]), by="run_id")
    assert [g.ok for g in groups] == [True] * 5


def test_normal_draws_are_made_on_first_use_and_survive_pickling():
    f = fit(curve(*TABLE1[0], rng=np.random.default_rng(4)))
    assert "samples" in f._lazy and "data" in f._lazy
    g = pickle.loads(pickle.dumps(f))
    assert not f._lazy and len(f.samples) == 1000 and len(f.data) == f.n_points
    assert g.samples.equals(f.samples) and g.data.equals(f.data)
    h = fit(curve(*TABLE1[0], rng=np.random.default_rng(4)))
    h.samples = h.samples.iloc[:10]  # assigning replaces the deferred draws
    assert len(h.samples) == 10 and "samples" not in h._lazy
