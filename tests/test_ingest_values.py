"""Values out of range, misleading messages and odd input that was accepted (issue 21, items 2, 7
and 8): each is a one-line error naming the file, the line or row and the column, through the
CLI, with no traceback and the store byte-identical."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rlscale.cli import main


def snapshot(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    good = tmp_path / "good.csv"
    good.write_text("step,reward\n1,0.5\n2,0.6\n")
    assert CliRunner().invoke(main, ["ingest", str(good), "--store", str(root)]).exit_code == 0
    return root


def fails(store: Path, path: Path, *words: str) -> str:
    """Ingest ``path``: it must fail with one line holding the file name and ``words``."""
    before = snapshot(store)
    res = CliRunner().invoke(main, ["ingest", str(path), "--store", str(store)])
    out = res.output.strip()
    assert res.exit_code != 0, out
    assert "Traceback" not in out and not isinstance(res.exception, (AssertionError, TypeError))
    assert len(out.splitlines()) == 1 and out.startswith("Error: "), out
    assert str(path) in out, out
    for w in words:
        assert w in out, out
    assert snapshot(store) == before
    return out


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


# -- 2. values that overflow ------------------------------------------------------------------

@pytest.mark.parametrize("name,text,where", [
    ("t.csv", "step,reward,tokens\n1,0.5,100\n2,0.6,1e30\n", "line 3"),
    ("t.jsonl", '{"step":1,"reward":0.5,"tokens":100}\n{"step":2,"reward":0.6,"tokens":1e30}\n',
     "line 2"),
])
def test_token_count_past_int64_is_an_error_not_a_negative_count(tmp_path, store, name, text, where):
    out = fails(store, write(tmp_path, name, text), where, "column 'tokens'", "1e+30",
                "9223372036854775807")
    assert "too large" in out


def test_parquet_token_count_past_int64(tmp_path, store):
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"step": [1, 2], "reward": [0.5, 0.6], "tokens": [100.0, 1e30]}), p)
    fails(store, p, "row 2", "column 'tokens'", "too large")


def test_parquet_uint64_step_past_int64(tmp_path, store):
    p = tmp_path / "u.parquet"
    pq.write_table(pa.table({"step": pa.array([1, 2**63 + 5], pa.uint64()), "reward": [0.5, 0.6]}), p)
    fails(store, p, "row 2", "column 'step'", str(2**63 + 5), "too large")


@pytest.mark.parametrize("name,text,where", [
    ("big.jsonl", '{"step":1,"reward":0.5}\n{"step":2,"reward":1' + "0" * 400 + "}\n", "line 2"),
    ("big.json", '[{"step":1,"reward":0.5},{"step":1' + "0" * 400 + ',"reward":0.6}]', "record 2"),
])
def test_integer_too_large_for_a_float_is_an_error(tmp_path, store, name, text, where):
    fails(store, write(tmp_path, name, text), where, "401 digits", "too large")


def test_json_step_past_int64_names_the_range(tmp_path, store):
    p = write(tmp_path, "s.jsonl", '{"step":1,"reward":0.5}\n{"step":%d,"reward":0.6}\n' % 2**64)
    fails(store, p, "line 2", "column 'step'", "up to 9223372036854775807")


# -- 7. misleading messages --------------------------------------------------------------------

def test_bad_byte_is_reported_on_its_own_line_and_column(tmp_path, store):
    p = write(tmp_path, "b.csv", b"step,reward\n1,0.5\n2,0.6\n3,\xff\n")
    fails(store, p, "line 4", "column 'reward'", "0xff", "UTF-8")


def test_long_header_field_is_not_no_header_line(tmp_path, store):
    p = write(tmp_path, "h.csv", "step," + "r" * 200_000 + "\n1,0.5\n")
    before = snapshot(store)
    res = CliRunner().invoke(main, ["ingest", str(p), "--store", str(store)])
    assert res.exit_code == 0 and "no header line" not in res.output, res.output
    assert snapshot(store) != before


def test_nan_step_is_called_nan_not_an_empty_cell(tmp_path, store):
    out = fails(store, write(tmp_path, "n.csv", "step,reward\n1,0.4\nnan,0.5\n"), "line 3",
                "column 'step'", "bad step nan")
    assert "empty" not in out


@pytest.mark.parametrize("name,text", [
    ("u.csv", "step,reward\n1,0.5\n"), ("u.jsonl", '{"step":1,"reward":0.5}\n'),
    ("u.json", '[{"step":1,"reward":0.5}]'),
])
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le"])
def test_utf16_files_say_utf16(tmp_path, store, name, text, codec):
    fails(store, write(tmp_path, name, text.encode(codec)), "UTF-16", "save it as UTF-8")


def test_parquet_error_is_one_line(tmp_path, store):
    # a damaged page header: pyarrow's message has several lines ("Couldn't deserialize thrift:
    # ...\nDeserializing page header failed.\n"); the error shows the first
    p = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"step": list(range(1000)), "reward": [0.5] * 1000}), p)
    data = bytearray(p.read_bytes())
    data[4] ^= 0xFF
    p.write_bytes(bytes(data))
    out = fails(store, p, "cannot read as Parquet", "deserialize thrift")
    assert "page header failed" not in out


def test_resume_of_an_ingested_run_names_that_run(store):
    res = CliRunner().invoke(main, ["run", "--resume", "good", "--store", str(store)])
    out = res.output.strip()
    assert res.exit_code != 0 and len(out.splitlines()) == 1, out
    assert "'good' is an ingested run" in out and "not an RL run" in out
    assert "rl-grpo" not in out


# -- 8. odd input that was silently accepted --------------------------------------------------

def test_hexadecimal_step_is_an_error(tmp_path, store):
    fails(store, write(tmp_path, "x.csv", "step,reward\n1,0.4\n0x2,0.5\n"), "line 3",
          "column 'step'", "'0x2' is hexadecimal")


def test_trailing_comma_in_header_makes_no_metric_named_empty(tmp_path, store):
    p = write(tmp_path, "c.csv", "step,reward,\n1,0.5,0.3\n2,0.6,0.4\n")
    fails(store, p, "line 2", "column 3 has no name")


def test_trailing_comma_on_every_line_is_harmless(tmp_path, store):
    p = write(tmp_path, "c.csv", "step,reward,\n1,0.5,\n2,0.6,\n")
    res = CliRunner().invoke(main, ["ingest", str(p), "--store", str(store)])
    assert res.exit_code == 0 and "metrics reward" in res.output, res.output


def test_jsonl_invalid_utf8_key_is_rejected_like_csv_and_json(tmp_path, store):
    p = write(tmp_path, "k.jsonl", b'{"step":1,"reward":0.5}\n{"step":2,"rew\xffard":0.5}\n')
    fails(store, p, "line 2", "0xff", "not UTF-8")


def test_jsonl_string_step_is_an_error(tmp_path, store):
    p = write(tmp_path, "s.jsonl", '{"step":"1","reward":0.5}\n{"step":"2","reward":0.6}\n')
    fails(store, p, "line 1", "column 'step'", "is a string")


def test_short_split_json_row_is_an_error(tmp_path, store):
    p = write(tmp_path, "s.json", '{"columns":["step","reward","loss"],"data":[[1,0.5,0.1],[2,0.6]]}')
    fails(store, p, "data[1]", "2 values, not 3")
