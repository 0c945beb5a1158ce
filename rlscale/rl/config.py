"""Job configuration: one small dataclass per stage, plus typed ``key=value`` overrides.

A job is ``JobConfig(task=..., model=..., pretrain=..., rl=..., eval=...)``. It round-trips
through TOML / dicts (:meth:`JobConfig.from_toml`, :meth:`JobConfig.from_dict`,
:meth:`JobConfig.to_dict`), takes command-line overrides (:meth:`JobConfig.with_overrides`), and
hashes stably (:meth:`JobConfig.hash`). Unknown keys and mistyped values are errors that name
the key, the value and what was expected. The RL stage names a recipe (:mod:`rlscale.rl.recipes`)
and overrides any of its knobs; written out (TOML, run.json, ``--set``) each knob is a key of
``[rl]``, ``none`` or absent where the recipe decides. This module does not import torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rlscale.errors import input_error
from rlscale.rl.recipes import KNOBS, RECIPES, Recipe

# Allowed values of the string knobs, declared once and checked in :meth:`JobConfig.validate`.
PRECISIONS = ("bf16", "fp32", "auto")  # see rlscale.rl.model.autocast

CHOICES: dict[str, tuple[str, ...]] = {
    "task.name": ("arith-graph",),
    "task.reward": ("answer", "verified"),
    "device": ("auto", "cpu", "cuda"),
    "rl.recipe": tuple(RECIPES),
    "rl.adv_norm": ("group", "batch", "none"),
    "rl.loss_agg": ("token-mean", "seq-mean", "prompt-mean", "constant"),
    "rl.objective": ("ppo", "cispo"),
    "rl.trainer": ("rl", "sft", "rft"),
    "pretrain.precision": PRECISIONS,
    "rl.precision": PRECISIONS,
}


@dataclass(kw_only=True)
class TaskConfig:
    """The synthetic task: modular arithmetic over a dependency graph of ``ops`` operations.

    The defaults make a chain that a ~1M-parameter model learns to solve step by step within
    the default pretraining budget: one given constant, statements in dependency order, every
    second operand a literal. ``shuffle=true n_base=2 const_prob=0.25`` is the original, harder
    graph task (finding the next statement and looking values up by name). With one digit (the
    default) an answer is guessed right 10-22% of the time without arithmetic (``rlscale
    chance``); the demo's task, ``digits=2 operators="+-" reward="verified"``, has no such floor:
    answers have two digits, each step is a bijection, and only checked work earns reward.
    """

    name: str = "arith-graph"  # task family (only 'arith-graph' so far)
    operators: str = "+-*"  # operators a problem may use, each applied mod 10
    n_base: int = 1  # given constants per problem (the graph's leaves)
    const_prob: float = 1.0  # chance that an operand is a literal digit instead of a variable
    eval_fraction: float = 0.05  # share of problem space (by hash) held out for evaluation only
    eval_seed: int = 12345  # seed of the held-out evaluation problems (same for every run)
    shuffle: bool = False  # statements in random order (False: dependency order)
    digits: int = 1  # digits per value; each operation acts digit by digit, mod 10
    reward: str = "answer"  # answer: any right answer (bare or worked) | verified: checked work only

    @property
    def verified_only(self) -> bool:
        """True when only verified work (not a bare answer) earns reward."""
        return self.reward == "verified"

    def problem_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`rlscale.rl.tasks.sample_problems` this task fixes."""
        return {"eval_fraction": self.eval_fraction, "operators": self.operators,
                "n_base": self.n_base, "const_prob": self.const_prob, "shuffle": self.shuffle,
                "digits": self.digits}


