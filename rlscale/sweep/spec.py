"""Sweep specs: parse a TOML spec and expand it into jobs with deterministic run ids.

A spec names a base job config and the settings to vary::

    name = "pretrain-study"          # run ids start with this
    base = "base.toml"               # the base job config (relative to the spec), or a [base] table
    job = "rl"                       # "rl" (rlscale's RL job) or "package.module:function"
    seeds = [0, 1]
    group_by = []                    # custom jobs: keys naming a shared first stage (RL: the base)
    num_cpus = 1                     # resource request per job (Ray schedules on it)
    num_gpus = 0

    [set]                            # fixed overrides of the base config
    "rl.steps" = 40

    [grid]                           # every combination of these
    "pretrain.tokens" = [0, 2e5, 1e6]

    [[points]]                       # listed points, each crossed with the grid
    "rl.recipe" = "grpo"

Keys are dotted paths into the config (``rl.lr``); TOML's own dotted keys (``rl.lr = 1e-4``
without quotes) mean the same. A key must exist in the base config, so a typo is an error, not a
silently ignored setting. The jobs are points x grid x seeds; a job's run id is
``<name>-<key>=<value>-...-s<seed>`` over the varied keys, so the same spec always yields the same
ids and a restarted sweep finds its runs.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlscale.errors import input_error
from rlscale.store import check_run_id

SPEC_KEYS = ("name", "description", "job", "estimate", "base", "seeds", "num_cpus", "num_gpus",
             "metric", "group_by", "set", "grid", "points")
_RESERVED = ("run_id", "seed")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_MAX_ID = 200


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec. ``base`` is the base config as a nested dict (for ``job="rl"`` it is filled
    in when jobs are expanded); ``fixed``, ``grid`` and ``points`` map dotted keys to values."""

    name: str
    job: str = "rl"
    base: dict[str, Any] = field(default_factory=dict)
    base_path: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    metric: str = "reward"  # shown in the progress view (RL jobs: train/reward by default)
    estimate: str | None = None
    group_by: list[str] = field(default_factory=list)
    description: str = ""
    path: str | None = None

    @property
    def varied_keys(self) -> list[str]:
        """Keys that differ between jobs: those of the points (first seen first), then the grid's."""
        keys: list[str] = []
        for point in self.points:
            keys += [k for k in point if k not in keys]
        return keys + [k for k in self.grid if k not in keys]


@dataclass(frozen=True)
class Job:
    """One expanded job: its run id, the varied values and seed that define it, its full config.

    Jobs with the same ``group`` share an expensive first stage (RL jobs: the pretrained base);
    the sweep starts one of them first and the others once it has finished, so it is built once.
    """

    job_id: str
    varied: dict[str, Any]
    seed: int
    config: dict[str, Any]
    group: str | None = None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a spec file; raises :class:`InputError` naming the file and the key."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise input_error("no such file", path=path, expected="a sweep spec TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise input_error(f"not valid TOML: {exc}", path=path) from None
    except UnicodeDecodeError as exc:
        raise input_error(f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start})", path=path, expected="a sweep spec TOML file") from None
    return parse_spec(raw, path=path)


