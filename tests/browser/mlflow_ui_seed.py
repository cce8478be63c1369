"""Run with MLflow's own Python (mlflow 3.x): fills a runstream server with what MLflow's web UI
shows, as an MLflow user logs it, and prints the ids as JSON.

    python mlflow_ui_seed.py http://127.0.0.1:PORT
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient
from PIL import Image

EXPERIMENT = "mlflow-ui-check"
MODEL = "ui-classifier"
STEPS = 60


class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc]  # mlflow is not in the project venv
    def predict(self, context, model_input, params=None):
        return model_input * 2


def main(server: str) -> None:
    mlflow.set_tracking_uri(server)
    client = MlflowClient()
    experiment_id = mlflow.set_experiment(EXPERIMENT).experiment_id
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "notes.txt").write_text("trained on the ui-check split\n")
        (folder / "plots").mkdir()
        Image.new("RGB", (40, 20), (200, 30, 30)).save(folder / "plots" / "curve.png")
        for name, lr in (("sweep-lr-0.1", 0.1), ("sweep-lr-0.01", 0.01)):
            with mlflow.start_run(run_name=name) as run:
                mlflow.log_params({"lr": lr, "layers": 4})
                mlflow.set_tag("team", "vision")
                for step in range(STEPS):
                    mlflow.log_metric("loss", 1.0 / (1 + lr * 10 * step), step=step)
                mlflow.log_metric("accuracy", 0.9 if lr == 0.1 else 0.8)
                mlflow.log_artifact(str(folder / "notes.txt"))
                mlflow.log_artifacts(str(folder / "plots"), "plots")
                if lr == 0.1:
                    # requirements given, so MLflow skips inferring them (a subprocess that loads the model)
                    info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=["mlflow"])
                    runs["model_id"] = info.model_id
                runs[name] = run.info.run_id
    first = mlflow.register_model(f"models:/{runs['model_id']}", MODEL)
    second = mlflow.register_model(f"models:/{runs['model_id']}", MODEL)
    client.set_registered_model_alias(MODEL, "champion", second.version)
    client.transition_model_version_stage(MODEL, first.version, "Staging")
    print(json.dumps({"experiment_id": experiment_id, **runs}))


if __name__ == "__main__":
    main(sys.argv[1])
