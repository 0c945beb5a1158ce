"""Every command has help with an example, and docs/cli.md is current."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.cli._docs import _walk, render

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_and_option_has_help():
    for path, cmd in _walk(main, ["rlscale"]):
        assert cmd.help, f"{' '.join(path)} has no docstring"
        if path != ["rlscale"] and not isinstance(cmd, click.Group):
            assert "Example" in cmd.help, f"{' '.join(path)}: docstring has no example"
        for param in cmd.params:
            if isinstance(param, click.Option) and param.name not in ("help", "version"):
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help="
        result = CliRunner().invoke(main, [*path[1:], "--help"])
        assert result.exit_code == 0, result.output


def test_cli_reference_is_current():
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/cli.md is stale: python -m rlscale.cli._docs > docs/cli.md"