def parse_spec(raw: dict[str, Any], *, path: str | Path | None = None) -> SweepSpec:
    """Check a spec given as a dict (what :func:`load_spec` reads from TOML)."""
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise input_error(f"unknown key(s) {unknown}", path=path, field=unknown[0],
                          expected=f"keys among {list(SPEC_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise input_error("missing or empty 'name'", path=path, field="name",
                          expected="a short name; run ids start with it")
    try:
        check_run_id(name)
    except ValueError:
        raise input_error(f"invalid sweep name {name!r}", path=path, field="name",
                          expected="letters, digits and . _ = + -, not starting with . or _") from None
    job = _str(raw, "job", "rl", path)
    if job != "rl" and ":" not in job:
        raise input_error(f"job {job!r} is neither 'rl' nor an import path", path=path, field="job",
                          expected="'rl' or 'package.module:function'")
    base, base_path = _base(raw.get("base"), path)
    fixed = _flat_table(raw, "set", path)
    grid = _flat_table(raw, "grid", path)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise input_error(f"grid value for {key!r} is {values!r}", path=path, field=f"grid.{key}",
                              expected="a non-empty list of values")
        if len({_fmt(v) for v in values}) != len(values):
            raise input_error(f"grid values for {key!r} repeat: {values!r}", path=path,
                              field=f"grid.{key}", expected="distinct values")
    points = raw.get("points", [])
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise input_error("'points' is not a list of tables", path=path, field="points",
                          expected="[[points]] tables of key = value")
    points = [_flatten(p) for p in points]
    for i, point in enumerate(points):
        if not point:
            raise input_error(f"point {i + 1} is empty", path=path, field="points",
                              expected="at least one key = value")
    _check_keys(fixed, grid, points, path)
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise input_error(f"seeds = {seeds!r}", path=path, field="seeds",
                          expected="a non-empty list of distinct non-negative integers")
    num_cpus = _number(raw, "num_cpus", 1.0, path)
    num_gpus = _number(raw, "num_gpus", 0.0, path)
    estimate = raw.get("estimate")
    if estimate is not None and (not isinstance(estimate, str) or ":" not in estimate):
        raise input_error(f"estimate = {estimate!r}", path=path, field="estimate",
                          expected="an import path 'package.module:function'")
    group_by = raw.get("group_by", [])
    if not isinstance(group_by, list) or not all(isinstance(k, str) for k in group_by):
        raise input_error(f"group_by = {group_by!r}", path=path, field="group_by",
                          expected="a list of dotted config keys")
    if group_by and job == "rl":
        raise input_error("group_by is for custom jobs", path=path, field="group_by",
                          expected="no group_by: RL jobs are grouped by their pretrained base")
    return SweepSpec(
        name=name, job=job, group_by=group_by, base=base, base_path=base_path, fixed=fixed, grid=grid, points=points,
        seeds=seeds, num_cpus=num_cpus, num_gpus=num_gpus, metric=_str(raw, "metric", "train/reward" if job == "rl" else "reward", path),
        estimate=estimate, description=_str(raw, "description", "", path),
        path=None if path is None else str(path),
    )


def expand_jobs(spec: SweepSpec, *, base: dict[str, Any] | None = None) -> list[Job]:
    """All jobs of a spec, seeds outermost (so every setting gets a first seed early).

    ``base`` replaces ``spec.base`` (the RL adapter passes the fully defaulted config). Each job's
    config is the base with the fixed, point and grid values applied, plus ``seed`` and ``run_id``.
    Raises :class:`InputError` if a key is not in the base config or two jobs share a run id.
    """
    base = spec.base if base is None else base
    for key in spec.group_by:
        try:
            _get_dotted(base, key)
        except (KeyError, TypeError):
            raise input_error(f"group_by key {key!r} is not a setting of the base config",
                              path=spec.path, field="group_by", expected="dotted config keys") from None
    varied_keys = spec.varied_keys
    labels = _labels(varied_keys)
    combos = [dict(zip(spec.grid, values)) for values in itertools.product(*spec.grid.values())]
    jobs: list[Job] = []
    seen: dict[str, dict[str, Any]] = {}
    for seed in spec.seeds:
        for point in spec.points or [{}]:
            for combo in combos:
                config = copy.deepcopy(base)
                for table, values in (("set", spec.fixed), ("points", point), ("grid", combo)):
                    for key, value in values.items():
                        _set_dotted(config, key, value, where=f"{table}.{key}", path=spec.path)
                varied = {k: _get_dotted(config, k) for k in varied_keys}
                job_id = run_id_for(spec.name, varied, seed, labels=labels)
                if job_id in seen:
                    raise input_error(
                        f"two jobs get run id {job_id!r} ({seen[job_id]} and {varied})",
                        path=spec.path, field="points", expected="distinct points")
                seen[job_id] = varied
                config["seed"] = seed
                config["run_id"] = job_id
                group = None
                if spec.group_by:
                    group = "-".join(_fmt(_get_dotted(config, k)) for k in spec.group_by)
                jobs.append(Job(job_id, varied, seed, config, group=group))
    return jobs


