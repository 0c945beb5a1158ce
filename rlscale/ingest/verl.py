"""verl logs: the console (stdout of ``python -m verl.trainer.main_ppo``) and the file logger.

Console: ANSI colour codes and Ray prefixes (``(TaskRunner pid=123)``, ``(main_task pid=9)``)
are dropped; a line that then reads ``step:N - key:value - key:value ...`` is one record at step
N, every key a metric. Every other line (config dumps, sample generations, warnings, the
"Initial/Final validation metrics" summaries) is skipped. A validation-only line at a step (verl
prints the val keys on their own line) merges with that step's training line; a key printed twice
at one step with two values is a duplicate-point error naming the line. Values may be written as
``0.41``, ``nan``, ``np.float64(0.41)`` or ``tensor(0.41, device='cuda:0')``.

File logger (``trainer.logger=['file']``): JSONL lines ``{"step": N, "data": {...}}``; nested
dicts in ``data`` are flattened with ``/``.

Both become a wide table (one record per line, ``step`` plus one column per key) that goes
through the table path, so ``--metric``, ``--step-col`` and the compute columns work as for CSV.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from rlscale.ingest.readers import records_to_table
from rlscale.ingest.source import Source

SUFFIXES = (".log", ".txt", ".out")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_RAY_PREFIX = re.compile(r"^\s*(?:\([^()\n]*\)\s*)+")
_STEP = re.compile(r"^step:(\d+)(?:\s+-\s+(.*?))?\s*$")
_STEP_START = re.compile(r"^step:\d+ - \S")
_WRAPPED = re.compile(r"^(?:(?:np|numpy)\.(?:float|int|uint)\d*|float|int|array|tensor)"
                      r"\(\s*([^,()]+?)\s*(?:,[^()]*(?:\([^()]*\))?[^()]*)?\)$")
_SNIFF_BYTES = 8 << 20


def clean(line: str) -> str:
    """A console line without colour codes and Ray's ``(Actor pid=N)`` prefixes."""
    return _RAY_PREFIX.sub("", _ANSI.sub("", line)).strip()


def is_console_log(path: Path) -> bool:
    """True if a line of the first few MB of ``path`` is a verl ``step:N - key:value`` line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            read = 0
            for line in fh:
                read += len(line)
                if "step:" in line and _STEP_START.match(clean(line)):
                    return True
                if read > _SNIFF_BYTES:
                    return False
    except OSError:
        return False
    return False


def is_file_logger(path: Path) -> bool:
    """True if the first record of a JSONL file is verl's ``{"step": N, "data": {...}}``."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    return (isinstance(rec, dict) and set(rec) == {"step", "data"}
                            and isinstance(rec["data"], dict))
    except (OSError, ValueError):
        return False
    return False


def parse_value(text: str) -> float | None:
    """``"0.41"``, ``"np.float64(0.41)"``, ``"tensor(0.41, device='cuda:0')"`` -> 0.41; None if not
    a number."""
    text = text.strip()
    m = _WRAPPED.match(text)
    if m:
        text = m.group(1)
    try:
        return float(text)
    except ValueError:
        return None


def read_verl(path: Path, *, fmt: str = "verl") -> tuple[pa.Table, Source]:
    """A verl console log or file-logger JSONL as a wide table, one record per step line."""
    lines: list[int] = []
    src = Source(path=path, format=fmt, locate=lambda row: (lines[row], None))
    if is_file_logger(path):
        records = _read_jsonl(path, src, lines)
    else:
        records = _read_console(path, src, lines)
    if not records:
        raise src.error("no step lines", expected="lines like 'step:12 - critic/score/mean:0.41 "
                        "- ...' (verl's console logger) or JSONL {\"step\": N, \"data\": {...}}")
    return records_to_table(records, src), src


def _read_console(path: Path, src: Source, lines: list[int]) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if "step:" not in line:
                continue
            text = clean(line)
            m = _STEP.match(text)
            if m is None or m.group(2) is None:  # prose, or "step:12" with nothing logged
                continue
            lines.append(number)
            rec: dict[str, Any] = {"step": int(m.group(1))}
            for piece in m.group(2).split(" - "):
                key, sep, raw = piece.partition(":")
                key = key.strip()
                if not sep or not key:
                    raise src.error(f"{piece.strip()[:40]!r} is not key:value", row=len(lines) - 1,
                                    field=key or None, expected="'step:N - key:value - ...' "
                                    "(a cut or garbled line?)")
                value = parse_value(raw)
                if value is None:
                    raise src.error(f"cannot parse {raw.strip()[:40]!r} as a number",
                                    row=len(lines) - 1, field=key, expected="a number")
                rec[key] = value
            records.append(rec)
    return records


def _read_jsonl(path: Path, src: Source, lines: list[int]) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            lines.append(number)
            row = len(lines) - 1
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise src.error(f"not valid JSON ({exc.msg} at column {exc.colno})", row=row,
                                expected='one {"step": N, "data": {...}} object per line') from None
            if not isinstance(rec, dict) or not isinstance(rec.get("data"), dict):
                raise src.error("no 'data' object", row=row, field="data",
                                expected='{"step": N, "data": {...}} (verl\'s file logger)')
            step = rec.get("step")
            if isinstance(step, bool) or not isinstance(step, (int, float)):
                raise src.error(f"step is {json.dumps(step)[:40]}", row=row, field="step",
                                expected="a non-negative integer")
            out: dict[str, Any] = {"step": step}
            _flatten(rec["data"], "", out)
            records.append(out)
    return records


def _flatten(data: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, name + "/", out)
        elif isinstance(value, str) and parse_value(value) is not None:
            out[name] = parse_value(value)  # "np.float64(0.3)" written as text
        else:
            out[name] = value
