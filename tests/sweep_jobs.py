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

from rlscale.store import RunMeta, RunWriter

BASE = {"recipe": "toy", "lr": 1.0, "steps": 6, "sleep_s": 0.0, "fail_at": -1, "markers": ""}


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
        time.sleep(config["sleep_s"])
        writer.append(pd.DataFrame({"step": [step], "metric": ["reward"],
                                    "value": [value_at(config, step)],
                                    "flops": [1e9 * (step + 1)]}))
    writer.close()
    return run_id


def estimate(config: dict[str, Any]) -> dict[str, float]:
    return {"flops": 1e9 * config["steps"], "device_hours": 1e-6 * config["steps"]}
