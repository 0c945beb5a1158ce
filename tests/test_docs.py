"""Every ``$ rlscale ...`` console block in docs/*.md runs and prints what the doc shows.

The convention (docs/writing-docs.md says the same for people writing docs):

* A **console block** is a fenced block (```` ``` ```` or ```` ```console ````, indented or not)
  whose first non-blank line starts with ``$ ``. Each ``$ `` line is a command (a line ending in
  ``\\`` continues on the next); the lines after it, up to the next ``$ `` line, are its expected
  output. Blank lines at the end of an output are ignored, and so is trailing white space.
* Each doc runs on its own, top to bottom, in a fresh scratch directory holding links to the
  repository's ``examples/`` and ``runs/``, with ``RLSCALE_STORE`` unset and ``RLSCALE_CACHE`` an
  empty directory. Later blocks see what earlier ones wrote.
* Commands: ``rlscale ...`` runs in-process (click's ``CliRunner``; stdout and stderr together);
  ``cat FILE`` shows FILE, and writes the shown lines to FILE if it does not exist yet (so a doc
  shows its own input files once); ``ls PATH`` lists PATH, or prints ls's "cannot access" line.
  Anything else (pipes, ``timeout``, ``python``) needs a skip marker. ``# comments`` are dropped.
* An ``rlscale`` command whose output shows a line starting with ``Error:`` must exit non-zero;
  any other must exit 0.
* ``...`` in an expected output matches anything: inside a line, any text on that line (times,
  dates, versions); on a line of its own, any number of lines (an excerpt). Nothing else is a
  placeholder, so every other digit shown is checked, except that a full-precision float (10 or
  more significant digits, as JSON prints them) matches any number within a relative 1e-7:
  BLAS and libm builds differ between machines in the last bits.
* ``<!-- docs-test: setup -->`` on the line before a ```` ```python ```` block runs that block
  (in the scratch directory) at that point of the doc: it builds the store the next commands use.
* ``<!-- docs-test: skip: REASON -->`` on the line before a console block leaves it out (it
  trains, needs a GPU or a skipped block, or takes more than a few seconds). Keep this the
  exception; the output shown must still be pasted from a real run.

``python tests/test_docs.py docs/fit.md`` prints every command of a doc's console blocks with the
output the current code gives; ``--write`` also pastes that output into the doc wherever it
differs, except under a ``...`` (those it names, for a person to redo).
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from rlscale.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^(\s*)```\s*([\w-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(skip|setup)\b(.*?)-->\s*$")


@dataclass
class Block:
    kind: str  # "console", "setup" or "skip"
    line: int  # 1-based line of the opening fence
    text: list[str]
    reason: str = ""
    indent: str = ""


@dataclass
class Command:
    line: int  # 1-based line of the ``$ `` line
    cmd: str
    end: int = 0  # its last line (continuations)
    expected: list[str] = field(default_factory=list)


def blocks(path: Path) -> list[Block]:
    """Console blocks and setup blocks of a doc, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, info = m.group(1), m.group(2)
        start = i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != indent + "```":
            j += 1
        raw = lines[i + 1 : j]
        body = [ln[len(indent) :] if ln.startswith(indent) else ln.lstrip() for ln in raw]
        i = j + 1
        prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        marker = MARKER.match(prev)
        kind, reason = (marker.group(1), marker.group(2).strip(" :")) if marker else ("", "")
        first = next((ln for ln in body if ln.strip()), "")
        if kind == "setup":
            assert info == "python", f"{path.name}:{start + 1}: a setup marker needs a python block"
            out.append(Block("setup", start + 1, body, indent=indent))
        elif first.startswith("$ "):
            if kind == "skip":
                assert reason, f"{path.name}:{start + 1}: say why the block is skipped"
                out.append(Block("skip", start + 1, body, reason, indent))
            else:
                out.append(Block("console", start + 1, body, indent=indent))
        elif kind:
            raise AssertionError(f"{path.name}:{start + 1}: a {kind} marker on a non-console block")
    return out


