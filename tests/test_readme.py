"""The README's ingest -> fit -> forecast -> plot -> report commands run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rlscale.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _blocks_after(heading: str) -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [[ln for ln in b.splitlines() if ln.strip()] for b in blocks]


def _args(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    assert words[0] == "rlscale", line
    return words[1:]


def test_readme_pipeline_on_the_bundled_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLSCALE_STORE", raising=False)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    blocks = _blocks_after("## Your own logs")
    lines = [ln for b in blocks for ln in b]
    assert sum(ln.startswith("rlscale ingest") for ln in lines) >= 4
    assert any("tensorboard" in ln for ln in lines) and any("trainer_state" in ln for ln in lines)
    runner = CliRunner()
    for line in lines:
        res = runner.invoke(main, _args(line), catch_exceptions=False)
        assert res.exit_code == 0, f"{line}\n{res.output}"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize("heading", ["## RL jobs, sweeps and the pretraining question"])
def test_readme_rl_commands_name_real_options(heading):
    """Each RL-section command parses (options exist); --help stops before anything runs."""
    runner = CliRunner()
    for line in (ln for b in _blocks_after(heading) for ln in b):
        args = [a for a in _args(line) if a != "--dry-run"]
        cmd = args[0]
        # under rlscale's own context: without it click caches this command's help option as
        # plain --help (no -h), and docs/cli.md rendered later in the process would differ
        parent = click.Context(main, info_name="rlscale", **main.context_settings)
        sub = main.get_command(parent, cmd)  # loads the command's module (main is lazy)
        assert sub is not None, line
        ctx = sub.make_context(cmd, args[1:], parent=parent, resilient_parsing=False)
        assert ctx is not None