@dataclass(kw_only=True)
class ModelConfig:
    """A decoder-only transformer (pre-norm, RoPE, RMSNorm, tied embeddings)."""

    d_model: int = 128  # residual width
    n_layers: int = 4  # transformer blocks
    n_heads: int = 4  # attention heads (d_model must divide evenly)
    ff_mult: int = 4  # MLP hidden width = ff_mult * d_model
    max_len: int = 256  # longest sequence (prompt + solution) in tokens
    rope_base: float = 10000.0  # RoPE frequency base

    @property
    def name(self) -> str:
        return f"d{self.d_model}-L{self.n_layers}"


@dataclass(kw_only=True)
class PretrainConfig:
    """What the base model sees before RL: how much (tokens) and what (difficulties, formats)."""

    tokens: int = 16_000_000  # tokens processed (prompt + solution, pads excluded)
    ops_min: int = 1  # easiest problems in the pretraining mix (number of operations)
    ops_max: int = 4  # hardest problems in the pretraining mix
    hard_share: float = 0.0  # share of problems beyond the range: ops_max+1 .. ops_max+hard_ops
    hard_ops: int = 2  # how far beyond ops_max the hard_share reaches
    mix_worked: float = 0.75  # weight of worked solutions: "c=b*a=8*3=4;...#4"
    mix_compact: float = 0.0  # weight of value-only solutions: "c=4;...#4"
    mix_direct: float = 0.25  # weight of direct answers: "#4"
    batch_size: int = 64  # sequences per optimiser step
    lr: float = 3e-3  # peak AdamW learning rate (linear warm-up, cosine decay to 10%)
    warmup_frac: float = 0.03  # share of steps spent warming up
    weight_decay: float = 0.1  # AdamW weight decay on matrices
    seed: int = 0  # data and init seed of the base (separate from the RL seed, so seeds share bases)
    precision: str = "bf16"  # bf16 (autocast: bf16 matrix products, fp32 weights) | fp32 | auto


