"""Model size from run and file names (``Qwen2.5-0.5B`` -> model_params=5e8), and --set."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.ingest.model_size import parse_model_params
from rlscale.store import Store


@pytest.mark.parametrize("name, params", [
    ("Qwen2.5-0.5B-bsz256_2-prompt1024-resp512-0.567.log", 5e8),   # real verl-data file name
    ("gemma-2-2b-it-ppo-bsz512_4-prompt1024-resp-512-0.640.log", 2e9),
    ("Qwen2.5-Math-1.5B", 1.5e9),
    ("llama-70M-grpo", 7e7),
    ("run_14b_seed0", 1.4e10),
    ("qwen14b", 1.4e10),
    ("Qwen3-30B-A3B", None),            # two sizes (total and active): ambiguous
    ("Mixtral-8x7B", None),             # a mixture's expert size is not its size
    ("qwen-7b-distilled-from-72b", None),
    ("resp-8k-bsz512", None),           # k is a context length, never a size
    ("pretrain-2T", None),              # T is usually tokens
    ("lr1e-5", None),
    ("512bs", None),
    ("grpo-run", None),
])
def test_parse_model_params(name, params):
    assert parse_model_params(name) == params


def _ingest(tmp_path, name, *extra):
    src = tmp_path / name
    src.write_text("step,reward\n0,0.1\n1,0.2\n2,0.3\n")
    out = CliRunner().invoke(main, ["ingest", str(src), "--store", str(tmp_path / "st"),
                                    *extra], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return out.output


def test_ingest_records_a_derived_model_size_and_set_overrides_it(tmp_path):
    _ingest(tmp_path, "grpo-14b.csv")
    meta = Store(tmp_path / "st").read_meta("grpo-14b")
    assert meta.metadata["model_params"] == 1.4e10
    assert meta.source["derived"]["model_params"] == "parsed from the run id 'grpo-14b'"
    assert "unchanged" in _ingest(tmp_path, "grpo-14b.csv")  # re-ingest: a no-op
    # a csv's run id stops at the first dot ("Qwen2"), so the size comes from the file name
    _ingest(tmp_path, "Qwen2.5-0.5B-grpo.csv")
    meta = Store(tmp_path / "st").read_meta("Qwen2")
    assert meta.metadata["model_params"] == 5e8
    assert meta.source["derived"]["model_params"] == ("parsed from the file name "
                                                      "'Qwen2.5-0.5B-grpo.csv'")
    _ingest(tmp_path, "qwen-7b.csv", "--set", "model_params=7.6e9", "--run-id", "q7")
    meta = Store(tmp_path / "st").read_meta("q7")
    assert meta.metadata["model_params"] == 7.6e9 and "derived" not in meta.source
    _ingest(tmp_path, "plain.csv")
    assert "model_params" not in Store(tmp_path / "st").read_meta("plain").metadata


def test_run_listing_shows_the_size(tmp_path):
    _ingest(tmp_path, "llama-70M.csv")
    out = CliRunner().invoke(main, ["show", "llama-70M", "--store", str(tmp_path / "st"),
                                    "--json"], catch_exceptions=False)
    assert json.loads(out.output)["meta"]["metadata"]["model_params"] == 7e7
