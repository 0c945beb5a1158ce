"""The command line loads command modules lazily: the registry matches the commands, and
``--version``/``--help`` import no heavy library (checked in a fresh interpreter, not timed)."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import rlscale.cli
from rlscale.cli import REGISTRY, main
from rlscale.cli._common import LazyGroup
from rlscale.cli._docs import _walk

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "pandas", "lmfit", "pyarrow", "altair", "numpy", "torch")


def _modules_commands() -> dict[str, tuple[str, click.Command]]:
    """Every command of every public cli module: name -> (module, command)."""
    out: dict[str, tuple[str, click.Command]] = {}
    for info in pkgutil.iter_modules(rlscale.cli.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rlscale.cli.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            assert command.name not in out, f"{command.name!r} defined twice"
            out[command.name] = (info.name, command)
    return out


def test_registry_matches_every_modules_commands():
    commands = _modules_commands()
    assert sorted(REGISTRY) == sorted(commands), "REGISTRY and the modules' COMMANDS differ"
    for name, (module, command) in commands.items():
        entry = REGISTRY[name]
        assert entry.module == module, f"{name}: registry says {entry.module}, defined in {module}"
        assert entry.help == command.get_short_help_str(limit=10**6), (
            f"{name}: REGISTRY help differs from the command's first docstring sentence")
        for limit in (20, 45, 60, 80, 94):  # and shortens the same at any width
            stand_in = click.Command(name, help=entry.help)
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)
        ctx = click.Context(main, info_name="rlscale")
        assert main.get_command(ctx, name) is command


def _listing(group: click.Group, width: int) -> str:
    out = CliRunner().invoke(group, ["--help"], terminal_width=width)
    assert out.exit_code == 0, out.output
    return out.output.split("Commands:\n", 1)[1]


def test_help_lists_every_command_with_its_line():
    lines = _listing(main, 200).splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(REGISTRY)
    for line in lines:
        name, text = line.split(None, 1)
        assert text == REGISTRY[name].help
    # a group that has loaded nothing lists the same lines as one that has loaded everything
    unloaded = LazyGroup("rlscale", package="rlscale.cli", registry=REGISTRY)
    _walk(main, ["rlscale"])  # loads every command of main
    for width in (60, 80, 100, 200):
        assert _listing(unloaded, width) == _listing(main, width)
    assert unloaded.commands == {}


def test_unknown_command_and_library_errors_stay_one_line(tmp_path):
    res = CliRunner().invoke(main, ["nope"])
    assert res.exit_code == 2 and "No such command 'nope'" in res.output
    res = CliRunner().invoke(main, ["show", "nope", "--store", str(tmp_path / "s")])
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert "Traceback" not in res.output


def _imported(*args: str) -> list[str]:
    """Top-level packages of HEAVY in sys.modules after ``rlscale ARGS`` in a fresh interpreter."""
    code = ("import json, sys\n"
            "from rlscale.cli import main\n"
            "try:\n"
            f"    main({list(args)!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"heavy = {HEAVY!r}\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["-h"]])
def test_version_and_help_import_no_heavy_library(args):
    assert _imported(*args) == []


def test_runs_lists_a_store_with_pyarrow_alone(tmp_path):
    """`rlscale runs` reads run.json and points.parquet with pyarrow: no pandas (a second of
    start-up), and it never fits or draws."""
    from click.testing import CliRunner

    store = str(tmp_path / "store")
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.csv"))
    CliRunner().invoke(main, ["ingest", *examples, "--store", store], catch_exceptions=False)
    got = _imported("runs", "--store", store)
    assert not {"pandas", "scipy", "lmfit", "altair", "torch"} & set(got), got
    assert "pyarrow" in got  # it did read the points


NO_TORCH = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
sys.meta_path.insert(0, Block())
from rlscale.cli import main
main(sys.argv[1:], prog_name="rlscale")
"""


@pytest.mark.parametrize("args", [["run", "--set", "rl.steps=1", "--store", "s"], ["pretrain"],
                                  ["demo", "--quick", "--store", "s"]])
def test_a_command_that_needs_torch_says_which_extra_to_install(tmp_path, args):
    """Without torch: one line naming the extra and the pinned CPU wheel, exit 1, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RLSCALE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: rlscale {args[0]} needs torch") and "torch==2.13.0" in last
