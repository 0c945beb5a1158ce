"""rl.max_flops: an RL budget in FLOPs; 0 (legacy) is off and leaves hashes unchanged."""

from rlscale.rl.config import JobConfig
from rlscale.rl.runner import budget_spent


def test_max_flops_zero_leaves_hash_unchanged():
    cfg = JobConfig()
    assert cfg.with_overrides(["rl.max_flops=0"]).hash() == cfg.hash()
    assert cfg.with_overrides(["rl.max_flops=1e12"]).hash() != cfg.hash()


def test_budget_spent():
    off = JobConfig().rl
    on = JobConfig().with_overrides(["rl.max_flops=100"]).rl
    assert not budget_spent(off, {"flops": 1e30})
    assert not budget_spent(on, {"flops": 99})
    assert budget_spent(on, {"flops": 100})
