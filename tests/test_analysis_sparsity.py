from __future__ import annotations

import numpy as np
import pytest

from rlscale.analysis.checkpoints import load_state_dict
from rlscale.analysis.sparsity import layer_of, update_rank, update_sparsity
from rlscale.errors import InputError


def _base(rng):
    return {
        "emb.weight": rng.normal(0, 0.02, (50, 16)).astype(np.float32),
        "blocks.0.attn.weight": rng.normal(0, 0.02, (64, 48)).astype(np.float32),
        "blocks.0.ln.bias": np.zeros(16, np.float32),
        "blocks.1.mlp.weight": rng.normal(0, 0.02, (48, 64)).astype(np.float32),
    }


def test_known_sparse_mask_is_counted_exactly():
    rng = np.random.default_rng(0)
    base = _base(rng)
    rl = {k: v.copy() for k, v in base.items()}
    w = rl["blocks.0.attn.weight"]
    mask = rng.random(w.shape) < 0.1
    w[mask] += np.float32(0.01)
    rep = update_sparsity(base, rl)
    m = rep.matrices.set_index("name")
    assert m.loc["blocks.0.attn.weight", "n_changed"] == mask.sum()
    assert m.loc["emb.weight", "n_changed"] == 0 and m.loc["emb.weight", "rank"] == 0
    lay = rep.layers.set_index("layer")
    assert list(lay.index) == ["emb", "blocks.0", "blocks.1"]
    assert lay.loc["blocks.0", "n_changed"] == mask.sum()
    assert lay.loc["blocks.0", "numel"] == 64 * 48 + 16
    total = 50 * 16 + 64 * 48 + 16 + 48 * 64
    assert rep.total["frac_changed"] == pytest.approx(mask.sum() / total)
    assert rep.atol == 0 and rep.rtol == pytest.approx(np.finfo(np.float32).eps)
    # norms aggregate over every tensor, unchanged ones included
    w0 = np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in base.values()))
    dw = np.linalg.norm(mask * np.float64(0.01))
    assert rep.total["rel_delta_fro"] == pytest.approx(dw / w0, rel=1e-4)
    assert lay.loc["emb", "rel_delta_fro"] == 0 and lay.loc["emb", "base_fro"] > 0


def test_one_ulp_noise_is_not_a_change_by_default_but_is_bitwise():
    rng = np.random.default_rng(1)
    base = _base(rng)
    # one ulp up on every entry; exact zeros (the bias) stay: at 0 an ulp is a denormal and any
    # move away from zero is a real change at every rtol
    noisy = {k: np.where(v != 0, np.nextafter(v, np.float32(np.inf)), v) for k, v in base.items()}
    assert update_sparsity(base, noisy).total["n_changed"] == 0
    exact = update_sparsity(base, noisy, atol=0, rtol=0)
    assert exact.total["n_changed"] == exact.total["numel"] - 16
    # an absolute tolerance alone leaves rtol at 0
    loose = update_sparsity(base, noisy, atol=1e-3)
    assert loose.rtol == 0 and loose.total["n_changed"] == 0


def test_low_rank_update_has_its_rank_despite_fp32_storage():
    rng = np.random.default_rng(2)
    base = _base(rng)
    u, v = rng.normal(size=(64, 3)), rng.normal(size=(3, 48))
    rl = dict(base)
    rl["blocks.0.attn.weight"] = (base["blocks.0.attn.weight"].astype(np.float64)
                                  + 1e-3 * u @ v).astype(np.float32)
    row = update_sparsity(base, rl).matrices.set_index("name").loc["blocks.0.attn.weight"]
    assert row["rank"] == 3 and row["max_rank"] == 48
    assert row["rank_energy"] <= 3 and 1 <= row["stable_rank"] <= 3
    assert row["frac_changed"] > 0.99  # dense in entries, low in rank


def test_energy_rank_and_stable_rank_on_known_spectrum():
    q1, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(20, 20)))
    q2, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(10, 10)))
    s = np.array([10.0, 1.0, 0.1] + [0.0] * 7)
    delta = q1[:, :10] @ np.diag(s) @ q2.T
    out = update_rank(delta, base_fro=1.0, eps=1e-16, rank_rtol=1e-3, energy=0.995)
    assert out["rank"] == 3 and out["max_rank"] == 10
    assert out["rank_energy"] == 2  # 100/101.01 < 0.995 <= 101/101.01
    assert out["stable_rank"] == pytest.approx(101.01 / 100)
    assert update_rank(delta, base_fro=1.0, eps=1e-16, energy=0.99)["rank_energy"] == 1
    assert update_rank(delta, base_fro=1.0, eps=1e-16, energy=1.0)["rank_energy"] == 3
    assert update_rank(delta, base_fro=1.0, eps=1e-16, rank_rtol=0.05)["rank"] == 2


