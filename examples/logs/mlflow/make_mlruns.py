"""A file-store mlruns tree written by MLflow itself: two runs, stepped metrics, a nested name."""
# Run with mlflow-skinny 3.17.2 in a scratch venv (MLflow 3 keeps its file store only on request):
#   MLFLOW_ALLOW_FILE_STORE=true python examples/logs/mlflow/make_mlruns.py
from pathlib import Path

import mlflow

mlflow.set_tracking_uri((Path(__file__).resolve().parent / "mlruns").as_uri())
mlflow.set_experiment("gsm8k-ppo")
for seed, lr in ((0, 1e-6), (1, 3e-6)):
    with mlflow.start_run(run_name=f"ppo lr={lr} seed{seed}"):
        mlflow.log_params({"seed": seed, "actor/lr": lr, "algorithm": "ppo", "n_gpus": 1})
        for step in range(1, 6):
            mlflow.log_metrics({"critic/score/mean": round(0.1 * step + 0.05 * seed, 3),
                                "response_length/mean": 200.0 + step}, step=step)
            if step % 2 == 1:
                mlflow.log_metric("val/test_score", round(0.08 * step + 0.01 * seed, 3), step=step)
