"""Mutated copies of small real logs, ingested into a store: shared by tests/test_fuzz_ingest.py
(bounded, in CI) and benchmarks/fuzz.py (a longer run that prints counts).

Every sample is real: a head of a real log under tests/fixtures/real-logs/ or examples/logs/
(their SOURCE files say where each comes from), or the same real rows written by the real
library of the format (pandas for JSONL/JSON/Parquet, TensorBoard's own record writer).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import strategies as st

from rlscale import ingest_paths
from rlscale.errors import InputError, StoreError

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "fixtures" / "real-logs"
LOGS = ROOT / "examples" / "logs"
HISTORY = REAL / "wandb-history-primerl" / "1y33h9zr_history_head.csv"
MLRUN = LOGS / "mlflow" / "mlruns" / "644868255593625896" / "888cf25721434dfe8c436f2c779c20a2"

FORMATS = ("csv", "jsonl", "json", "parquet", "tensorboard", "trl", "wandb", "verl", "sb3",
           "mlflow")


def _head(path: Path, n: int, keep=lambda line: True) -> bytes:
    lines = path.read_bytes().splitlines(keepends=True)
    return b"".join(lines[:1] + [ln for ln in lines[1:] if keep(ln)][: n - 1])


def _frame() -> pd.DataFrame:
    return pd.read_csv(HISTORY).head(8)


def _tensorboard() -> bytes:
    """Real reward values as scalar events, written by TensorBoard's record writer (fixed wall
    times, so the bytes are the same on every run)."""
    import io

    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    df = _frame()
    value_cols = [c for c in df.columns if c != "_step" and pd.api.types.is_numeric_dtype(df[c])]
    buf = io.BytesIO()
    w = RecordWriter(buf)
    w.write(event_pb2.Event(wall_time=1.0e9, file_version="brain.Event:2").SerializeToString())
    for i, row in df.iterrows():
        vals = [summary_pb2.Summary.Value(tag=c, simple_value=float(row[c]))
                for c in value_cols[:2] if pd.notna(row[c])]
        ev = event_pb2.Event(wall_time=1.0e9 + 10 * i, step=int(row["_step"]),
                             summary=summary_pb2.Summary(value=vals))
        w.write(ev.SerializeToString())
    return buf.getvalue()


def samples() -> dict[str, tuple[str, bytes]]:
    """format -> (file name, bytes of a small valid log)."""
    df = _frame()
    parquet = tempfile.NamedTemporaryFile(suffix=".parquet", delete=False)
    parquet.close()
    df.to_parquet(parquet.name, index=False)
    pq_bytes = Path(parquet.name).read_bytes()
    Path(parquet.name).unlink()
    trl = json.loads((REAL / "trl-orpo-recsys" / "trainer_state.json").read_text())
    trl["log_history"] = trl["log_history"][:6]
    return {
        "csv": ("history.csv", _head(HISTORY, 8)),
        "jsonl": ("history.jsonl", df.to_json(orient="records", lines=True).encode()),
        "json": ("history.json", df.to_json(orient="split", index=False).encode()),
        "parquet": ("history.parquet", pq_bytes),
        "tensorboard": ("events.out.tfevents.1.fuzz", _tensorboard()),
        "trl": ("trainer_state.json", json.dumps(trl, indent=2).encode()),
        "wandb": ("test_reward.csv",
                  _head(REAL / "wandb-export-deepgrpo" / "test_reward.csv", 8)),
        "verl": ("verl.log", _head(LOGS / "verl" / "gemma-2-2b-it-ppo-gsm8k.log", 6,
                                   lambda ln: b"step:" in ln)),
        "sb3": ("0.monitor.csv", _head(LOGS / "sb3" / "LunarLander-v2_1" / "0.monitor.csv", 10)),
        "mlflow": ("metrics/val/test_score", (MLRUN / "metrics" / "val" / "test_score").read_bytes()),
    }


JUNK = [b"\xff", b"\xfe\xff", b"\x00", b"\n", b"\r\n", b",", b'"', b"\t", b"{", b"[" * 3000,
        b"1e400", b"-1e308", b"99999999999999999999999999", b"18446744073709551615", b"nan",
        b"-inf", b"0x1", b"\xef\xbb\xbf", b'{"a": [1, {"b": ', b"step", b" - step:1 - ", b"\xc3("]


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few byte flips, truncations, insertions of junk or huge numbers."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "digits"]))
        pos = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del out[pos:]
        elif op == "insert":
            out[pos:pos] = draw(st.one_of(st.sampled_from(JUNK), st.binary(min_size=1,
                                                                          max_size=16)))
        elif op == "delete":
            del out[pos:pos + draw(st.integers(1, 64))]
        elif op == "digits":  # a number made huge where one already is
            k = next((i for i in range(pos, len(out)) if 48 <= out[i] <= 57), None)
            if k is not None:
                out[k:k] = b"9" * draw(st.integers(20, 400))
    return bytes(out)


def tree_hash(root: Path) -> str:
    """sha256 over every path and its bytes under ``root``."""
    h = hashlib.sha256()
    if root.exists():
        for p in sorted(root.rglob("*")):
            h.update(str(p.relative_to(root)).encode() + b"\0")
            if p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


class Harness:
    """A store holding one good run, and the place each mutated log is written."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.store = work / "store"
        self.samples = samples()
        name, data = self.samples["csv"]
        good = work / "good" / name
        good.parent.mkdir(parents=True)
        good.write_bytes(data)
        ingest_paths([good], self.store)

    def attempt(self, fmt: str, data: bytes) -> str:
        """Ingest ``data`` as a ``fmt`` log: ``"ok"``, or the error class when it failed (after
        checking the error is one line and the store did not change)."""
        case = self.work / "case"
        shutil.rmtree(case, ignore_errors=True)
        name, _ = self.samples[fmt]
        if fmt == "mlflow":
            shutil.copytree(MLRUN, case / "run")
            target = case / "run" / name
        elif fmt == "tensorboard":
            target = case / "tb" / name
        else:
            target = case / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        log = target.parent if fmt == "tensorboard" else case / "run" if fmt == "mlflow" else target
        before = tree_hash(self.store)
        try:
            ingest_paths([log], self.store, replace=True, **({"format": "wandb"} if fmt == "wandb" else {}))
        except (InputError, StoreError) as exc:
            msg = str(exc)
            assert msg and "\n" not in msg, f"{fmt}: not one line: {msg!r}"
            assert tree_hash(self.store) == before, f"{fmt}: store changed by a failed ingest: {msg}"
            return type(exc).__name__
        return "ok"
