"""Sample held-out problems with a model and count verified-correct completions per problem.

The output is the table :mod:`rlscale.analysis.passk` works on (``problem_id, difficulty, n, c``).
Problems are the task's held-out evaluation problems (``split="eval"``, seeded by
``task.eval_seed`` and the difficulty), so base and RL models see exactly the same problems and
the comparison can be paired. Every completion is scored by the task's exact verifier
(:func:`rlscale.rl.tasks.score`, via :func:`rlscale.rl.rollout.rollout`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import pandas as pd


def count_correct(model: Any, config: Any, *, difficulties: Sequence[int], problems: int,
                  samples: int, seed: int = 0, temperature: float = 1.0,
                  max_new_tokens: int | None = None) -> pd.DataFrame:
    """Correct counts of ``samples`` completions on ``problems`` held-out problems per difficulty.

    ``model``: a :class:`rlscale.rl.model.Transformer` (on its device); ``config``: the
    JobConfig whose ``task`` defines the problems. ``max_new_tokens`` defaults to the config's
    ``rl.max_new_tokens``. Returns ``problem_id`` (the prompt text), ``difficulty`` (number of
    operations), ``n``, ``c``.
    """
    import torch

    from rlscale.rl.evaluate import eval_problems
    from rlscale.rl.rollout import rollout

    if samples < 1 or problems < 1:
        msg = f"samples and problems must be >= 1; got samples={samples}, problems={problems}"
        raise ValueError(msg)
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    rows = []
    for ops in difficulties:
        cfg = replace(config, eval=replace(config.eval, problems=problems, ops_min=ops, ops_max=ops))
        probs = eval_problems(cfg)[ops]
        ro = rollout(model, probs, group_size=samples,
                     max_new_tokens=max_new_tokens or config.rl.max_new_tokens, generator=gen,
                     temperature=temperature, precision=config.rl.precision)
        correct = ro.rewards.sum(1).round().long().tolist()
        rows += [{"problem_id": p.prompt(), "difficulty": int(ops), "n": samples, "c": c}
                 for p, c in zip(probs, correct)]
    return pd.DataFrame(rows)