def commands(block: Block) -> list[Command]:
    cmds: list[Command] = []
    lines = iter(enumerate(block.text, start=block.line + 1))
    for n, ln in lines:
        if ln.startswith("$ "):
            cmd, end = ln[2:], n
            while cmd.endswith("\\"):
                end, more = next(lines)
                cmd = cmd[:-1] + more
            cmds.append(Command(n, cmd, end))
        else:
            cmds[-1].expected.append(ln)
    return cmds


def _normal(lines: list[str]) -> list[str]:
    lines = [ln.rstrip() for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# A number shown with this many significant digits or more is a full-precision float (JSON prints
# repr): BLAS and libm builds differ between machines in its last bits, so it matches any number
# within a relative FLOAT_RTOL of it. A number shown with fewer digits is checked exactly.
LONG_NUMBER = re.compile(r"-?(?:\d+\.\d+|\d+)(?:[eE][-+]?\d+)?")
LONG_DIGITS = 10
FLOAT_RTOL = 1e-7
_ANY_NUMBER = r"(-?(?:\d+\.\d+|\d+)(?:[eE][-+]?\d+)?)"


def _long(token: str) -> bool:
    mantissa = re.split(r"[eE]", token)[0]
    return len(mantissa.replace("-", "").replace(".", "").lstrip("0")) >= LONG_DIGITS


def _pattern(text: str, wanted: list[float]) -> str:
    out, at = [], 0
    for m in LONG_NUMBER.finditer(text):
        if _long(m.group()):
            out += [re.escape(text[at:m.start()]), _ANY_NUMBER]
            wanted.append(float(m.group()))
            at = m.end()
    return "".join(out) + re.escape(text[at:])


def matches(expected: list[str], actual: list[str]) -> bool:
    """``...`` on its own line = any lines; ``...`` inside a line = any text of that line; a
    full-precision number (:data:`LONG_DIGITS` significant digits) = any within FLOAT_RTOL."""
    parts: list[str] = []
    wanted: list[float] = []
    for ln in _normal(expected):
        if ln.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(_pattern(seg, wanted) for seg in ln.split("...")) + r"\n")
    m = re.fullmatch("".join(parts), "".join(a + "\n" for a in _normal(actual)))
    if m is None:
        return False
    return all(abs(float(got) - want) <= FLOAT_RTOL * max(abs(want), 1e-300)
               for got, want in zip(m.groups(), wanted))


def run(cmd: str, runner: CliRunner) -> tuple[int | None, list[str]]:
    """Run one doc command in the current directory: (exit status, output lines).

    The exit status is ``rlscale``'s; ``cat`` and ``ls`` give None (not checked)."""
    words = shlex.split(cmd, comments=True)
    if words[0] == "rlscale":
        res = runner.invoke(main, words[1:], prog_name="rlscale", catch_exceptions=False)
        return res.exit_code, res.output.splitlines()
    if words[0] == "ls" and len(words) == 2:
        p = Path(words[1])
        if not p.exists():
            return None, [f"ls: cannot access '{words[1]}': No such file or directory"]
        return None, sorted(x.name for x in p.iterdir()) if p.is_dir() else [words[1]]
    if words[0] == "cat" and len(words) == 2:
        return None, Path(words[1]).read_text(encoding="utf-8").splitlines()
    raise AssertionError(f"cannot run {cmd!r} here: use rlscale, cat or ls, or skip the block")


def run_doc(path: Path, tmp: Path, report) -> None:
    """Run a doc's setup and console blocks in ``tmp`` (the cwd); ``report(command, rc, out)``."""
    (tmp / "examples").symlink_to(ROOT / "examples")
    (tmp / "runs").symlink_to(ROOT / "runs")
    (tmp / "cache").mkdir()
    runner = CliRunner(env={"RLSCALE_STORE": None, "RLSCALE_CACHE": str(tmp / "cache")})
    for block in blocks(path):
        if block.kind == "setup":
            code = compile("\n".join(block.text), f"{path.name}:{block.line}", "exec")
            exec(code, {"__name__": "__docs__"})
        elif block.kind == "console":
            for c in commands(block):
                words = shlex.split(c.cmd, comments=True)
                if words[:1] == ["cat"] and not Path(words[1]).exists():
                    Path(words[1]).write_text("\n".join(_normal(c.expected)) + "\n")
                rc, out = run(c.cmd, runner)
                report(c, rc, out)


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_doc_console_blocks_print_what_they_show(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLSCALE_STORE", raising=False)
    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path / "cache"))
    problems: list[str] = []

    def check(c: Command, rc: int | None, out: list[str]) -> None:
        where = f"docs/{doc.name}:{c.line}: $ {c.cmd}"
        fails = any(ln.startswith("Error:") for ln in c.expected)
        if rc is not None and (rc != 0) != fails:
            problems.append(f"{where}\nexit status {rc}\n" + "\n".join(out))
        elif not matches(c.expected, out):
            diff = difflib.unified_diff(
                _normal(c.expected), _normal(out), "doc", "now", lineterm=""
            )
            problems.append(f"{where}\n" + "\n".join(diff))

    run_doc(doc, tmp_path, check)
    assert not problems, "\n\n".join(problems)


