"""A tiny pure-Python sweep job for the sweep tests (no torch): a seeded noisy sigmoid curve.

Each call leaves a marker file ``<markers>/<run_id>.<n>.json`` recording whether it resumed and
its pid, so tests can count job starts across killed and restarted sweeps. The job's checkpoint
is its own points: a resumed job continues after the last step it logged.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlscale.store import RunMeta, RunWriter, Store

BASE = {"recipe": "toy", "lr": 1.0, "steps": 6, "sleep_s": 0.0, "fail_at": -1, "crash_at": -1,
        "exit_at": -1, "markers": ""}


def value_at(config: dict[str, Any], step: int) -> float:
    """The reward the job logs at ``step``: a function of (lr, seed, step) only."""
    noise = np.random.default_rng([config["seed"], step]).normal(0.0, 0.01)
    return float(0.2 + 0.5 / (1.0 + np.exp(-(config["lr"] * step - 3.0))) + noise)


def curve_job(config: dict[str, Any], *, store: str, resume: bool) -> str:
    run_id = config["run_id"]
    if config["markers"]:
        path = Path(config["markers"]) / f"{run_id}.{uuid.uuid4().hex}.json"
        path.write_text(json.dumps({"resume": resume, "pid": os.getpid(), "t": time.time()}))
    if resume:
        writer = RunWriter.resume(store, run_id)
        done = writer.points["step"]
        start = int(done.max()) + 1 if len(done) else 0
    else:
        meta = RunMeta(run_id, recipe=config["recipe"], seed=config["seed"], config=config,
                       metadata={"lr": config["lr"]})
        writer = RunWriter.open(store, meta)
        start = 0
    for step in range(start, config["steps"]):
        if step == config["fail_at"]:
            raise RuntimeError(f"injected failure at step {step}")
        if step == config["crash_at"]:
            os._exit(3)  # the process dies as if killed or out of memory
        if step == config["exit_at"]:
            raise SystemExit(f"job called exit at step {step}")
        time.sleep(config["sleep_s"])
        writer.append(pd.DataFrame({"step": [step], "metric": ["reward"],
                                    "value": [value_at(config, step)],
                                    "flops": [1e9 * (step + 1)]}))
    writer.close()
    if config["markers"]:
        (Path(config["markers"]) / f"{run_id}.end").write_text(str(time.time()))
    return run_id


def estimate(config: dict[str, Any]) -> dict[str, float]:
    return {"flops": 1e9 * config["steps"], "device_hours": 1e-6 * config["steps"]}


# -- helpers for the tests (not used by the job) ----------------------------------------------
def write_spec(tmp_path, *, grid="lr = [0.5, 1.0]", extra="", name="toy", points="", **base):
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    base = {**BASE, "markers": str(markers), **base}
    base_toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in base.items())
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\njob = "sweep_jobs:curve_job"\n'
                    f'estimate = "sweep_jobs:estimate"\n{extra}\n[base]\n{base_toml}\n'
                    f"[grid]\n{grid}\n{points}\n")
    return path


def starts(tmp_path):
    """run_id -> list of 'resume' flags of every start of that job, in start order."""
    out: dict[str, list[bool]] = {}
    files = sorted((tmp_path / "markers").glob("*.json"), key=lambda p: json.loads(p.read_text())["t"])
    for f in files:
        out.setdefault(f.name.rsplit(".", 2)[0], []).append(json.loads(f.read_text())["resume"])
    return out


def assert_whole(store: Store, spec_path):
    """Every run complete, each step logged once, values exactly those of an unbroken run."""
    from rlscale.sweep.run import resolve_jobs
    from rlscale.sweep.spec import load_spec

    for job in resolve_jobs(load_spec(spec_path)):
        assert store.read_meta(job.job_id).status == "complete"
        pts = store.read_points(runs=[job.job_id]).sort_values("step")
        assert pts["step"].tolist() == list(range(job.config["steps"]))
        want = [value_at(job.config, s) for s in range(job.config["steps"])]
        np.testing.assert_array_equal(pts["value"].to_numpy(), want)