def run_id_for(name: str, varied: dict[str, Any], seed: int, *,
               labels: dict[str, str] | None = None) -> str:
    """``<name>-<label>=<value>-...-s<seed>``; ids over 200 characters end in a hash instead."""
    labels = labels or _labels(list(varied))
    parts = [name, *(f"{labels[k]}={_fmt(v)}" for k, v in varied.items()), f"s{seed}"]
    run_id = "-".join(parts)
    if len(run_id) > _MAX_ID:
        digest = hashlib.sha1(run_id.encode()).hexdigest()[:12]
        run_id = f"{run_id[:_MAX_ID - 13]}-{digest}"
    return check_run_id(run_id)


def _labels(keys: list[str]) -> dict[str, str]:
    """Last component of each dotted key, or the whole key where the last component is shared."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e5:
            return str(int(value))
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, (list, tuple)):
        return "_".join(_fmt(v) for v in value)
    if value is None:
        return "none"
    return _UNSAFE.sub("_", str(value))


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def _flat_table(raw: dict[str, Any], key: str, path: Any) -> dict[str, Any]:
    table = raw.get(key, {})
    if not isinstance(table, dict):
        raise input_error(f"'{key}' is a {type(table).__name__}", path=path, field=key,
                          expected=f"a [{key}] table of key = value")
    return _flatten(table)


def _check_keys(fixed: dict[str, Any], grid: dict[str, Any], points: list[dict[str, Any]],
                path: Any) -> None:
    point_keys = {k for p in points for k in p}
    for key in [*fixed, *grid, *point_keys]:
        if key in _RESERVED:
            raise input_error(f"{key!r} cannot be set here", path=path, field=key,
                              expected="seeds = [...] for seeds; run ids are derived")
    for a, b, keys in (("set", "grid", set(fixed) & set(grid)),
                       ("set", "points", set(fixed) & point_keys),
                       ("grid", "points", set(grid) & point_keys)):
        if keys:
            raise input_error(f"{sorted(keys)} both in [{a}] and [{b}]", path=path,
                              field=sorted(keys)[0], expected="each key in one place")


def _base(value: Any, path: Any) -> tuple[dict[str, Any], str | None]:
    if value is None:
        return {}, None
    if isinstance(value, dict):
        return value, None
    if isinstance(value, str):
        base_path = Path(value)
        if not base_path.is_absolute() and path is not None:
            base_path = Path(path).parent / base_path
        if not base_path.is_file():
            raise input_error(f"base config {str(base_path)!r} does not exist", path=path,
                              field="base", expected="a path relative to the spec")
        return {}, str(base_path)
    raise input_error(f"base = {value!r}", path=path, field="base",
                      expected="a path to a config TOML, or a [base] table")


def load_plain_base(base_path: str) -> dict[str, Any]:
    """A base config TOML as a plain dict (for custom jobs; the RL adapter has its own loader)."""
    try:
        with open(base_path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise input_error(f"not valid TOML: {exc}", path=base_path) from None


def _get_dotted(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node


def _set_dotted(config: dict[str, Any], key: str, value: Any, *, where: str, path: Any) -> None:
    parts = key.split(".")
    node: Any = config
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            known = sorted(node) if isinstance(node, dict) else []
            raise input_error(f"{key!r} is not a setting of the base config", path=path,
                              field=where, expected=f"one of {known}" if known else "a known key")
        if i == len(parts) - 1:
            if isinstance(node[part], dict):
                raise input_error(f"{key!r} is a section, not a setting", path=path, field=where,
                                  expected=f"one of {sorted(node[part])}")
            node[part] = value
        else:
            node = node[part]


def _str(raw: dict[str, Any], key: str, default: str, path: Any) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise input_error(f"{key} = {value!r}", path=path, field=key, expected="a string")
    return value


def _number(raw: dict[str, Any], key: str, default: float, path: Any) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
        raise input_error(f"{key} = {value!r}", path=path, field=key,
                          expected="a non-negative finite number (from 0 to 1e9)")
    return float(value)
