"""Logs that are still growing: re-ingest appends, a changed old point is an error, a half-written
last line is never lost or doubled, and `rlscale watch` polls a log a writer appends to.

The log is a real curve written in steps, as a training job writes it: the held-out answer
accuracy of a GRPO run (tests/fixtures/growing/SOURCE.txt), as CSV and as JSONL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import rlscale.cli.watch as watch_cli
from rlscale.cli import main
from rlscale.errors import InputError
from rlscale.ingest.pipeline import ingest_paths, read_source
from rlscale.ingest.watch import poll_logs
from rlscale.store import Store
from rlscale.store import runs as store_runs

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "growing" / "no_baseline_eval.csv"
ROWS = pd.read_csv(FIXTURE)  # step, answer_accuracy: 41 points
METRIC = "answer_accuracy"


def lines(fmt, rows):
    """The log lines (with their newlines) of ``rows`` in format ``fmt``."""
    if fmt == "csv":
        return [f"{int(s)},{v!r}\n" for s, v in zip(rows["step"], rows[METRIC])]
    return [json.dumps({"step": int(s), METRIC: float(v)}) + "\n"
            for s, v in zip(rows["step"], rows[METRIC])]


def start(path, fmt):
    path.write_text("step,answer_accuracy\n" if fmt == "csv" else "")


def append(path, text):
    with open(path, "a") as fh:
        fh.write(text)


def stored(store, run_id):
    df = Store(store).read_points(runs=[run_id])
    return df[["metric", "step", "value"]].sort_values(["metric", "step"]).reset_index(drop=True)


def from_file(path):
    [(_, pts)] = read_source(path)
    return pts[["metric", "step", "value"]].sort_values(["metric", "step"]).reset_index(drop=True)


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_log_ingested_as_it_grows_holds_each_point_once(tmp_path, store_dir, fmt):
    log = tmp_path / f"run.{fmt}"
    start(log, fmt)
    text = lines(fmt, ROWS)
    statuses, added = [], []
    for lo, hi in [(0, 10), (10, 25), (25, 41)]:
        append(log, "".join(text[lo:hi]))
        [res] = ingest_paths([log], store_dir)
        statuses.append(res.status)
        added.append(res.added)
        assert res.n_points == hi
        pts = stored(store_dir, "run")
        pd.testing.assert_frame_equal(pts, from_file(log))
        assert not pts.duplicated(["metric", "step"]).any()
        src = Store(store_dir).read_meta("run").source
        assert src["sha256"] == hashlib.sha256(log.read_bytes()).hexdigest()
        assert src["size"] == log.stat().st_size
    assert statuses == ["written", "appended", "appended"]
    assert added == [None, 15, 16]
    assert stored(store_dir, "run")["value"].tolist() == ROWS[METRIC].tolist()
    assert run("ingest", log, "--store", store_dir).startswith("unchanged")
    assert not [p for p in store_dir.iterdir() if p.name.startswith(".")]


def test_cli_says_the_log_grew(tmp_path, store_dir):
    log = tmp_path / "run.csv"
    start(log, "csv")
    append(log, "".join(lines("csv", ROWS[:5])))
    run("ingest", log, "--store", store_dir)
    append(log, "".join(lines("csv", ROWS[5:8])))
    out = run("ingest", log, "--store", store_dir)
    assert out == (f"appended (the log grew): run <- {log} [csv] 8 points (+3 new), "
                   "metrics answer_accuracy\n")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: text.replace("0.142578125", "0.15"),  # step 5's value changed
     "line 3, column 'answer_accuracy': value 0.15 of metric 'answer_accuracy' at step 5 "
     "differs from 0.142578125 stored for run 'run'"),
    (lambda text: "".join(text.splitlines(keepends=True)[:-1]),  # the last point vanished
     "column 'step': step 20 of metric 'answer_accuracy', stored for run 'run', is no longer in "
     "the log"),
])
def test_changed_old_point_is_one_line_error_and_store_unchanged(tmp_path, store_dir, edit,
                                                                 message):
    log = tmp_path / "run.csv"
    start(log, "csv")
    append(log, "".join(lines("csv", ROWS[:5])))
    run("ingest", log, "--store", store_dir)
    before = snapshot(store_dir)
    log.write_text(edit(log.read_text()) + "".join(lines("csv", ROWS[5:7])))
    out = run("ingest", log, "--store", store_dir, code=1)
    assert out == (f"Error: {log}, {message} (expected a log that only grew since it was ingested "
                   "(its old points unchanged); pass --replace to overwrite the run)\n")
    assert snapshot(store_dir) == before
    assert run("ingest", log, "--store", store_dir, "--replace").startswith("replaced: run")


@pytest.mark.parametrize(("fmt", "cut"), [("csv", "50"), ("csv", "50,"), ("jsonl", 20)])
def test_half_written_last_line_that_does_not_read_waits_for_its_end(tmp_path, store_dir, fmt,
                                                                      cut):
    log = tmp_path / f"run.{fmt}"
    start(log, fmt)
    text = lines(fmt, ROWS[:11])
    head, last = "".join(text[:10]), text[10]
    part = cut if isinstance(cut, str) else last[:cut]
    assert last.startswith(part)
    append(log, head + part)
    [res] = ingest_paths([log], store_dir)
    held = 12 if fmt == "csv" else 11
    if cut == "50,":  # reads: a step whose cell is empty, so no point yet
        assert res.held_line is None and res.n_points == 10
    else:
        assert res.held_line == held and res.n_points == 10
    assert stored(store_dir, "run")["step"].tolist() == ROWS["step"][:10].tolist()
    append(log, last[len(part):])
    [res] = ingest_paths([log], store_dir)
    assert (res.status, res.added, res.held_line) == ("appended", 1, None)
    pd.testing.assert_frame_equal(stored(store_dir, "run"), from_file(log))
    assert stored(store_dir, "run")["value"].tolist() == ROWS[METRIC][:11].tolist()


def test_half_written_number_that_reads_is_completed_later(tmp_path, store_dir):
    log = tmp_path / "run.csv"
    start(log, "csv")
    text = lines("csv", ROWS[:11])
    assert text[10] == "50,0.2216796875\n"
    append(log, "".join(text[:10]) + "50,0.22")  # the writer is mid-number
    [res] = ingest_paths([log], store_dir)
    assert res.n_points == 11 and stored(store_dir, "run")["value"].iloc[-1] == 0.22
    append(log, text[10][7:])
    [res] = ingest_paths([log], store_dir)
    assert (res.status, res.added) == ("appended", 0)
    assert stored(store_dir, "run")["value"].tolist() == ROWS[METRIC][:11].tolist()
    # held back while watched: the same cut line is not read at all
    log2 = tmp_path / "run2.csv"
    log2.write_text("step,answer_accuracy\n" + "".join(text[:10]) + "50,0.22")
    [res] = ingest_paths([log2], store_dir, hold_last_line=True)
    assert (res.n_points, res.held_line) == (10, 12)


def test_crash_mid_append_keeps_the_previous_run_and_the_next_ingest_repairs(
        tmp_path, store_dir, monkeypatch):
    log = tmp_path / "run.csv"
    start(log, "csv")
    append(log, "".join(lines("csv", ROWS[:5])))
    ingest_paths([log], store_dir)
    before = snapshot(store_dir)
    append(log, "".join(lines("csv", ROWS[5:9])))

    real_parquet, real_json = store_runs.write_parquet, store_runs.write_json

    def parquet_dies(path, table, **kw):  # the disk fills while the points are written
        path.with_name(f".{path.name}.part.tmp").write_bytes(b"PAR1 half")
        raise OSError("No space left on device")

    monkeypatch.setattr(store_runs, "write_parquet", parquet_dies)
    with pytest.raises(OSError):
        ingest_paths([log], store_dir)
    assert {k: v for k, v in snapshot(store_dir).items() if ".part." not in k} == before

    def json_dies(path, data, **kw):  # killed between the points and run.json
        raise OSError("killed")

    monkeypatch.setattr(store_runs, "write_parquet", real_parquet)
    monkeypatch.setattr(store_runs, "write_json", json_dies)
    with pytest.raises(OSError):
        ingest_paths([log], store_dir)
    assert len(stored(store_dir, "run")) == 9  # new points under the old run.json
    monkeypatch.setattr(store_runs, "write_json", real_json)
    [res] = ingest_paths([log], store_dir)
    assert (res.status, res.added) == ("appended", 0)
    pd.testing.assert_frame_equal(stored(store_dir, "run"), from_file(log))
    assert Store(store_dir).read_meta("run").source["size"] == log.stat().st_size


def test_poll_logs_yields_only_when_points_arrive(tmp_path, store_dir):
    log = tmp_path / "run.jsonl"
    text = lines("jsonl", ROWS)
    log.write_text("".join(text[:5]))
    steps = iter([lambda: None,  # nothing new: no update
                  lambda: append(log, text[5] + text[6][:9]),  # one line and a half
                  lambda: None,
                  lambda: append(log, text[6][9:])])  # the half completed

    def sleep(seconds):
        assert seconds == 0.5
        next(steps)()

    polls = poll_logs([log], store_dir, interval=0.5, sleep=sleep)
    got = [[(r.status, r.n_points, r.added, r.held_line) for r in next(polls)] for _ in range(3)]
    polls.close()
    assert got == [[("written", 5, None, None)], [("appended", 6, 1, 7)],
                   [("appended", 7, 1, None)]]
    pd.testing.assert_frame_equal(stored(store_dir, "run"), from_file(log))


def test_watch_prints_updates_as_a_writer_appends(tmp_path, store_dir, monkeypatch):
    log = tmp_path / "run.csv"
    text = lines("csv", ROWS)
    log.write_text("step,answer_accuracy\n" + "".join(text[:15]))
    chunks = iter(["".join(text[15:25]) + text[25][:2], text[25][2:] + "".join(text[26:41])])
    monkeypatch.setattr(watch_cli, "_sleep", lambda s: append(log, next(chunks, "")))
    out = run("watch", log, "--store", store_dir, "--metric", METRIC, "--budget", "400",
              "--interval", "0", "--max-updates", "3")
    ups = out.splitlines()
    assert ups[0] == "update 1: run: 15 answer_accuracy points, 15 in all (+15 new)"
    assert ups[3] == ("update 2: run: 25 answer_accuracy points, 25 in all (+10 new); "
                      f"incomplete, held back: {log} line 27")
    assert "update 3: run: 41 answer_accuracy points, 41 in all (+16 new)" in ups
    fit_lines = [ln for ln in ups if ln.startswith("  run_id=run: sigmoid fit on ")]
    assert len(fit_lines) == 3 and all(" A=" in ln and " C_mid=" in ln for ln in fit_lines)
    verdicts = [ln for ln in ups if ln.startswith("    at step=400: ")]
    assert len(verdicts) == 3
    assert all(ln.endswith((": still rising", ": plateaued", ": declining", ": uncertain"))
               for ln in verdicts)
    assert ups[-1] == "stopped after 3 updates (--max-updates)"
    pd.testing.assert_frame_equal(stored(store_dir, "run"), from_file(log))
    assert stored(store_dir, "run")["value"].tolist() == ROWS[METRIC].tolist()


def test_watch_ctrl_c_ends_cleanly(tmp_path, store_dir, monkeypatch):
    log = tmp_path / "run.csv"
    log.write_text("step,answer_accuracy\n" + "".join(lines("csv", ROWS[:3])))

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(watch_cli, "_sleep", interrupt)
    out = run("watch", log, "--store", store_dir, "--metric", METRIC)
    assert out.splitlines()[0] == "update 1: run: 3 answer_accuracy points, 3 in all (+3 new)"
    assert out.splitlines()[-1] == "stopped (interrupted) after 1 update"
    assert "Traceback" not in out


def test_watch_bad_line_is_one_line_error(tmp_path, store_dir, monkeypatch):
    log = tmp_path / "run.csv"
    log.write_text("step,answer_accuracy\n" + "".join(lines("csv", ROWS[:3])))
    monkeypatch.setattr(watch_cli, "_sleep", lambda s: append(log, "20,oops\n"))
    out = run("watch", log, "--store", store_dir, "--metric", METRIC, "--interval", "0", code=1)
    assert out.splitlines()[-1] == (f"Error: {log}, line 5, column 'answer_accuracy': cannot "
                                    "parse 'oops' as a number (expected a number)")
    assert len(stored(store_dir, "run")) == 3


def test_a_different_file_under_the_same_run_id_is_still_a_conflict(tmp_path, store_dir):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("step,answer_accuracy\n" + "".join(lines("csv", ROWS[:3])))
    b.write_text("step,answer_accuracy\n" + "".join(lines("csv", ROWS[:5])))
    run("ingest", a, "--store", store_dir, "--run-id", "r")
    with pytest.raises(Exception, match="already exists"):
        ingest_paths([b], store_dir, run_id="r")
    with pytest.raises(InputError):
        ingest_paths([tmp_path / "missing.csv"], store_dir)


def test_watch_a_gzipped_log(tmp_path, store_dir, monkeypatch):
    """A .csv.gz log that its writer appends gzip members to (``gzip.open(path, "ab")``, one
    member per flush) is watched like a plain one; a member still being written (a truncated
    gzip stream) stops watch with one line naming the file, the store as the last poll left it."""
    import gzip

    log = tmp_path / "run.csv.gz"
    text = lines("csv", ROWS)
    with gzip.open(log, "wt") as fh:
        fh.write("step,answer_accuracy\n" + "".join(text[:15]))

    def member(rows):
        def write():
            with gzip.open(log, "at") as fh:
                fh.write("".join(rows))
        return write

    def half_member():  # a writer mid-member: header and some deflate data, no trailer
        data = gzip.compress("".join(text[30:41]).encode())
        with open(log, "ab") as fh:
            fh.write(data[: len(data) // 2])

    steps = iter([member(text[15:30]), half_member])
    monkeypatch.setattr(watch_cli, "_sleep", lambda s: next(steps)())
    res = CliRunner().invoke(main, ["watch", str(log), "--store", str(store_dir), "--metric",
                                    METRIC, "--interval", "0", "--max-updates", "5"])
    ups = res.output.splitlines()
    assert ups[0] == "update 1: run: 15 answer_accuracy points, 15 in all (+15 new)"
    assert any(u.startswith("update 2: run: 30 answer_accuracy points, 30 in all (+15 new)")
               for u in ups), res.output
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert ups[-1] == f"Error: {log}: gzip data is truncated (expected a complete gzip file)"
    assert sum(u.startswith("Error") for u in ups) == 1
    assert stored(store_dir, "run")["value"].tolist() == ROWS[METRIC].tolist()[:30]