def test_the_convention_holds_in_every_doc():
    """Every doc's console blocks parse, and the matcher does what the docstring says."""
    for doc in DOCS:
        for block in blocks(doc):
            if block.kind == "console":
                for c in commands(block):
                    assert shlex.split(c.cmd, comments=True), f"{doc.name}:{c.line}"
    assert matches(["a 1.5 ... s", "b"], ["a 1.5 in 3.2 s", "b  "])
    assert not matches(["a 1.5 ... s"], ["a 1.6 in 3.2 s"])
    assert matches(["x", "...", "z"], ["x", "y1", "y2", "z"])
    assert matches(["x", "...", "z"], ["x", "z"])
    assert not matches(["x", "...", "z"], ["x", "y", "z", "w"])
    assert not matches(["a ... b"], ["a 1", "2 b"])
    # full-precision floats match to a relative 1e-7; short numbers exactly
    assert matches(['"A": 0.9999997360214412,'], ['"A": 0.9999997360271926,'])
    assert not matches(['"A": 0.9999997360214412,'], ['"A": 0.9999987360214412,'])
    assert not matches(["A 0.93"], ["A 0.94"])
    assert matches(["x 12158.810288267161 ... y"], ["x 12158.810290801339 in 3 s y"])


def rewrite(path: Path, runs: list[tuple[Block, Command, list[str]]]) -> list[Command]:
    """Paste today's output under each command whose doc output differs and has no ``...``.

    Returns the commands that differ but hold a ``...``: those need a person."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    manual = []
    for block, c, out in reversed(runs):
        if matches(c.expected, out):
            continue
        if any("..." in ln for ln in c.expected):
            manual.append(c)
            continue
        blank = len(c.expected) - len(_normal(c.expected))
        new = [(block.indent + ln).rstrip() + "\n" for ln in _normal(out)] + ["\n"] * blank
        lines[c.end : c.end + len(c.expected)] = new
    path.write_text("".join(lines), encoding="utf-8")
    return manual[::-1]


if __name__ == "__main__":
    # python tests/test_docs.py [--write] docs/X.md...: print each console block's commands with
    # today's output; --write also pastes it into the doc where it differs (not under a "...")
    import tempfile

    write = "--write" in sys.argv
    os.environ.pop("RLSCALE_STORE", None)
    for doc in [Path(a).resolve() for a in sys.argv[1:] if a != "--write"]:
        by_line = {c.line: b for b in blocks(doc) if b.kind == "console" for c in commands(b)}
        runs: list[tuple[Block, Command, list[str]]] = []
        with tempfile.TemporaryDirectory() as d:
            os.chdir(d)
            os.environ["RLSCALE_CACHE"] = str(Path(d) / "cache")
            print(f"==> {doc.name}")

            def show(c: Command, rc: int | None, out: list[str]) -> None:
                same = "same" if matches(c.expected, out) else "DIFFERS"
                print(f"[line {c.line}, exit {rc}, {same}]\n$ {c.cmd}", *out, sep="\n")
                runs.append((by_line[c.line], c, out))

            run_doc(doc, Path(d), show)
        if write:
            for c in rewrite(doc, runs):
                print(f"!! docs/{doc.name}:{c.line}: differs under a '...', redo by hand: {c.cmd}")