@dataclass(kw_only=True)
class RLConfig:
    """GRPO-family RL: a named recipe, any of its knobs overridden, and the loop's sizes.

    The recipe's knobs (the fields of :class:`~rlscale.rl.recipes.Recipe`) read as attributes,
    ``rl.kl_coef``: the override where there is one, else the recipe's value (:attr:`knobs`).
    """

    recipe: str = "grpo"  # the knobs' preset: grpo | dapo | cispo | scalerl | drgrpo (recipes.py)
    overrides: dict[str, Any] = field(default_factory=dict)  # knobs given: {"kl_coef": 0.01}
    steps: int = 120  # RL steps (one batch of prompts_per_step x group_size samples each)
    lr: float = 3e-4  # AdamW learning rate (constant after warm-up)
    warmup_steps: int = 0  # linear warm-up of the learning rate over the first N steps
    max_flops: float = 0.0  # stop once cumulative RL FLOPs reach this (0 = off: rl.steps decides)
    prompts_per_step: int = 32  # distinct prompts per step
    group_size: int = 8  # samples per prompt
    max_new_tokens: int = 128  # longest sampled response
    ops_min: int = 1  # easiest RL prompts (operations)
    ops_max: int = 4  # hardest RL prompts
    ref_reset_every: int = 0  # copy the policy into the reference every N steps (0 = never)
    precision: str = "bf16"  # sampling, log-probs and eval: bf16 | fp32 | auto (bf16 on GPU only)
    # rl: the recipe's policy-gradient update | sft: NLL of each prompt's gold worked solution |
    # rft: NLL of the policy's own verified-correct samples (rejection fine-tuning); the same
    # prompts, steps, lr and optimiser; sft and rft ignore the recipe's loss knobs and kl_coef
    trainer: str = "rl"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.overrides) - set(KNOBS))
        if unknown:
            raise input_error(f"unknown recipe knob 'rl.{unknown[0]}'", field=f"rl.{unknown[0]}",
                              expected=f"one of {[f'rl.{k}' for k in KNOBS]}")
        # None is how a written config says "the recipe's value": not an override
        self.overrides = {k: v for k, v in self.overrides.items() if v is not None}

    @property
    def knobs(self) -> Recipe:
        """The recipe's knob values with :attr:`overrides` applied."""
        if self.recipe not in RECIPES:
            raise input_error(f"rl.recipe={self.recipe!r} is not allowed", field="rl.recipe",
                              expected=f"one of {list(RECIPES)}")
        return replace(RECIPES[self.recipe], **self.overrides)

    def __getattr__(self, name: str) -> Any:
        # Called only for names that are not attributes: a knob reads from the resolved recipe.
        if name in KNOBS:
            return getattr(self.knobs, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> RLConfig:
        """From the written form (:meth:`to_dict`): knobs beside the rest, None: the recipe's."""
        plain = {k: v for k, v in values.items() if k not in KNOBS}
        return cls(**plain, overrides={k: v for k, v in values.items() if k in KNOBS})

    def to_dict(self) -> dict[str, Any]:
        """The written form: the recipe, every knob (None where the recipe decides), the rest."""
        data = asdict(self)
        overrides = data.pop("overrides")
        return {"recipe": data.pop("recipe"), **{k: overrides.get(k) for k in KNOBS}, **data}


@dataclass(kw_only=True)
class EvalConfig:
    """Held-out evaluation: mean@k and unbiased pass@k per difficulty."""

    every: int = 5  # evaluate (and checkpoint) every N RL steps
    problems: int = 32  # held-out problems per difficulty
    samples: int = 8  # samples per problem (k of mean@k; pass@k for k up to this)
    ops_min: int = 1  # easiest evaluated difficulty
    ops_max: int = 5  # hardest evaluated difficulty
    temperature: float = 1.0  # sampling temperature (training samples use 1.0 too)
    kl_base: bool = False  # also log eval/kl_base: mean per-token KL(policy || base) (runner.py)
    keep_checkpoints: bool = False  # also keep the policy at every evaluation (_ckpt/<run>/step-N.pt)


_SECTIONS: dict[str, type] = {
    "task": TaskConfig,
    "model": ModelConfig,
    "pretrain": PretrainConfig,
    "rl": RLConfig,
    "eval": EvalConfig,
}


@dataclass(kw_only=True)
class JobConfig:
    """A whole RL job: one dataclass per stage. Saved whole in the run's run.json."""

    run_id: str | None = None  # store run id (default: derived from recipe, model and hash)
    seed: int = 0  # RL seed: sampling, prompt order
    device: str = "auto"  # auto | cpu | cuda
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> JobConfig:
        """Build from a nested dict (as TOML gives). Unknown keys and wrong types are errors."""
        if not isinstance(data, dict):
            raise input_error(f"config must be a table, got {type(data).__name__}", path=source)
        top = set(_keys(cls))
        unknown = sorted(set(data) - top)
        if unknown:
            raise input_error(f"unknown key {unknown[0]!r}", path=source, field=unknown[0],
                              expected=f"one of {sorted(top)}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name in _SECTIONS:
                kwargs[name] = _section_from_dict(_SECTIONS[name], name, value, source)
            else:
                kwargs[name] = _coerce(cls, name, name, value, source)
        config = cls(**kwargs)
        config.validate(source=source)
        return config

    @classmethod
    def from_stored(cls, data: dict[str, Any], *, source: str | None = None) -> JobConfig:
        """Build from a config saved by an earlier rlscale (run.json, base.json): knobs added since
        are missing there and take the value that reproduces what that run did, not today's default."""
        data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
        for section, knobs in _ADDED_KNOBS.items():
            if isinstance(data.get(section), dict):
                for key, legacy in knobs.items():
                    data[section].setdefault(key, legacy)
        return cls.from_dict(data, source=source)

    @classmethod
    def from_toml(cls, path: str | Path) -> JobConfig:
        """Read a TOML file whose tables are ``[task]``, ``[model]``, ``[pretrain]``, ``[rl]``, ``[eval]``."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise input_error("no such config file", path=path) from None
        except tomllib.TOMLDecodeError as exc:
            raise input_error(f"not valid TOML: {exc}", path=path) from None
        return cls.from_dict(data, source=str(path))

    def with_overrides(self, overrides: list[str] | tuple[str, ...]) -> JobConfig:
        """Return a copy with ``section.key=value`` (or ``seed=3``) overrides applied, typed."""
        data = self.to_dict()
        for item in overrides:
            if "=" not in item:
                raise input_error(f"override {item!r} is not key=value",
                                  expected="e.g. rl.lr=1e-4 or seed=3")
            key, raw = item.split("=", 1)
            key = key.strip()
            parts = key.split(".")
            if len(parts) == 1 and parts[0] in data and parts[0] not in _SECTIONS:
                data[parts[0]] = _parse(JobConfig, parts[0], key, raw)
            elif len(parts) == 2 and parts[0] in _SECTIONS:
                section_cls = _SECTIONS[parts[0]]
                names = list(_keys(section_cls))
                if parts[1] not in names:
                    raise input_error(f"unknown key {key!r}", field=key,
                                      expected=f"one of {[f'{parts[0]}.{n}' for n in names]}")
                data[parts[0]][parts[1]] = _parse(section_cls, parts[1], key, raw)
            else:
                valid = ["run_id", "seed", "device"] + [f"{s}.<key>" for s in _SECTIONS]
                raise input_error(f"unknown key {key!r}", field=key, expected=f"one of {valid}")
        return JobConfig.from_dict(data, source="--set")

    # -- output ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The written form (as in TOML and run.json): nested plain values, every key present."""
        return {**asdict(self), "rl": self.rl.to_dict()}

    def hash(self) -> str:
        """sha256 (hex) of everything that changes results: the config less run_id and device."""
        data = self.to_dict()
        data.pop("run_id")
        data.pop("device")
        if data["rl"]["minibatches"] is None:  # a plain field (always written) before it was a
            data["rl"]["minibatches"] = self.rl.minibatches  # knob: hashed resolved, as before
        return stable_hash(data)

    def validate(self, *, source: str | None = None) -> None:
        """Check allowed string values and ranges; raise :class:`InputError` naming the key."""
        data = self.to_dict()
        flat = {k: data[k] for k in ("run_id", "seed", "device")}
        for name in _SECTIONS:
            for key, value in data[name].items():
                flat[f"{name}.{key}"] = value
        for key, value in flat.items():
            _check_range(key, value, source)
        for key, allowed in CHOICES.items():
            value = flat[key]
            if value is not None and value not in allowed:
                raise input_error(f"{key}={value!r} is not allowed", path=source, field=key,
                                  expected=f"one of {list(allowed)}")
        positive = ["model.d_model", "model.n_layers", "model.n_heads", "model.ff_mult",
                    "model.max_len", "pretrain.batch_size", "rl.prompts_per_step",
                    "rl.group_size", "rl.max_new_tokens", "rl.minibatches", "eval.every",
                    "eval.problems", "eval.samples", "rl.ops_min", "pretrain.ops_min",
                    "eval.ops_min"]
        flat["rl.minibatches"] = self.rl.minibatches  # a knob: None in to_dict means the recipe's
        for key in positive:
            if flat[key] <= 0:
                raise input_error(f"{key}={flat[key]!r} must be positive", path=source, field=key,
                                  expected="an integer >= 1")
        for lo, hi in (("rl.ops_min", "rl.ops_max"), ("pretrain.ops_min", "pretrain.ops_max"),
                       ("eval.ops_min", "eval.ops_max")):
            if flat[lo] > flat[hi]:
                raise input_error(f"{lo}={flat[lo]} exceeds {hi}={flat[hi]}", path=source,
                                  field=lo, expected=f"{lo} <= {hi}")
        if self.model.d_model % self.model.n_heads or (self.model.d_model // self.model.n_heads) % 2:
            raise input_error(f"model.d_model={self.model.d_model} does not split into "
                              f"{self.model.n_heads} heads of even width", path=source,
                              field="model.n_heads", expected="d_model / n_heads an even integer")
        mix = (self.pretrain.mix_worked, self.pretrain.mix_compact, self.pretrain.mix_direct)
        if min(mix) < 0 or sum(mix) <= 0:
            raise input_error(f"pretrain mix {mix} is not a set of non-negative weights", path=source,
                              field="pretrain.mix_worked", expected="weights >= 0 with a positive sum")
        bad_ops = set(self.task.operators) - set("+-*")
        if not self.task.operators or bad_ops:
            raise input_error(f"task.operators={self.task.operators!r}", path=source,
                              field="task.operators", expected="a non-empty subset of '+-*'")
        if not 0 < self.task.eval_fraction < 1:
            raise input_error(f"task.eval_fraction={self.task.eval_fraction}", path=source,
                              field="task.eval_fraction", expected="a number in (0, 1)")


# The range of every numeric key (lo, hi, lo allowed); every number must also be finite. The
# positive sizes and the ops ordering are checked in :meth:`JobConfig.validate` itself.
_MAX_SEED = 2**63 - 1
RANGES: dict[str, tuple[float, float, bool]] = {
    "seed": (0, _MAX_SEED, True),
    "task.n_base": (1, math.inf, True),
    "task.const_prob": (0, 1, True),
    "task.eval_seed": (0, _MAX_SEED, True),
    "task.digits": (1, 6, True),
    "pretrain.hard_share": (0, 1, True),
    "pretrain.hard_ops": (1, 64, True),
    "model.rope_base": (0, math.inf, False),
    "pretrain.tokens": (0, math.inf, True),
    "pretrain.lr": (0, math.inf, True),
    "pretrain.warmup_frac": (0, 1, True),
    "pretrain.weight_decay": (0, math.inf, True),
    "pretrain.seed": (0, _MAX_SEED, True),
    "pretrain.mix_worked": (0, math.inf, True),
    "pretrain.mix_compact": (0, math.inf, True),
    "pretrain.mix_direct": (0, math.inf, True),
    "rl.steps": (0, math.inf, True),
    "rl.lr": (0, math.inf, True),
    "rl.ref_reset_every": (0, math.inf, True),
    "rl.warmup_steps": (0, math.inf, True),
    "rl.max_flops": (0, math.inf, True),
    "rl.clip_low": (0, 1, True),
    "rl.clip_high": (0, math.inf, True),
    "rl.kl_coef": (0, math.inf, True),
    "eval.temperature": (0, math.inf, False),
}


def _check_range(key: str, value: Any, source: str | None) -> None:
    """A number that is not finite, or outside :data:`RANGES`, is an error naming the key."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    lo, hi, lo_ok = RANGES.get(key, (-math.inf, math.inf, True))
    finite = isinstance(value, int) or math.isfinite(value)
    if finite and (lo < value or (lo_ok and value == lo)) and value <= hi:
        return
    low = f">= {lo:g}" if lo_ok else f"> {lo:g}"
    want = (f"a finite number {low}" if hi == math.inf else
            f"a number from {lo:g} to {hi:g}" if lo_ok else f"a number {low} and <= {hi:g}")
    if isinstance(value, int) and hi == _MAX_SEED:
        want = f"an integer from {lo} to {hi}"
    elif isinstance(value, int):
        want = want.replace("a finite number", "an integer").replace("a number", "an integer")
    raise input_error(f"{key}={value!r} is out of range", path=source, field=key, expected=want)


# Knobs added after bases were shipped and runs stored: left out of every hash while they hold the
# value that reproduces the older behaviour, so the shipped bases and earlier run ids keep their keys.
_ADDED_KNOBS: dict[str, dict[str, Any]] = {
    "task": {"shuffle": True, "digits": 1, "reward": "answer"},
    # bases before precision were pretrained in fp32 on every device; none had hard problems
    "pretrain": {"precision": "fp32", "hard_share": 0.0, "hard_ops": 2},
    "rl": {"precision": "auto",  # runs before it used bf16 autocast on CUDA, fp32 on CPU
           "warmup_steps": 0, "max_flops": 0.0, "trainer": "rl"},
    "eval": {"kl_base": False, "keep_checkpoints": False},
}


def _drop_added(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for section, knobs in _ADDED_KNOBS.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items()
                            if not (k in knobs and v == knobs[k])}
    return out


def stable_hash(data: Any) -> str:
    """sha256 hex of canonical JSON (sorted keys), so equal configs hash equal across runs."""
    text = json.dumps(_drop_added(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def base_hash(config: JobConfig) -> str:
    """Hash of what determines a pretrained base: task, model and pretraining (not the RL seed)."""
    return stable_hash({"task": asdict(config.task), "model": asdict(config.model),
                        "pretrain": asdict(config.pretrain)})


def _section_from_dict(cls: type, name: str, value: Any, source: str | None) -> Any:
    if not isinstance(value, dict):
        raise input_error(f"[{name}] must be a table, got {value!r}", path=source, field=name)
    valid = list(_keys(cls))
    unknown = sorted(set(value) - set(valid))
    if unknown:
        raise input_error(f"unknown key '{name}.{unknown[0]}'", path=source,
                          field=f"{name}.{unknown[0]}",
                          expected=f"one of {[f'{name}.{v}' for v in valid]}")
    values = {k: _coerce(cls, k, f"{name}.{k}", v, source) for k, v in value.items()}
    return RLConfig.from_flat(values) if cls is RLConfig else cls(**values)


@functools.cache
def _keys(cls: type) -> dict[str, Any]:
    """Key -> type of a config table as written (TOML, run.json, ``--set``): in ``[rl]`` the
    recipe's knobs stand beside the other keys, each also taking none (the recipe's value)."""
    hints = typing.get_type_hints(cls)
    if cls is RLConfig:
        del hints["overrides"]
        knobs = {k: t | None for k, t in typing.get_type_hints(Recipe).items()}
        hints = {"recipe": hints.pop("recipe"), **knobs, **hints}
    return hints


def _allowed(tp: Any) -> tuple[list[type], bool]:
    """(concrete types, None allowed) of an annotation like ``float | None``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = list(typing.get_args(tp))
        return [a for a in args if a is not type(None)], type(None) in args
    return [tp], False


def _coerce(cls: type, name: str, key: str, value: Any, source: str | None) -> Any:
    """Check a value read from TOML/JSON against the field's type (ints may stand for floats)."""
    kinds, nullable = _allowed(_keys(cls)[name])
    if value is None and nullable:
        return None
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    raise input_error(f"{key}={value!r} has the wrong type", path=source, field=key,
                      expected=_type_name(kinds, nullable))


def _parse(cls: type, name: str, key: str, raw: str) -> Any:
    """Parse the text of an override into the field's type."""
    kinds, nullable = _allowed(_keys(cls)[name])
    text = raw.strip()
    if nullable and text.lower() in ("none", "null"):
        return None
    for kind in kinds:
        try:
            if kind is bool:
                low = text.lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off"):
                    return False
                continue
            if kind is int:
                number = float(text)
                if number.is_integer():
                    return int(number)
                continue
            if kind is float:
                return float(text)
            if kind is str:
                return text
        except ValueError:
            continue
    raise input_error(f"{key}={raw!r} has the wrong type", field=key,
                      expected=_type_name(kinds, nullable))


def _type_name(kinds: list[type], nullable: bool) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    text = " or ".join(names.get(k, k.__name__) for k in kinds)
    return text + (" or none" if nullable else "")

