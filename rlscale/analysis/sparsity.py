"""Which parameters did RL move, and how low-rank is the update?

Given two state dicts of the same architecture (base and RL, torch tensors or numpy arrays), this
reports, per matrix and per layer, the fraction of entries that changed beyond a tolerance, and
for every update matrix dW = W_rl - W_base its numerical rank, the rank that holds a fraction of
its energy ||dW||_F^2, and its stable rank ||dW||_F^2 / ||dW||_2^2.

"Changed" follows ``numpy.isclose``: an entry changed iff ``|w_rl - w_base| > atol + rtol*|w_base|``.
The default (``atol=0``, ``rtol`` = machine epsilon of the coarser stored dtype: fp32 1.19e-7,
bf16 7.8e-3, fp16 9.8e-4) counts an entry as changed when it moved by more than one unit in the
last place of the dtype it is stored in. Below that, a difference is indistinguishable from the
rounding of one re-cast or a different accumulation order, so it is noise, not an update. Pass
``rtol=0, atol=0`` for exact (bitwise-value) inequality, or ``rtol=2**-8`` on fp32 checkpoints to
ask "would this change survive storing the model in bf16?".

Rank: singular values of dW (float64 SVD; tensors with more than two dimensions are reshaped to
``(shape[0], -1)``) count when above ``max(rank_rtol * s_max, eps * ||W_base||_F)``; the second
term bounds the spectral norm of the storage rounding of both checkpoints, so pure rounding noise
never adds rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from rlscale.analysis.checkpoints import resolve
from rlscale.errors import input_error
from rlscale.store import Store

# machine epsilon per stored dtype name (numpy or torch spelling)
_EPS: dict[str, float] = {
    "float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps), "bfloat16": 2.0 ** -7,
}


@dataclass
class SparsityReport:
    """Result of :func:`update_sparsity`.

    ``matrices``: one row per tensor: ``name, layer, shape, dtype, numel, n_changed, frac_changed,
    base_fro, delta_fro, rel_delta_fro, max_rank, rank, rank_energy, stable_rank`` (Frobenius
    norms of W_base and dW; rank columns are null for tensors with fewer than two dimensions).
    ``layers``: ``layer, n_tensors, numel, n_changed, frac_changed, base_fro, delta_fro,
    rel_delta_fro``. ``total``: the same for the whole model.
    """

    matrices: pd.DataFrame
    layers: pd.DataFrame
    total: dict[str, Any]
    atol: float
    rtol: float
    rank_rtol: float
    energy: float

    def to_dict(self) -> dict[str, Any]:
        def rec(frame: pd.DataFrame) -> list[dict[str, Any]]:
            rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
            return [{k: _plain(v) for k, v in r.items()} for r in rows]

        return {"atol": self.atol, "rtol": self.rtol, "rank_rtol": self.rank_rtol,
                "energy": self.energy, "total": {k: _plain(v) for k, v in self.total.items()},
                "layers": rec(self.layers), "matrices": rec(self.matrices)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def layer_of(name: str) -> str:
    """The layer a parameter belongs to: up to its first numeric component, else its first.

    ``blocks.3.attn.qkv.weight`` -> ``blocks.3``; ``tok_emb.weight`` -> ``tok_emb``.
    """
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0] if len(parts) > 1 else name


def _as_numpy(value: Any) -> tuple[np.ndarray, str]:
    """float64 copy of a tensor/array and the name of the dtype it was stored in."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64), str(value.dtype)
    if hasattr(value, "detach"):  # a torch tensor; no torch import needed here
        dtype = str(value.dtype).removeprefix("torch.")
        return value.detach().cpu().double().numpy(), dtype
    arr = np.asarray(value)
    return arr.astype(np.float64), str(arr.dtype)


def default_rtol(*dtypes: str) -> float:
    """Machine epsilon of the coarsest of ``dtypes`` (the default relative tolerance)."""
    return max(_EPS.get(d, _EPS["float32"]) for d in dtypes)


def update_rank(delta: np.ndarray, *, base_fro: float, eps: float, rank_rtol: float = 1e-3,
                energy: float = 0.99) -> dict[str, Any]:
    """Rank statistics of one update matrix ``delta`` (2-D, or reshaped to ``(shape[0], -1)``).

    Returns ``max_rank`` (min of the dims), ``rank`` (singular values above
    ``max(rank_rtol * s_max, eps * base_fro)``), ``rank_energy`` (smallest r whose top-r singular
    values hold ``energy`` of ||delta||_F^2) and ``stable_rank`` (||delta||_F^2 / s_max^2).
    """
    mat = delta.reshape(delta.shape[0], -1)
    s = np.linalg.svd(mat, compute_uv=False)
    out: dict[str, Any] = {"max_rank": int(min(mat.shape)), "rank": 0, "rank_energy": 0,
                           "stable_rank": 0.0}
    if s.size == 0 or s[0] == 0.0:
        return out
    floor = max(rank_rtol * s[0], eps * base_fro)
    e = np.cumsum(s ** 2)
    out["rank"] = int(np.sum(s > floor))
    out["rank_energy"] = int(np.searchsorted(e, energy * e[-1] * (1 - 1e-12)) + 1)
    out["stable_rank"] = float(e[-1] / s[0] ** 2)
    return out


