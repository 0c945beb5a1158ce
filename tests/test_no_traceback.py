"""Bad inputs and a hostile environment through every command: one line starting "Error:", exit
code 1 or 2, never a traceback, and the store exactly as it was (issue 21, items 5 and 6)."""

from __future__ import annotations

import errno
import gzip
import json
import os
import struct
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rlscale.cli import main
from rlscale.cli._common import LibraryErrorGroup
from rlscale.ingest import compressed

GOOD = Path(__file__).resolve().parent / "fixtures" / "real-logs" / "wandb-history-primerl" / \
    "1y33h9zr_history_head.csv"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()} if root.exists() else {}


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def fails_in_one_line(store: Path, *args, env=None, contains=()) -> str:
    before = snapshot(store)
    res = invoke(*args, env=env)
    out = res.output
    assert res.exit_code in (1, 2), (res.exit_code, out, res.exception)
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), \
        repr(res.exception)
    assert "Traceback" not in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("Error: ") and sum(ln.startswith("Error") for ln in lines) == 1, out
    for text in contains:
        assert text in lines[-1], out
    assert snapshot(store) == before
    return lines[-1]


@pytest.fixture
def store(tmp_path):
    s = tmp_path / "store"
    res = invoke("ingest", GOOD, "--store", s)
    assert res.exit_code == 0, res.output
    return s


def _rec(payload: bytes) -> bytes:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    head = struct.pack("<Q", len(payload))
    return (head + struct.pack("<I", masked_crc32c(head)) + payload
            + struct.pack("<I", masked_crc32c(payload)))


