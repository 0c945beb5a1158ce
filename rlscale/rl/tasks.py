"""arith-graph: modular arithmetic over a dependency graph, with an exactly checkable solution.

After Zhang et al. 2025, "On the Interplay of Pre-Training, Mid-Training, and RL on Reasoning
Language Models", whose synthetic task is arithmetic over dependency graphs
with the number of operations as the difficulty dial. A problem with ``ops`` operations::

    prompt:   "b=4,k=q+b,z=k*7,q=b-2?z:"     (statements shuffled; '?z' asks for z)
    ordered:  "b=4,q=b-2,k=q+b,z=k*7?z:"     (``shuffle=False``: dependency order)
    worked:   "q=b-2=4-2=2;k=q+b=2+4=6;z=k*7=6*7=2;#2"
    compact:  "q=2;k=6;z=2;#2"
    direct:   "#2"

Every derived quantity sits on one chain (each operation uses the previous result), so the
answer depends on every operation. A response's format is read from its shape. The reward is 1
only when the whole response checks out: in a worked solution every step's definition,
substituted values and result; in a compact one every value; and the final answer.
Character-level vocabulary; everything is seeded.

Values can have several digits (``digits``, default 1, the original task): every value and
literal is then a string of ``digits`` digits and every operation acts digit by digit, mod 10 in
each place (``digits=2``: ``"k=q+07=45+07=42"``, 4+0 and 5+7 mod 10), so each step is exactly as
hard as in the one-digit task while an answer has 10^digits possible values. With one digit an
answer alone is guessed right one time in ten or more (a product by an even literal is even, ...):
the *chance level* of a task, the best accuracy of a rule that does no arithmetic, is measured by
:mod:`rlscale.rl.chance`. With ``verified_only`` (``task.reward = "verified"``) only a worked or
compact solution whose every step checks earns reward; a bare answer earns nothing. Whatever the
reward, :func:`verified` says whether the verifier accepts a response's work, which is what
pass@k counts (:mod:`rlscale.analysis.passk_eval`).

Held-out problems never overlap training ones: a problem belongs to the evaluation split iff the
sha256 of its prompt falls in the lowest ``eval_fraction`` of hash space, and the training
sampler rejects those.
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass

MOD = 10  # every operation is mod 10, in each digit
FORMATS: tuple[str, ...] = ("worked", "compact", "direct")
PAD, BOS, EOS = 0, 1, 2
CHARS = string.digits + string.ascii_lowercase + "+-*=,;?:#"
VOCAB: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", *CHARS)
VOCAB_SIZE = len(VOCAB)
_INDEX = {c: i for i, c in enumerate(VOCAB)}
_OPS = {"+": lambda a, b: (a + b) % MOD, "-": lambda a, b: (a - b) % MOD,
        "*": lambda a, b: (a * b) % MOD}


def apply(op: str, a: int, b: int, digits: int = 1) -> int:
    """``a op b`` digit by digit, mod 10 in each of ``digits`` places (``digits=1``: mod 10)."""
    out, place = 0, 1
    for _ in range(digits):
        out += _OPS[op](a // place % MOD, b // place % MOD) * place
        place *= MOD
    return out


@dataclass(frozen=True)
class Step:
    """One operation ``out = left op right``; operands are variable names or single digits."""

    out: str
    left: str
    op: str
    right: str


@dataclass(frozen=True)
class Problem:
    """A graph: given constants, the operations in dependency order, and the asked variable."""

    base: tuple[tuple[str, int], ...]
    steps: tuple[Step, ...]
    order: tuple[int, ...]  # display order of statements (a permutation of base + steps)
    digits: int = 1  # digits of every value; operations act digit by digit, mod 10

    @property
    def ops(self) -> int:
        return len(self.steps)

    @property
    def target(self) -> str:
        return self.steps[-1].out

    def values(self) -> dict[str, int]:
        vals = dict(self.base)
        for s in self.steps:
            vals[s.out] = apply(s.op, _val(s.left, vals), _val(s.right, vals), self.digits)
        return vals

    def text(self, value: int) -> str:
        """``value`` as the task writes it: ``digits`` digits, zero-padded."""
        return str(value).zfill(self.digits)

    @property
    def answer(self) -> int:
        return self.values()[self.target]

    def prompt(self) -> str:
        stmts = [f"{n}={self.text(v)}" for n, v in self.base] + [
            f"{s.out}={s.left}{s.op}{s.right}" for s in self.steps
        ]
        return ",".join(stmts[i] for i in self.order) + f"?{self.target}:"

    def solution(self, fmt: str) -> str:
        vals = self.values()
        if fmt == "worked":
            body = "".join(
                f"{s.out}={s.left}{s.op}{s.right}={self.text(_val(s.left, vals))}{s.op}"
                f"{self.text(_val(s.right, vals))}={self.text(vals[s.out])};"
                for s in self.steps
            )
        elif fmt == "compact":
            body = "".join(f"{s.out}={self.text(vals[s.out])};" for s in self.steps)
        elif fmt == "direct":
            body = ""
        else:
            msg = f"unknown format {fmt!r}; expected one of {FORMATS}"
            raise ValueError(msg)
        return body + f"#{self.text(vals[self.target])}"


def _val(operand: str, vals: dict[str, int]) -> int:
    return int(operand) if operand.isdigit() else vals[operand]


def make_problem(rng: random.Random, *, ops: int, operators: str = "+-*", n_base: int = 2,
                 const_prob: float = 0.25, shuffle: bool = True, digits: int = 1) -> Problem:
    """Draw one problem with ``ops`` operations from ``rng`` (deterministic given its state).

    ``shuffle`` shows the statements in random order (finding the next operation is then a
    search over the prompt); without it they come in dependency order (constants, then the chain).
    The random draws are the same either way, so the two orders give the same graphs; with
    one digit they are those of the original task.
    """
    names = rng.sample(string.ascii_lowercase, n_base + ops)
    size = MOD**digits
    base = tuple((names[i], rng.randrange(size)) for i in range(n_base))
    known = [n for n, _ in base]
    steps = []
    prev = rng.choice(known)
    for i in range(ops):
        others = [k for k in known if k != prev]
        other = (str(rng.randrange(size)).zfill(digits) if rng.random() < const_prob
                 else rng.choice(others or known))
        left, right = (prev, other) if rng.random() < 0.5 else (other, prev)
        step = Step(names[n_base + i], left, rng.choice(operators), right)
        steps.append(step)
        known.append(step.out)
        prev = step.out
    order = list(range(n_base + ops))
    shuffled = order[:]
    rng.shuffle(shuffled)
    return Problem(base, tuple(steps), tuple(shuffled if shuffle else order), digits)


def is_eval_problem(problem: Problem, eval_fraction: float) -> bool:
    """True iff the problem belongs to the held-out split (by sha256 of its prompt)."""
    digest = hashlib.sha256(problem.prompt().encode()).digest()
    return int.from_bytes(digest[:8], "big") < eval_fraction * 2**64


def sample_problems(seed: int | str, n: int, *, ops_min: int, ops_max: int, split: str,
                    eval_fraction: float, operators: str = "+-*", n_base: int = 2,
                    const_prob: float = 0.25, shuffle: bool = True,
                    digits: int = 1) -> list[Problem]:
    """``n`` problems of the ``split`` ('train' or 'eval'), ops uniform in [ops_min, ops_max].

    Deterministic in ``seed``; rejection-samples so the two splits never share a prompt.
    """
    if split not in ("train", "eval"):
        msg = f"split must be 'train' or 'eval', got {split!r}"
        raise ValueError(msg)
    rng = random.Random(f"arith-graph/{seed}")
    want_eval = split == "eval"
    out: list[Problem] = []
    while len(out) < n:
        ops = rng.randint(ops_min, ops_max)
        p = make_problem(rng, ops=ops, operators=operators, n_base=n_base, const_prob=const_prob,
                         shuffle=shuffle, digits=digits)
        if is_eval_problem(p, eval_fraction) == want_eval:
            out.append(p)
    return out


# -- checking responses --------------------------------------------------------------------------
def response_format(text: str) -> str:
    """'worked', 'compact', 'direct' or 'other', read from the response's shape."""
    body, sep, _ = text.rpartition("#")
    if not sep:
        return "other"
    if body == "":
        return "direct"
    lines = body.split(";")
    if lines[-1] != "":
        return "other"
    counts = {line.count("=") for line in lines[:-1]}
    if counts == {3}:
        return "worked"
    if counts == {1}:
        return "compact"
    return "other"


