"""A model's parameter count where a run or file name states it: ``Qwen2.5-0.5B`` -> 5e8.

A size is a number followed by ``M`` or ``B`` (any case: ``70M``, ``14b``, ``1.5B``) that stands
on its own in the name: not glued to a digit, a dot or an ``x`` before it (the ``7B`` of an
``8x7B`` mixture is no size) and not followed by a letter or digit (``512bs`` is no size).
``K`` and ``T`` are left alone: ``resp-8k`` is a context length and ``2T`` usually pretraining
tokens. A name stating two different sizes (``7B-distilled-from-72B``) gives none: the user says
which with ``--set model_params=...``.
"""

from __future__ import annotations

import re
from typing import Iterable

_SIZE = re.compile(r"(?<![\d.xX])(\d+(?:\.\d+)?)([MmBb])(?![A-Za-z0-9])")
_UNIT = {"m": 1e6, "b": 1e9}


def parse_model_params(name: str) -> float | None:
    """The parameter count one name states, or None (no size, or two different ones)."""
    found = {float(num) * _UNIT[unit.lower()] for num, unit in _SIZE.findall(name)}
    return found.pop() if len(found) == 1 else None


def model_params_from(names: Iterable[tuple[str, str | None]]) -> tuple[float, str] | None:
    """The first ``(what, name)`` that states a size: ``(params, "from the what 'name'")``."""
    for what, name in names:
        if name:
            value = parse_model_params(name)
            if value is not None:
                return value, f"parsed from the {what} {name!r}"
    return None