def _bad_inputs(d: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """name -> (a bad log, what its error must say)."""
    out: dict[str, tuple[Path, tuple[str, ...]]] = {}

    def put(name, data, *says, sub=None):
        p = d / (sub or "") / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out[name] = (p.parent if sub else p, says)

    put("split.json", json.dumps({"columns": ["step", "r"], "data": [1, 2]}).encode(), "data[0]")
    put("split2.json", json.dumps({"columns": 3, "data": [[1, 2]]}).encode(), "'columns'")
    put("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply")
    put("deep.jsonl", b'{"step": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "deep.jsonl")
    put("header.csv", b"step,rew\xffard\n1,2\n", "line 1", "UTF-8")
    put("corrupt.csv.gz", gzip.compress(b"step,reward\n1,2\n")[:-8] + b"x" * 8, "gzip")
    put("short.csv.gz", gzip.compress(b"step,reward\n1,2\n" * 50)[:30], "truncated")
    big = pa.table({"step": pa.array([1, 2**63 + 5], pa.uint64()), "reward": [1.0, 2.0]})
    pq.write_table(big, d / "u64.parquet")
    out["u64.parquet"] = (d / "u64.parquet", ("row 2", "'step'", "too large"))
    raw = pa.array([b"ok", b"re\xffw"], pa.binary())
    text = pa.Array.from_buffers(pa.string(), 2, raw.buffers())
    pq.write_table(pa.table({"step": [1, 2], "metric": text, "value": [1.0, 2.0]}),
                   d / "utf8.parquet")
    out["utf8.parquet"] = (d / "utf8.parquet", ("row 2", "'metric'", "UTF-8"))
    put("events.out.tfevents.1.garbage", _rec(b"\xff" * 40), "record 1", sub="tb-garbage")
    head = struct.pack("<Q", 2**40)
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    put("events.out.tfevents.1.huge", head + struct.pack("<I", masked_crc32c(head)) + b"abc",
        "1099511627776 bytes", sub="tb-huge")
    loop = d / "loop"
    loop.mkdir()
    os.symlink("b.csv", loop / "a.csv")
    os.symlink("a.csv", loop / "b.csv")
    out["loop"] = (loop, ("symbolic links",))
    return out


def test_bad_logs_are_one_line_errors(store, tmp_path):
    for name, (path, says) in _bad_inputs(tmp_path / "bad").items():
        line = fails_in_one_line(store, "ingest", path, "--store", store, contains=says)
        assert str(path) in line or path.name in line, (name, line)


def test_string_tensor_in_the_scalars_plugin(store, tmp_path):
    np = pytest.importorskip("numpy")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.util import tensor_util

    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    events = [event_pb2.Event(wall_time=1.0, file_version="brain.Event:2")]
    for k, value in enumerate([np.array("hello"), np.array([1.0, 2.0])]):
        v = summary_pb2.Summary.Value(tag=f"t{k}", metadata=meta,
                                      tensor=tensor_util.make_tensor_proto(value))
        events.append(event_pb2.Event(wall_time=2.0 + k, step=k,
                                      summary=summary_pb2.Summary(value=[v])))
    run = tmp_path / "tb"
    run.mkdir()
    (run / "events.out.tfevents.1.x").write_bytes(b"".join(_rec(e.SerializeToString())
                                                           for e in events))
    fails_in_one_line(store, "ingest", run, "--store", store, contains=("'t0'", "string tensor"))


def test_a_decompression_bomb_stops_at_the_bound(store, tmp_path):
    bomb = _bomb(tmp_path)
    line = fails_in_one_line(store, "ingest", bomb, "--store", store,
                             env={compressed.ENV: "1M"}, contains=(str(bomb), "1 MiB"))
    assert compressed.ENV in line
    res = invoke("ingest", bomb, "--store", store, env={compressed.ENV: "8M"})
    assert res.exit_code == 0 and "200000 points" in res.output, res.output


def _bomb(tmp_path: Path) -> Path:
    bomb = tmp_path / "bomb.csv.gz"
    rows = "".join(f"{i},0.5\n" for i in range(200_000)).encode()  # 2.1 MB of rows
    bomb.write_bytes(gzip.compress(b"step,reward\n" + rows))
    return bomb


def test_max_expand_raises_the_bound(store, tmp_path, monkeypatch):
    """Beyond the default bound (made 1 MiB here, so the test reads megabytes, not 256 MiB):
    one line naming the file, the bound and --max-expand; with --max-expand 8M it ingests."""
    monkeypatch.setattr(compressed, "FLOOR", 1 << 20)
    monkeypatch.setattr(compressed, "RATIO", 1)
    bomb = _bomb(tmp_path)
    line = fails_in_one_line(store, "ingest", bomb, "--store", store,
                             contains=(str(bomb), "more than 1 MiB", "--max-expand"))
    assert "max(1x the compressed size, 1 MiB)" in line
    fails_in_one_line(store, "ingest", bomb, "--store", store, "--max-expand", "1500K",
                      contains=("more than 1500 KiB", "1500 KiB (--max-expand)"))
    fails_in_one_line(store, "ingest", bomb, "--store", store, "--max-expand", "lots",
                      contains=("--max-expand", "'lots' is not a size"))
    fails_in_one_line(store, "watch", bomb, "--store", store, "--max-expand", "1500K",
                      "--metric", "reward", "--max-updates", "1",
                      contains=(str(bomb), "1500 KiB (--max-expand)"))
    # the option wins over the variable, and is not an ingest option: the same run re-ingested
    # with another --max-expand is unchanged
    res = invoke("ingest", bomb, "--store", store, "--max-expand", "8M",
                 env={compressed.ENV: "1M"})
    assert res.exit_code == 0 and "200000 points" in res.output, res.output
    res = invoke("ingest", bomb, "--store", store, "--max-expand", "9M")
    assert res.exit_code == 0 and "unchanged" in res.output, res.output


def test_the_default_bound_is_100x_or_256_mib():
    assert compressed.max_expand(1 << 20) == 256 << 20  # a 1 MB file: 600 MB is refused
    assert compressed.max_expand(10 << 20) == 1000 << 20


def test_a_full_disk_and_a_read_only_store(store, tmp_path, monkeypatch):
    import rlscale.store.atomic as atomic

    other = tmp_path / "other.csv"
    other.write_bytes(GOOD.read_bytes().replace(b"\n", b"\n", 1))
    for code in (errno.ENOSPC, errno.EROFS):
        def no_room(*a, code=code, **k):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(atomic.pq, "write_table", no_room)
        fails_in_one_line(store, "ingest", other, "--store", store, "--run-id", "other",
                          contains=("points.parquet", os.strerror(code)))
        monkeypatch.undo()
    assert not any(".tmp" in p for p in snapshot(store))


def test_fit_save_with_a_300_char_metric(store, tmp_path):
    metric = "m" * 300
    log = tmp_path / "long.csv"
    log.write_text(f"step,{metric}\n" + "".join(f"{i},{0.1 * i}\n" for i in range(1, 9)))
    assert invoke("ingest", log, "--store", store).exit_code == 0
    fails_in_one_line(store, "fit", "--store", store, "--metric", metric, "--save",
                      "--law", "loglinear", "--bootstrap", "0",
                      contains=("File name too long",))


def test_a_sweep_spec_of_random_bytes(store, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_bytes(bytes(range(256))[::-1] * 2)
    fails_in_one_line(store, "sweep", spec, "--store", store, contains=(str(spec), "UTF-8"))


def test_any_unexpected_error_is_one_line_at_the_boundary():
    @click.group(cls=LibraryErrorGroup)
    def group():
        pass

    @group.command()
    def boom():
        raise KeyError("surprise")

    @group.command()
    def io():
        raise OSError(errno.EACCES, "Permission denied", "/some/file")

    res = CliRunner().invoke(group, ["boom"])
    assert res.exit_code == 1 and res.output.startswith("Error: rlscale boom: KeyError")
    res = CliRunner().invoke(group, ["io"])
    assert res.exit_code == 1 and res.output == "Error: rlscale io: /some/file: Permission denied\n"
