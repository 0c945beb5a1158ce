"""The chance level of a task: how often a rule that does no arithmetic is right.

A reward that a model can earn without doing the task is a floor under every curve: RL can
climb from it by learning to guess, and pass@k at large k saturates on luck alone. This module
measures that floor for any task config, per difficulty, without a model.

A *rule that does no arithmetic* reads the prompt but never combines two values: it may answer
a constant, copy a number it sees (the last literal, a given constant), or answer what is most
often right given the last operation's operator and literal (a table over what it *reads*, not
over values it would have to compute). Each rule's table is learned on one half of the sampled
problems and scored on the other half, so a rule is not credited for memorising its sample.
The chance level of the **answer** is the best rule's held-out accuracy. The chance level of the
**reward** is the same where a bare answer earns reward (``task.reward = "answer"``); where only
checked work does (``"verified"``), it is the held-out rate at which every step's result,
guessed by the best per-step rule, is right (the substituted values of a worked step are copies
of earlier results, so guessing the results is all a solution needs).

With one digit and ``+-*`` a product by an even literal is even, by 5 is 0 or 5, by 0 is 0:
the best rule is right about 20% of the time. With two digits and ``+-`` every step is a bijection of the
unknown value in each digit, so no rule beats 1%.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rlscale.rl.tasks import Problem, Step, sample_problems

# name -> what the rule reads from a problem (its table's key), or how it copies a value
_KEYS: dict[str, Callable[[Problem], Any]] = {
    "constant": lambda p: None,
    "last operator": lambda p: p.steps[-1].op,
    "last literal": lambda p: _literal(p.steps[-1]),
    "last operator and literal": lambda p: (p.steps[-1].op, _literal(p.steps[-1])),
    "first constant": lambda p: p.base[0][1],
}
_COPIES: dict[str, Callable[[Problem], int | None]] = {
    "copy the last literal": lambda p: _as_int(_literal(p.steps[-1])),
    "copy the first constant": lambda p: p.base[0][1],
}


@dataclass(frozen=True)
class Chance:
    """The chance level at one difficulty: the best no-arithmetic rule for the answer (its name
    and held-out accuracy), and the chance that such guessing earns the task's reward."""

    difficulty: int
    answer: float
    rule: str
    reward: float
    problems: int  # problems scored (held out from those the rules' tables were learned on)


def chance_levels(task: Any, difficulties: Sequence[int], *, problems: int = 4000,
                  seed: int = 0, verified: bool | None = None) -> list[Chance]:
    """:class:`Chance` per difficulty for ``task`` (a :class:`~rlscale.rl.config.TaskConfig`),
    from ``problems`` sampled problems each (half to learn the rules, half to score them).
    ``verified``: score ``reward`` as verified work (what pass@k counts) whatever the task
    rewards (None: as the task rewards)."""
    verified = task.verified_only if verified is None else verified
    out = []
    for ops in difficulties:
        sample = sample_problems(f"chance/{seed}/ops={ops}", problems, ops_min=ops, ops_max=ops,
                                 split="train", **task.problem_kwargs())
        learn, test = sample[: problems // 2], sample[problems // 2:]
        rules = {name: _accuracy(learn, test, key) for name, key in _KEYS.items()}
        rules.update({name: _copy_accuracy(test, copy) for name, copy in _COPIES.items()})
        rule = max(rules, key=lambda r: (rules[r], r == "constant"))
        reward = _work_chance(learn, test) if verified else rules[rule]
        out.append(Chance(ops, rules[rule], rule, reward, len(test)))
    return out


def _majority(pairs: Any) -> tuple[dict[Any, Any], Any]:
    """From (what a rule reads, the right value) pairs: the most frequent value per key, and the
    most frequent value overall (the guess for a key never seen)."""
    table: dict[Any, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for key, value in pairs:
        table[key][value] += 1
        overall[value] += 1
    return {k: c.most_common(1)[0][0] for k, c in table.items()}, overall.most_common(1)[0][0]


def _accuracy(learn: list[Problem], test: list[Problem], key: Callable[[Problem], Any]) -> float:
    """Held-out accuracy of 'answer the most frequent answer among learned problems that read
    the same' (the overall most frequent answer where the key was never seen)."""
    guess, fallback = _majority((key(p), p.answer) for p in learn)
    return sum(guess.get(key(p), fallback) == p.answer for p in test) / len(test)


def _copy_accuracy(test: list[Problem], copy: Callable[[Problem], int | None]) -> float:
    return sum(copy(p) == p.answer for p in test) / len(test)


def _work_chance(learn: list[Problem], test: list[Problem]) -> float:
    """Held-out rate at which every step's result, guessed from the step's operator and literal
    (the most frequent result among learned steps that read the same), is right."""
    guess, fallback = _majority(((s.op, _literal(s)), p.values()[s.out])
                                for p in learn for s in p.steps)
    right = 0
    for p in test:
        vals = p.values()
        right += all(guess.get((s.op, _literal(s)), fallback) == vals[s.out] for s in p.steps)
    return right / len(test)


def _literal(step: Step) -> str | None:
    """The step's literal operand as written, or None when both operands are variables."""
    for operand in (step.right, step.left):
        if operand.isdigit():
            return operand
    return None


def _as_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def chance_table(levels: list[Chance]) -> str:
    """The chance levels as printed by ``rlscale chance``."""
    lines = [f"{'ops':>3}  {'answer':>7}  {'reward':>7}  best rule (no arithmetic)"]
    for c in levels:
        lines.append(f"{c.difficulty:>3}  {c.answer:>7.3f}  {c.reward:>7.3f}  {c.rule}")
    return "\n".join(lines)
