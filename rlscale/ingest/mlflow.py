"""MLflow's file store: ``mlruns/<experiment_id>/<run_id>/`` directories, read without MLflow.

A run directory holds ``meta.yaml``, ``metrics/<name>`` (one line per logged value:
``timestamp_ms value step``; a name with ``/`` is a nested path), ``params/<name>`` and
``tags/<name>`` (one value per file). Ingesting ``mlruns/``, an experiment directory or one run
directory gives one run per MLflow run; runs marked ``lifecycle_stage: deleted`` are skipped.
The run id is the ``mlflow.runName`` tag (sanitised like a file name), else the run directory's
name. ``wall_s`` is each value's timestamp minus the run's first. Params become run metadata
(``seed`` the run's seed when it is an integer), with ``mlflow_run_id`` and ``mlflow_experiment``.
Metrics named like a compute axis (``num_tokens``, ``gpu_hours``, ...) become that axis at their
step. ``meta.yaml`` is read for its plain ``key: value`` lines only (no YAML library needed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rlscale.ingest.columns import compute_axis
from rlscale.ingest.options import IngestOptions, parse_value, sanitize_run_id
from rlscale.ingest.points import RawPoints
from rlscale.ingest.readers import records_to_table
from rlscale.ingest.source import Source
from rlscale.ingest.table import table_points


def is_run_dir(path: Path) -> bool:
    return (path / "meta.yaml").is_file() and any(
        (path / d).is_dir() for d in ("metrics", "params", "tags"))


def meta_yaml(path: Path) -> dict[str, str]:
    """Top-level ``key: value`` lines of a ``meta.yaml`` (quotes stripped); {} if unreadable."""
    out: dict[str, str] = {}
    try:
        text = (path / "meta.yaml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if not line or line[0] in " \t-#":
            continue
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip().strip("'\"")
    return out


def is_deleted(run_dir: Path) -> bool:
    return meta_yaml(run_dir).get("lifecycle_stage") == "deleted"


def _files(root: Path) -> dict[str, Path]:
    """``{"critic/score/mean": path}`` for every file under ``root`` (names keep their ``/``)."""
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace").strip()


def default_run_id(run_dir: Path) -> str:
    tag = run_dir / "tags" / "mlflow.runName"
    name = _text(tag) if tag.is_file() else meta_yaml(run_dir).get("run_name", "")
    return sanitize_run_id(name or run_dir.resolve().name)


def read_mlflow(run_dir: Path, opts: IngestOptions, run_id: str
                ) -> tuple[RawPoints, Source, dict[str, dict[str, Any]]]:
    """Points of one MLflow run directory, and its params as metadata."""
    where: list[tuple[str, int]] = []
    src = Source(path=run_dir, format="mlflow",
                 locate=lambda row: (where[row][1], f"metrics/{where[row][0]}"))
    metrics = _files(run_dir / "metrics")
    if not metrics:
        raise src.error("no metrics", field="metrics",
                        expected="files under metrics/ (an MLflow run that logged metrics)")
    records: list[dict[str, Any]] = []
    axes: dict[str, dict[int, float]] = {}
    for name, path in metrics.items():
        here = Source(path=run_dir, format="mlflow", locate=lambda n: (n, f"metrics/{name}"))
        axis = compute_axis(name)
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                parts = line.split()
                if not parts:
                    continue
                ts, value, step = _parse_line(parts, here, number)
                if axis is not None:
                    axes.setdefault(name, {})[step] = value
                    continue
                where.append((name, number))
                records.append({"step": step, "metric": name, "value": value, "_ts": ts})
    if not records:
        raise src.error("no metrics", field="metrics", expected="metrics besides compute axes "
                        f"({', '.join(sorted(axes))})")
    first = min(r["_ts"] for r in records)
    for rec in records:
        rec["wall_s"] = (rec.pop("_ts") - first) / 1000.0
        for name, by_step in axes.items():
            rec[name] = by_step.get(rec["step"])
    opts = replace(opts, step_col="step", x_col=None, x_unit=None)
    raw = table_points(records_to_table(records, src), src, opts)
    return raw, src, {run_id: _metadata(run_dir)}


def _parse_line(parts: list[str], src: Source, number: int) -> tuple[int, float, int]:
    if len(parts) not in (2, 3):  # MLflow before 1.0 wrote "timestamp value" (step 0)
        raise src.error(f"{len(parts)} fields", row=number, field="value",
                        expected="'timestamp value step' (MLflow's metric file)")
    names = ("timestamp", "value", "step")
    try:
        ts = int(parts[0])
        value = float(parts[1])
        step = int(parts[2]) if len(parts) == 3 else 0
    except ValueError:
        bad = next(i for i, (p, f) in enumerate(zip(parts, (int, float, int)))
                   if not _parses(p, f))
        raise src.error(f"cannot parse {parts[bad][:40]!r}", row=number, field=names[bad],
                        expected="an integer" if bad != 1 else "a number") from None
    return ts, value, step


def _parses(text: str, kind: type) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _metadata(run_dir: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {"mlflow_run_id": run_dir.resolve().name}
    experiment = meta_yaml(run_dir.resolve().parent).get("name")
    if experiment:
        meta["mlflow_experiment"] = experiment
    for name, path in _files(run_dir / "params").items():
        value = parse_value(_text(path))
        if name == "seed" and not (isinstance(value, int) and not isinstance(value, bool)):
            name = "seed_param"  # the run's seed field takes integers only
        meta[name] = value
    return meta