def update_sparsity(base: Mapping[str, Any], rl: Mapping[str, Any], *, atol: float | None = None,
                    rtol: float | None = None, rank_rtol: float = 1e-3, energy: float = 0.99,
                    ranks: bool = True, base_source: object = "base",
                    rl_source: object = "rl") -> SparsityReport:
    """Compare two state dicts (name -> tensor/array of the same shapes) entry by entry.

    ``atol``/``rtol``: see the module docstring; when neither is given, ``atol=0`` and ``rtol``
    is the machine epsilon of the coarser stored dtype; when one is given the other is 0.
    ``rank_rtol``: relative singular-value threshold for the numerical rank. ``energy``: the
    fraction of ||dW||_F^2 for ``rank_energy``. ``ranks=False`` skips the SVDs (large models).
    Raises :class:`~rlscale.errors.InputError` if the keys or shapes differ.
    """
    _check_args(atol=atol, rtol=rtol, rank_rtol=rank_rtol, energy=energy)
    missing, extra = sorted(set(base) - set(rl)), sorted(set(rl) - set(base))
    if missing or extra:
        raise input_error(f"parameters differ: only in base {missing[:5]}, only in RL {extra[:5]}",
                          path=rl_source, expected="two checkpoints of the same architecture")
    rows = []
    tol = _tolerances(base, rl, atol=atol, rtol=rtol)
    for name in base:
        wb, db = _as_numpy(base[name])
        wr, dr = _as_numpy(rl[name])
        if wb.shape != wr.shape:
            raise input_error(f"shape {wr.shape} != base shape {wb.shape}", path=rl_source,
                              field=name, expected="two checkpoints of the same architecture")
        delta = wr - wb
        n_changed = int(np.count_nonzero(np.abs(delta) > tol[0] + tol[1] * np.abs(wb)))
        base_fro, delta_fro = float(np.linalg.norm(wb)), float(np.linalg.norm(delta))
        row: dict[str, Any] = {
            "name": name, "layer": layer_of(name), "shape": tuple(int(d) for d in wb.shape),
            "dtype": dr if dr == db else f"{db}->{dr}", "numel": int(wb.size),
            "n_changed": n_changed, "frac_changed": n_changed / wb.size if wb.size else 0.0,
            "base_fro": base_fro, "delta_fro": delta_fro,
            "rel_delta_fro": delta_fro / base_fro if base_fro else np.nan,
            "max_rank": None, "rank": None, "rank_energy": None, "stable_rank": None,
        }
        if ranks and wb.ndim >= 2 and wb.size:
            row.update(update_rank(delta, base_fro=base_fro, eps=default_rtol(db, dr),
                                   rank_rtol=rank_rtol, energy=energy))
        rows.append(row)
    matrices = pd.DataFrame(rows)
    layers = _aggregate(matrices, by="layer")
    total = _aggregate(matrices.assign(all="model"), by="all").iloc[0].drop("all").to_dict()
    return SparsityReport(matrices=matrices, layers=layers, total=total, atol=tol[0], rtol=tol[1],
                          rank_rtol=rank_rtol, energy=energy)


def sparsity_between(base: str, rl: str, *, store: Store, atol: float | None = None,
                     rtol: float | None = None, rank_rtol: float = 1e-3, energy: float = 0.99,
                     ranks: bool = True) -> SparsityReport:
    """:func:`update_sparsity` of two references: run ids in ``store`` (``base``: the base that
    run started from; ``rl``: its latest checkpoint), base directories or checkpoint files (see
    :func:`rlscale.analysis.checkpoints.resolve`). Errors name the reference's file."""
    b, r = resolve(base, role="base", store=store), resolve(rl, role="rl", store=store)
    return update_sparsity(b.state, r.state, atol=atol, rtol=rtol, rank_rtol=rank_rtol,
                           energy=energy, ranks=ranks, base_source=b.source, rl_source=r.source)


def _check_args(*, atol: float | None, rtol: float | None, rank_rtol: float, energy: float) -> None:
    for name, value in (("atol", atol), ("rtol", rtol), ("rank_rtol", rank_rtol)):
        if value is not None and not (np.isfinite(value) and value >= 0):
            msg = f"{name} must be a finite number >= 0; got {value}"
            raise ValueError(msg)
    if not 0 < energy <= 1:
        msg = f"energy must be in (0, 1], e.g. 0.99; got {energy}"
        raise ValueError(msg)


def _tolerances(base: Mapping[str, Any], rl: Mapping[str, Any], *, atol: float | None,
                rtol: float | None) -> tuple[float, float]:
    if atol is None and rtol is None:
        dtypes = [_as_dtype(v) for v in (*base.values(), *rl.values())]
        return 0.0, default_rtol(*dtypes) if dtypes else _EPS["float32"]
    return float(atol or 0.0), float(rtol or 0.0)


def _as_dtype(value: Any) -> str:
    return str(getattr(value, "dtype", "float32")).removeprefix("torch.")


def _aggregate(matrices: pd.DataFrame, *, by: str) -> pd.DataFrame:
    g = matrices.assign(base_sq=matrices["base_fro"] ** 2,
                        delta_sq=matrices["delta_fro"] ** 2).groupby(by, sort=False)
    out = g.agg(n_tensors=("name", "size"), numel=("numel", "sum"), n_changed=("n_changed", "sum"),
                delta_sq=("delta_sq", "sum"), base_sq=("base_sq", "sum")).reset_index()
    out["frac_changed"] = out["n_changed"] / out["numel"].where(out["numel"] > 0)
    out["base_fro"] = np.sqrt(out["base_sq"])
    out["delta_fro"] = np.sqrt(out["delta_sq"])
    out["rel_delta_fro"] = out["delta_fro"] / out["base_fro"].where(out["base_sq"] > 0)
    return out.drop(columns=["delta_sq", "base_sq"])
