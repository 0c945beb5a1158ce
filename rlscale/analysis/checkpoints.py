"""Find the models the analyses compare: a base and the RL policies trained from it.

A reference (``REF`` on the command line) is one of

- a run id in the store: as RL, its latest checkpoint ``<store>/_ckpt/<run_id>/ckpt.pt``
  (``policy`` state dict); as base, the pretrained base that run started from (looked up by
  the run's config in the shipped bases and the cache, see :mod:`rlscale.rl.pretrain`);
- a base directory holding ``model.pt`` and ``base.json`` (the cache's layout);
- a checkpoint file: a bare state dict, or a dict holding one under ``policy``/``model``/...;
  its job config comes from ``<store>/<run_id>/run.json`` when the file sits at
  ``<store>/_ckpt/<run_id>/``, else from a ``base.json`` beside it, else from ``config=``.

torch and rlscale.rl are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from rlscale.errors import InputError, input_error
from rlscale.rl.config import JobConfig
from rlscale.store import Store, layout

Role = Literal["base", "rl"]
# where a state dict may sit inside a checkpoint dict (rlscale RL checkpoints use "policy")
_STATE_KEYS: tuple[str, ...] = ("policy", "model", "state_dict", "model_state_dict", "model_state",
                                 "params")


class NoConfigError(InputError):
    """None of the references compared says which task and model it is (no job config)."""


@dataclass
class Resolved:
    """A model to analyse: its parameters, the job config to build and evaluate it, a label."""

    state: dict[str, Any]
    config: Any  # rlscale.rl.config.JobConfig, or None when nothing says how to build the model
    label: str
    source: str


def resolve(ref: str, *, role: Role, store: Store, config: Any = None) -> Resolved:
    """Turn ``ref`` (run id, base directory or checkpoint file) into a :class:`Resolved`.

    ``config`` (a JobConfig) is used when the reference itself carries none. Raises
    :class:`~rlscale.errors.InputError` when ``ref`` is none of the above.
    """
    path = Path(ref)
    if path.is_dir():
        return _base_dir(path, label=ref)
    if path.is_file():
        return _file(path, config=config, label=ref)
    if store.has_run(ref):
        return _run(ref, role=role, store=store)
    raise input_error(f"{role.upper()} is neither a file, a directory, nor a run in store "
                      f"{str(store.root)!r}", path=ref,
                      expected="a run id, a base directory (model.pt + base.json) or a .pt file")


def job_config(data: dict[str, Any], *, source: str) -> Any:
    """A JobConfig from a run's stored config or a base.json (task/model/pretrain sections)."""

    keep = {k: v for k, v in data.items() if k in ("task", "model", "pretrain", "rl", "eval",
                                                    "seed", "run_id", "device")}
    return JobConfig.from_stored(keep, source=source)


def _run(run_id: str, *, role: Role, store: Store) -> Resolved:
    meta = store.read_meta(run_id)
    if not meta.config:
        raise input_error(f"run {run_id!r} has no job config (it was ingested, not run by rlscale)",
                          path=store.run_dir(run_id) / "run.json", field="config",
                          expected="a run made by `rlscale run`, or a checkpoint file")
    config = job_config(meta.config, source=str(store.run_dir(run_id) / "run.json"))
    if role == "base":
        from rlscale.rl.pretrain import find_base

        found = find_base(config)
        if found is None:
            raise input_error(f"the base of run {run_id!r} is not in the shipped bases or the cache "
                              "($RLSCALE_CACHE)", field="BASE",
                              expected="a cached base (re-create it with `rlscale pretrain`) or a "
                                       "base directory")
        out = _base_dir(found, label=f"base of {run_id}")
        out.config = config  # evaluate with the run's task/eval settings
        return out

    ckpt = layout.checkpoint_file(store.root, run_id)
    if not ckpt.is_file():
        raise input_error("no checkpoint", path=ckpt, expected="a run that reached its first "
                          "evaluation (checkpoints are written at every evaluation)")
    return Resolved(_load(ckpt), config, run_id, str(ckpt))


def _base_dir(path: Path, *, label: str) -> Resolved:
    info_path, model_path = path / "base.json", path / "model.pt"
    if not (info_path.is_file() and model_path.is_file()):
        raise input_error("not a base directory", path=path,
                          expected="a directory holding model.pt and base.json")
    info = json.loads(info_path.read_text())
    return Resolved(_load(model_path), job_config(info, source=str(info_path)), label,
                    str(model_path))


def _file(path: Path, *, config: Any, label: str) -> Resolved:
    state = _load(path)
    found = config
    parent = path.resolve().parent
    if parent.parent.name == layout.CKPT_DIR:
        st = Store(parent.parent.parent)
        if st.has_run(parent.name) and st.read_meta(parent.name).config:
            found = job_config(st.read_meta(parent.name).config,
                               source=str(st.run_dir(parent.name) / "run.json"))
    elif (parent / "base.json").is_file():
        found = job_config(json.loads((parent / "base.json").read_text()),
                           source=str(parent / "base.json"))
    return Resolved(state, found, label, str(path))


def _load(path: Path) -> dict[str, Any]:

    return load_state_dict(path)


def build_model(resolved: Resolved, *, device: str = "cpu") -> Any:
    """The :class:`rlscale.rl.model.Transformer` for ``resolved``, weights loaded, on ``device``."""
    from rlscale.rl.model import Transformer

    if resolved.config is None:
        raise input_error("cannot tell which model this checkpoint holds", path=resolved.source,
                          expected="a run id, a base directory, or a checkpoint under "
                                   "<store>/_ckpt/<run_id>/")
    model = Transformer(resolved.config.model)
    try:
        model.load_state_dict(resolved.state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise input_error(f"weights do not fit model {resolved.config.model.name}: {first}",
                          path=resolved.source, expected="a checkpoint of that architecture") from exc
    return model.to(device).eval()


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Read a torch checkpoint file and return its parameter state dict (name -> tensor).

    Accepts a bare state dict, or a dict holding one under ``policy`` (rlscale RL checkpoints),
    ``model``, ``state_dict``, ``model_state_dict``, ``model_state`` or ``params``. Loads with
    ``weights_only=True`` (no arbitrary code from the file) onto the CPU.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise input_error("no such checkpoint file", path=path, expected="a torch .pt state dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable files
        raise input_error(f"cannot read as a torch checkpoint ({type(exc).__name__}: {exc})",
                          path=path, expected="a file written by torch.save") from exc
    return _find_state(obj, path=path)


def _find_state(obj: Any, *, path: Path) -> dict[str, Any]:
    if isinstance(obj, Mapping) and obj and all(hasattr(v, "shape") for v in obj.values()):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in _STATE_KEYS:
            if isinstance(obj.get(key), Mapping):
                return _find_state(obj[key], path=path)
    keys = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
    raise input_error(f"no state dict found (top level: {keys})", path=path,
                      expected=f"a dict of tensors, or one under {list(_STATE_KEYS)}")

