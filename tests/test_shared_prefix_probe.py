"""benchmarks/shared_prefix_probe.py computes what sequence_logprobs computes (else its timing
would compare different work)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_shared_prefix_logprobs_equal_the_per_sequence_ones(benchmark_script):
    probe = benchmark_script("shared_prefix_probe")
    from rlscale.rl.config import ModelConfig
    from rlscale.rl.model import Transformer
    from rlscale.rl.rollout import rollout, sequence_logprobs
    from rlscale.rl.tasks import sample_problems

    torch.manual_seed(0)
    model = Transformer(ModelConfig(d_model=32, n_layers=2, n_heads=2))
    problems = sample_problems(0, 4, ops_min=1, ops_max=3, split="train", eval_fraction=0.05)
    ro = rollout(model, problems, group_size=4, max_new_tokens=24,
                 generator=torch.Generator().manual_seed(0), precision="fp32")
    assert len(set(ro.response_lens)) > 1  # buckets of different widths are exercised
    with torch.no_grad():
        full = sequence_logprobs(model, ro, precision="fp32", bucket_rows=5)[0]
        shared = probe.shared_logprobs(model, ro, "fp32", bucket=5)
    mask = ro.response_mask.bool()
    torch.testing.assert_close(shared[mask], full[mask], atol=1e-5, rtol=1e-5)
