"""The CSV reader's fast paths give exactly what the exact ones give: a quoted file parsed without
pyarrow's quote-tracking block split, a log that grows while it is parsed, a streamed snapshot,
run codes taken from the reader's dictionary, run tables built from buffers."""

from __future__ import annotations

import gzip
import hashlib
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rlscale.errors import InputError
from rlscale.ingest import readers
from rlscale.ingest.growing import snapshot
from rlscale.ingest.pipeline import ingest_paths, read_source
from rlscale.ingest.points import _strings
from rlscale.store import Store


def long_csv(notes: dict[int, str] | None = None, n: int = 60) -> str:
    """run_id,step,metric,value,note: 2 runs x n steps x 2 metrics, text quoted throughout (as
    pyarrow's CSV writer writes it); ``notes`` puts a quoted note (maybe multi-line) on rows."""
    rows = ['"run_id","step","metric","value","note"']
    k = 0
    for run in ("a", "b"):
        for step in range(n):
            for metric in ("loss", "reward"):
                note = (notes or {}).get(k, "-")
                rows.append(f'"{run}",{step},"{metric}",{(k * 7 % 13) / 13!r},"{note}"')
                k += 1
    return "\n".join(rows) + "\n"


@pytest.fixture
def parses(monkeypatch):
    """Each pyarrow parse's newlines_in_values, with 64-byte blocks so the files split often."""
    monkeypatch.setattr(readers, "BLOCK_SIZE", 64)
    seen: list[bool] = []
    real = readers.pacsv.read_csv

    def spy(source, **kw):
        seen.append(kw["parse_options"].newlines_in_values)
        return real(source, **kw)

    monkeypatch.setattr(readers.pacsv, "read_csv", spy)
    return seen


def points(path, **opts):
    return {meta.run_id: pts for meta, pts in read_source(path, run_col="run_id", **opts)}


@pytest.mark.parametrize("gz", [False, True])
def test_quoted_line_breaks_across_blocks_read_right(tmp_path, parses, gz):
    # with 64-byte blocks, a parse that does not track quotes reads this file wrong and
    # without an error: the line breaks it leaves in values make the reader parse it again
    text = long_csv({100: "\n\n", 126: "\n\n", 205: "two\nlines"})
    path = tmp_path / ("log.csv.gz" if gz else "log.csv")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    table, _ = readers.read_csv(path, string_cols=("run_id",))
    assert parses == [False, True]  # parsed again, tracking quotes
    want = pd.read_csv(io.StringIO(text), keep_default_na=False)
    got = table.to_pandas()
    for col in want.columns:
        assert [str(v) for v in got[col]] == [str(v) for v in want[col]], col
    assert {m.run_id: len(p) for m, p in read_source(path)} == {"a": 120, "b": 120}


def test_quoted_text_without_line_breaks_is_parsed_once_fast(tmp_path, parses):
    path = tmp_path / "log.csv"
    path.write_text(long_csv())
    got = points(path)
    assert parses == [False]
    assert sorted(got) == ["a", "b"] and all(len(p) == 120 for p in got.values())


def test_a_bad_quoted_file_is_still_an_error_naming_its_line(tmp_path, parses):
    text = long_csv({5: "x"}).replace('"reward",0.', '"reward",oops', 1)
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=r"bad.csv, line \d+, column 'value'"):
        points(path)


def test_a_log_that_grows_while_parsed_is_read_as_it_was(tmp_path, store_dir, monkeypatch):
    path = tmp_path / "log.csv"
    path.write_text("step,reward\n1,0.5\n2,0.6\n")
    before = path.read_bytes()
    real = readers.pacsv.read_csv
    grown = []

    def grow_then_parse(source, **kw):
        if not grown:  # the writer appends while pyarrow reads the file
            grown.append(1)
            with open(path, "a") as fh:
                fh.write("3,0.7\n")
        return real(source, **kw)

    monkeypatch.setattr(readers.pacsv, "read_csv", grow_then_parse)
    [res] = ingest_paths([path], store_dir)
    assert (res.status, res.n_points) == ("written", 2)
    source = Store(store_dir).read_meta(res.run_id).source
    assert source["sha256"] == hashlib.sha256(before).hexdigest()
    assert source["size"] == len(before)
    monkeypatch.setattr(readers.pacsv, "read_csv", real)
    [again] = ingest_paths([path], store_dir)
    assert (again.status, again.added) == ("appended", 1)


def test_snapshot_streams_only_its_bytes_and_hashes_them(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"step,reward\n" + b"".join(b"%d,0.5\n" % i for i in range(50_000)))
    first = path.read_bytes()
    snap = snapshot(path)
    with open(path, "ab") as fh:
        fh.write(b"50000,0.")  # grew after the snapshot, mid-line
    with snap.open() as fh:
        assert fh.read() == first
    assert snap.sha256() == hashlib.sha256(first).hexdigest()
    assert b"".join(bytes(c) for c in snap.chunks()) == first
    held = snapshot(path, hold=True)
    assert (held.size, held.held_line) == (len(first), 50_002)


def test_hexadecimal_in_a_gzipped_csv_is_an_error(tmp_path):
    path = tmp_path / "h.csv.gz"
    path.write_bytes(gzip.compress(b"step,reward\n0x1,0.5\n2,0.6\n"))
    with pytest.raises(InputError, match=r"h.csv.gz, line 2, column 'step': '0x1' is hexadecimal"):
        read_source(path)


def test_run_column_dictionary_with_unused_values(tmp_path):
    """A Parquet categorical may list run names no row uses; those never become runs, nor clash
    with a used name that sanitises alike."""
    cat = pd.Categorical(["a b"] * 4, categories=["a b", "a-b", "zz"])
    df = pd.DataFrame({"run_id": cat, "step": [0, 1, 0, 1], "metric": ["r", "r", "l", "l"],
                       "value": [0.1, 0.2, 0.3, 0.4]})
    path = tmp_path / "runs.parquet"
    df.to_parquet(path)
    got = read_source(path)
    assert [m.run_id for m, _ in got] == ["a-b"] and len(got[0][1]) == 4


@pytest.mark.parametrize("codes", [[], [0], [1, 1, 0, 0, 2], [2, 0, 1, 0, 2, 2]])
def test_run_table_text_columns(codes):
    names = ["loss", "réward/ü", ""]
    arr = _strings(names, np.array(codes, np.int32))
    arr.validate(full=True)
    assert arr.type == pa.string() and arr.to_pylist() == [names[c] for c in codes]
