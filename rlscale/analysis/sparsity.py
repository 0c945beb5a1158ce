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

The papers' protocol (Mukherjee et al. 2025, "RL finetunes small subnetworks"): ``cast="bf16"``
rounds both checkpoints to bfloat16 (round to nearest even) before comparing, and ``atol=1e-5,
rtol=0`` counts an entry as changed iff its bf16 values differ by more than 1e-5. Near typical
weights (|w| ~ 1e-3 to 1e-1) bf16's spacing (2^-8 |w|) is far above 1e-5, so a cast entry
changes only if the update carried it across a bf16 rounding boundary; small fp32 moves vanish.

Overlap (:func:`update_overlap`): the changed sets of two or more updates of the same base,
pairwise: the intersection, Jaccard, and the intersection expected by chance for independent
random sets of the same sizes, both over the whole model (``|A||B|/N``) and within each tensor
(``sum_t |A_t||B_t|/N_t``, the stricter null: it keeps where each set's changes sit).

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
CASTS = ("none", "bf16")


def to_bf16(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to bfloat16 (round to nearest, ties to even; as torch's ``.bfloat16()``),
    returned as float64. Goes through float32 first, as a cast of an fp32 checkpoint does."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32).astype(np.float64)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, np.nan, out).reshape(np.shape(x))


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
    cast: str = "none"

    @property
    def rule(self) -> str:
        """The changed-entry rule in words, e.g. ``bf16(w_rl) vs bf16(w_base): |dw| > 1e-05``."""
        cmp = "bf16(w_rl) - bf16(w_base)" if self.cast == "bf16" else "w_rl - w_base"
        return f"|{cmp}| > {self.atol:g} + {self.rtol:.3g} * |w_base|"

    def to_dict(self) -> dict[str, Any]:
        def rec(frame: pd.DataFrame) -> list[dict[str, Any]]:
            rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
            return [{k: _plain(v) for k, v in r.items()} for r in rows]

        return {"cast": self.cast, "rule": self.rule, "atol": self.atol, "rtol": self.rtol,
                "rank_rtol": self.rank_rtol,
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
                    rl_source: object = "rl", cast: str = "none") -> SparsityReport:
    """Compare two state dicts (name -> tensor/array of the same shapes) entry by entry.

    ``atol``/``rtol``: see the module docstring; when neither is given, ``atol=0`` and ``rtol``
    is the machine epsilon of the coarser stored dtype; when one is given the other is 0.
    ``rank_rtol``: relative singular-value threshold for the numerical rank. ``energy``: the
    fraction of ||dW||_F^2 for ``rank_energy``. ``ranks=False`` skips the SVDs (large models).
    ``cast="bf16"``: round both to bfloat16 first (the papers' protocol with ``atol=1e-5``); the
    tolerances, norms and ranks are then those of the cast weights.
    Raises :class:`~rlscale.errors.InputError` if the keys or shapes differ.
    """
    _check_args(atol=atol, rtol=rtol, rank_rtol=rank_rtol, energy=energy, cast=cast)
    missing, extra = sorted(set(base) - set(rl)), sorted(set(rl) - set(base))
    if missing or extra:
        raise input_error(f"parameters differ: only in base {missing[:5]}, only in RL {extra[:5]}",
                          path=rl_source, expected="two checkpoints of the same architecture")
    rows = []
    tol = _tolerances(base, rl, atol=atol, rtol=rtol, cast=cast)
    for name in base:
        wb, db, wr, dr = _pair(base, rl, name, cast=cast, rl_source=rl_source)
        delta = wr - wb
        n_changed = int(np.count_nonzero(_changed(wb, wr, tol)))
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
                          rank_rtol=rank_rtol, energy=energy, cast=cast)


def _pair(base: Mapping[str, Any], rl: Mapping[str, Any], name: str, *, cast: str,
          rl_source: object) -> tuple[np.ndarray, str, np.ndarray, str]:
    wb, db = _as_numpy(base[name])
    wr, dr = _as_numpy(rl[name])
    if wb.shape != wr.shape:
        raise input_error(f"shape {wr.shape} != base shape {wb.shape}", path=rl_source,
                          field=name, expected="two checkpoints of the same architecture")
    if cast == "bf16":
        wb, wr, db, dr = to_bf16(wb), to_bf16(wr), "bfloat16", "bfloat16"
    return wb, db, wr, dr


def changed_masks(base: Mapping[str, Any], rl: Mapping[str, Any], *, atol: float | None = None,
                  rtol: float | None = None, cast: str = "none",
                  rl_source: object = "rl") -> dict[str, np.ndarray]:
    """name -> boolean array: which entries of each tensor changed (the rule of
    :func:`update_sparsity` with the same arguments)."""
    _check_args(atol=atol, rtol=rtol, rank_rtol=0.0, energy=1.0, cast=cast)
    if set(base) != set(rl):
        raise input_error("parameters differ from the base's", path=rl_source,
                          expected="two checkpoints of the same architecture")
    tol = _tolerances(base, rl, atol=atol, rtol=rtol, cast=cast)
    out = {}
    for name in base:
        wb, _, wr, _ = _pair(base, rl, name, cast=cast, rl_source=rl_source)
        out[name] = _changed(wb, wr, tol)
    return out


def _changed(wb: np.ndarray, wr: np.ndarray, tol: tuple[float, float]) -> np.ndarray:
    """The module's rule, entry by entry: ``|w_rl - w_base| > atol + rtol * |w_base|``."""
    return np.abs(wr - wb) > tol[0] + tol[1] * np.abs(wb)


def overlap_of(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Overlap of two changed sets (name -> boolean mask, the same names and shapes).

    ``n_a, n_b, n_both, numel``; ``jaccard`` = |A&B| / |A|B|; ``overlap`` = |A&B| / min(|A|,|B|);
    ``chance_both`` = |A||B|/N (independent uniform random sets of the same sizes) and
    ``chance_both_tensor`` = sum_t |A_t||B_t|/N_t (random within each tensor), the matching
    ``chance_jaccard`` values (E|A&B| / (|A|+|B|-E|A&B|)) and ``ratio`` / ``ratio_tensor``
    = |A&B| / its chance value (1 = no more overlap than chance).
    """
    n_a = n_b = both = numel = 0
    chance_t = 0.0
    for name, ma in a.items():
        mb = b[name]
        ka, kb, size = int(ma.sum()), int(mb.sum()), int(ma.size)
        n_a, n_b, numel = n_a + ka, n_b + kb, numel + size
        both += int(np.count_nonzero(ma & mb))
        chance_t += ka * kb / size if size else 0.0
    chance = n_a * n_b / numel if numel else 0.0

    def jac(inter: float) -> float:
        union = n_a + n_b - inter
        return inter / union if union else float("nan")

    def ratio(inter: float) -> float:
        return both / inter if inter else float("nan")

    return {"n_a": n_a, "n_b": n_b, "n_both": both, "numel": numel,
            "frac_a": n_a / numel if numel else float("nan"),
            "frac_b": n_b / numel if numel else float("nan"),
            "jaccard": jac(both), "overlap": both / min(n_a, n_b) if min(n_a, n_b) else float("nan"),
            "chance_both": chance, "chance_jaccard": jac(chance), "ratio": ratio(chance),
            "chance_both_tensor": chance_t, "chance_jaccard_tensor": jac(chance_t),
            "ratio_tensor": ratio(chance_t)}


def update_overlap(base: Mapping[str, Any], updated: Mapping[str, Mapping[str, Any]], *,
                   atol: float | None = None, rtol: float | None = None,
                   cast: str = "none") -> pd.DataFrame:
    """Pairwise overlap of the changed sets of two or more updates of the same ``base``.

    ``updated``: label -> state dict. One row per pair (``a``, ``b`` and :func:`overlap_of`'s
    columns). Raises ValueError with fewer than two updates."""
    if len(updated) < 2:
        msg = f"overlap needs two or more updated checkpoints; got {len(updated)}"
        raise ValueError(msg)
    masks = {k: changed_masks(base, v, atol=atol, rtol=rtol, cast=cast, rl_source=k)
             for k, v in updated.items()}
    labels = list(masks)
    rows = [{"a": x, "b": y, **overlap_of(masks[x], masks[y])}
            for i, x in enumerate(labels) for y in labels[i + 1:]]
    return pd.DataFrame(rows)


def sparsity_between(base: str, rl: str, *, store: Store, atol: float | None = None,
                     rtol: float | None = None, rank_rtol: float = 1e-3, energy: float = 0.99,
                     ranks: bool = True, cast: str = "none") -> SparsityReport:
    """:func:`update_sparsity` of two references: run ids in ``store`` (``base``: the base that
    run started from; ``rl``: its latest checkpoint), base directories or checkpoint files (see
    :func:`rlscale.analysis.checkpoints.resolve`). Errors name the reference's file."""
    b, r = resolve(base, role="base", store=store), resolve(rl, role="rl", store=store)
    return update_sparsity(b.state, r.state, atol=atol, rtol=rtol, rank_rtol=rank_rtol,
                           energy=energy, ranks=ranks, base_source=b.source, rl_source=r.source,
                           cast=cast)


def overlap_between(base: str, rls: list[str], *, store: Store, atol: float | None = None,
                    rtol: float | None = None, cast: str = "none") -> pd.DataFrame:
    """:func:`update_overlap` of references (see :func:`sparsity_between`): ``base`` and two
    or more updates of it (``rls``)."""
    b = resolve(base, role="base", store=store)
    states = {ref: resolve(ref, role="rl", store=store).state for ref in rls}
    return update_overlap(b.state, states, atol=atol, rtol=rtol, cast=cast)


def _check_args(*, atol: float | None, rtol: float | None, rank_rtol: float, energy: float,
                cast: str = "none") -> None:
    if cast not in CASTS:
        msg = f"cast must be one of {list(CASTS)}; got {cast!r}"
        raise ValueError(msg)
    for name, value in (("atol", atol), ("rtol", rtol), ("rank_rtol", rank_rtol)):
        if value is not None and not (np.isfinite(value) and value >= 0):
            msg = f"{name} must be a finite number >= 0; got {value}"
            raise ValueError(msg)
    if not 0 < energy <= 1:
        msg = f"energy must be in (0, 1], e.g. 0.99; got {energy}"
        raise ValueError(msg)


def _tolerances(base: Mapping[str, Any], rl: Mapping[str, Any], *, atol: float | None,
                rtol: float | None, cast: str = "none") -> tuple[float, float]:
    if atol is None and rtol is None:
        dtypes = (["bfloat16"] if cast == "bf16" else
                  [_as_dtype(v) for v in (*base.values(), *rl.values())])
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
