"""Sample held-out problems with a model and count verified-correct completions per problem.

The output is the table :mod:`rlscale.analysis.passk` works on (``problem_id, difficulty, n, c``).
Problems are the task's held-out evaluation problems (``split="eval"``, seeded by
``task.eval_seed`` and the difficulty), so base and RL models see exactly the same problems and
the comparison can be paired. Every completion is scored by the task's exact verifier
(:func:`rlscale.rl.tasks.verified`, via :func:`rlscale.rl.rollout.rollout`): a completion counts
only if it shows its work and every step checks, so a bare answer guessed right never does,
whatever the task rewards (mod 10 a guess is right 10-22% of the time, and pass@k at large k
would count luck).

:func:`plan_sampling` resolves the models to compare (run ids, base directories or checkpoint
files, see :mod:`rlscale.analysis.checkpoints`) and the settings; :func:`sample_counts` samples
each model once. torch is imported only by the functions that use it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import pandas as pd

from rlscale.analysis.checkpoints import NoConfigError, Resolved, build_model, resolve
from rlscale.analysis.passk_counts import PasskCounts
from rlscale.store import Store


@dataclass
class SamplingPlan:
    """What :func:`sample_counts` samples: ``models`` (base first, each a resolved reference),
    on the task of ``config`` (a JobConfig), on ``device``."""

    models: list[Resolved]
    config: Any
    difficulties: list[int]
    problems: int
    samples: int
    temperature: float
    seed: int
    device: str

    def options(self) -> dict[str, Any]:
        """The settings that make the counts: difficulties, problems, samples, seed, temperature."""
        return {"difficulties": self.difficulties, "problems": self.problems,
                "samples": self.samples, "seed": self.seed, "temperature": self.temperature}


def plan_sampling(base: str, rl: Sequence[str], *, store: Store,
                  difficulties: Sequence[int] | None = None, problems: int | None = None,
                  samples: int = 32, temperature: float = 1.0, device: str = "auto",
                  seed: int = 0) -> SamplingPlan:
    """Resolve ``base`` (role base) and every ``rl`` (role rl) in ``store``, and fill in the
    defaults from their job config: ``difficulties`` the config's ``eval.ops_min..ops_max``,
    ``problems`` its ``eval.problems``; ``device`` ``"auto"`` picks CUDA when there is one.

    The config comes from the first RL reference that has one, else from the base; a reference
    without one borrows it. Raises :class:`~rlscale.analysis.checkpoints.NoConfigError` when
    none has one, :class:`~rlscale.errors.InputError` for a reference that is none of the above.
    """
    from rlscale.rl.runner import pick_device

    rl_res = [resolve(r, role="rl", store=store) for r in rl]
    known = next((r.config for r in rl_res if r.config is not None), None)
    base_res = resolve(base, role="base", store=store, config=known)
    for r in rl_res:
        r.config = r.config or base_res.config
    cfg = known or base_res.config
    if cfg is None:
        msg = ("none of BASE/RL says which task and model it is; pass a run id or a base "
               "directory for at least one of them")
        raise NoConfigError(msg)
    diffs = list(difficulties or range(cfg.eval.ops_min, cfg.eval.ops_max + 1))
    return SamplingPlan(models=[base_res, *rl_res], config=cfg, difficulties=diffs,
                        problems=problems or cfg.eval.problems, samples=samples,
                        temperature=temperature, seed=seed, device=pick_device(device))


def sample_counts(plan: SamplingPlan) -> PasskCounts:
    """Sample and verify every model of ``plan`` (a label that repeats is sampled once)."""
    tables, sources = {}, {}
    for res in plan.models:
        if res.label not in tables:
            model = build_model(res, device=plan.device)
            tables[res.label] = count_correct(model, plan.config, **plan.options())
            sources[res.label] = res.source
    return PasskCounts(tables=tables, sources=sources, info=plan.options())


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
        # a response cannot run past the model's context: a config that asks for more (a base
        # directory's, whose rl section is the default) samples as long as the context allows
        room = config.model.max_len - 1 - max(len(p.prompt()) for p in probs)
        ro = rollout(model, probs, group_size=samples,
                     max_new_tokens=min(max_new_tokens or config.rl.max_new_tokens, room),
                     generator=gen,
                     temperature=temperature, precision=config.rl.precision,
                     verified_only=True)
        correct = ro.rewards.sum(1).round().long().tolist()
        rows += [{"problem_id": p.prompt(), "difficulty": int(ops), "n": samples, "c": c}
                 for p, c in zip(probs, correct)]
    return pd.DataFrame(rows)