def score(problem: Problem, text: str, *, verified_only: bool = False) -> float:
    """1.0 iff ``text`` (the decoded response, no EOS) is a fully correct solution, else 0.0.

    ``verified_only``: a direct answer (no work shown) scores 0 however right it is; only a
    solution the verifier can check step by step counts (:func:`verified`).
    """
    fmt = response_format(text)
    if fmt == "other" or (verified_only and fmt == "direct"):
        return 0.0
    body, _, answer = text.rpartition("#")
    vals = problem.values()
    if answer != problem.text(vals[problem.target]):
        return 0.0
    if fmt == "direct":
        return 1.0
    expected = problem.solution(fmt)
    # Steps must come in an order where every operand is already known; the chain admits one.
    return 1.0 if body + "#" + answer == expected else 0.0


def verified(problem: Problem, text: str) -> bool:
    """True iff ``text`` shows its work (worked or compact) and every step and the answer check:
    what the verifier accepts, whatever the task rewards. pass@k counts these."""
    return score(problem, text, verified_only=True) == 1.0


def token_roles(text: str) -> list[str]:
    """Per character of a response: 'plan' (choosing and restating the next operation, the
    part up to its second '='), 'exec' (substituted values and result) or 'answer' ('#...')."""
    roles = []
    eq = 0
    answered = False
    for ch in text:
        if answered or ch == "#":
            answered = True
            roles.append("answer")
            continue
        roles.append("plan" if eq < 2 else "exec")
        if ch == "=":
            eq += 1
        elif ch == ";":
            eq = 0
    return roles


# -- tokenizer ----------------------------------------------------------------------------------
def encode(text: str) -> list[int]:
    try:
        return [_INDEX[c] for c in text]
    except KeyError as exc:
        msg = f"character {exc.args[0]!r} is not in the arith-graph vocabulary {CHARS!r}"
        raise ValueError(msg) from None


def decode(ids: list[int]) -> str:
    """Characters up to the first EOS/PAD (special tokens end the text)."""
    out = []
    for i in ids:
        if i in (PAD, EOS):
            break
        if i == BOS:
            continue
        out.append(VOCAB[i])
    return "".join(out)