def test_torch_bf16_default_tolerance_and_checkpoint_file(tmp_path):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    base = {"blocks.0.w": torch.randn(8, 8, generator=g).to(torch.bfloat16)}
    rl = {"blocks.0.w": base["blocks.0.w"].clone()}
    rl["blocks.0.w"][0, :4] += 1.0
    torch.save({"model": base, "step": 0}, tmp_path / "base.pt")
    torch.save(rl, tmp_path / "rl.pt")
    rep = update_sparsity(load_state_dict(tmp_path / "base.pt"), load_state_dict(tmp_path / "rl.pt"))
    assert rep.rtol == 2.0 ** -7
    assert rep.total["n_changed"] == 4 and rep.matrices.loc[0, "rank"] == 1
    assert rep.to_dict()["matrices"][0]["shape"] == [8, 8]


def test_mismatched_checkpoints_and_unreadable_files(tmp_path):
    rng = np.random.default_rng(5)
    base = _base(rng)
    with pytest.raises(InputError, match=r"only in base \['emb.weight'\]"):
        update_sparsity(base, {k: v for k, v in base.items() if k != "emb.weight"})
    bad = dict(base, **{"emb.weight": np.zeros((50, 17), np.float32)})
    with pytest.raises(InputError, match="column 'emb.weight'"):
        update_sparsity(base, bad, rl_source="rl.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    pytest.importorskip("torch")
    with pytest.raises(InputError, match="junk.pt: cannot read"):
        load_state_dict(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="no such checkpoint"):
        load_state_dict(tmp_path / "missing.pt")


def test_layer_of():
    assert layer_of("blocks.3.attn.qkv.weight") == "blocks.3"
    assert layer_of("tok_emb.weight") == "tok_emb"
    assert layer_of("scale") == "scale"


# -- the papers' protocol (bf16 cast, atol 1e-5) and the overlap between updates ----------------
def test_to_bf16_matches_torch_rounding():
    import torch

    from rlscale.analysis.sparsity import to_bf16

    x = np.random.default_rng(0).normal(0, 0.05, size=4096).astype(np.float32)
    want = torch.from_numpy(x).bfloat16().double().numpy()
    assert np.array_equal(to_bf16(x), want)


def test_bf16_cast_hides_moves_that_cross_no_rounding_boundary():
    from rlscale.analysis.sparsity import update_sparsity

    w = np.full(1000, 0.01, dtype=np.float32)  # bf16 spacing near 0.01 is 2^-14 ~ 6.1e-5
    moved = w.copy()
    moved[:100] += 2e-5  # > 1e-5 in fp32, but stays within the same bf16 value
    moved[100:150] += 2e-4  # crosses bf16 boundaries
    fp32 = update_sparsity({"w": w}, {"w": moved}, atol=1e-5, rtol=0, ranks=False)
    bf16 = update_sparsity({"w": w}, {"w": moved}, atol=1e-5, rtol=0, ranks=False, cast="bf16")
    assert fp32.total["n_changed"] == 150
    assert bf16.total["n_changed"] == 50
    assert bf16.rule.startswith("|bf16(w_rl) - bf16(w_base)| > 1e-05")
    assert bf16.to_dict()["cast"] == "bf16"


def test_overlap_against_chance():
    from rlscale.analysis.sparsity import overlap_of, update_overlap

    rng = np.random.default_rng(1)
    base = {"a": np.zeros((50, 40), np.float32), "b": np.zeros(1000, np.float32)}
    # two independent random updates of 20% of "a" only: over the model they overlap more than
    # chance (both sit in "a"), within each tensor they do not
    ups = {}
    for k in ("x", "y"):
        a = np.zeros((50, 40), np.float32)
        a.flat[rng.choice(2000, 400, replace=False)] = 1.0
        ups[k] = {"a": a, "b": np.zeros(1000, np.float32)}
    ups["z"] = {k: v.copy() for k, v in ups["x"].items()}  # identical to x
    ov = update_overlap(base, ups, atol=0, rtol=0).set_index(["a", "b"])
    xy, xz = ov.loc[("x", "y")], ov.loc[("x", "z")]
    assert xy["n_a"] == xy["n_b"] == 400 and xy["numel"] == 3000
    assert xy["chance_both"] == pytest.approx(400 * 400 / 3000)
    assert xy["chance_both_tensor"] == pytest.approx(400 * 400 / 2000)
    assert xy["ratio"] > 1.3  # the model-wide null is fooled by where the changes sit
    assert 0.8 < xy["ratio_tensor"] < 1.2
    assert xz["jaccard"] == 1.0 and xz["overlap"] == 1.0
    assert xz["ratio_tensor"] == pytest.approx(2000 / 400)
    m = {"a": np.array([True, False]), "b": np.array([False])}
    assert overlap_of(m, {"a": np.array([False, False]), "b": np.array([False])})["jaccard"] == 0
    with pytest.raises(ValueError, match="two or more"):
        update_overlap(base, {"x": ups["x"]})
