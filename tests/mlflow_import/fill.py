"""Fills an MLflow store through MLflow's own client, as a team's store looks after some months:
python fill.py TRACKING_URI ARTIFACT_DIR [POINTS of the long metric, 100,000]. Runs in a venv with
mlflow (never the project's)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data import from_pandas
from mlflow.entities import DatasetInput, LoggedModelOutput, Metric, Param, RunTag


def main(uri: str, artifacts: Path, long: int) -> None:
    mlflow.set_tracking_uri(uri)  # a models:/ source is looked up through the default store
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("import-a", artifact_location=(artifacts / "a").as_uri(), tags={"team": "vision"})
    other = client.create_experiment("import-b", artifact_location=(artifacts / "b").as_uri())

    parent = client.create_run(exp, run_name="sweep", tags={"kind": "parent"})
    parent_id = parent.info.run_id
    child = client.create_run(exp, run_name="trial-1", tags={"mlflow.parentRunId": parent_id})
    child_id = child.info.run_id
    client.log_batch(parent_id, params=[Param("lr", "0.01"), Param("layers", "4")], tags=[RunTag("note", "é ünïcode")])
    steps = np.arange(long)
    values = np.exp(-steps / 20_000) + 0.01 * np.sin(steps)
    t0 = int(time.time() * 1000)
    for start in range(0, long, 1000):
        chunk = [Metric("loss", float(values[i]), t0 + i, int(i)) for i in range(start, start + 1000)]
        client.log_batch(parent_id, metrics=chunk)
    client.log_metric(parent_id, "acc", 0.5, step=0, timestamp=t0)
    client.log_metric(parent_id, "acc", 0.9, step=1, timestamp=t0 + 1)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = from_pandas(frame, source="s3://data/train.parquet", name="train", targets="y")
    client.log_inputs(child_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), [])])
    client.log_param(child_id, "lr", "0.02")
    client.log_metric(child_id, "loss", 0.3, step=5, timestamp=t0)
    folder = artifacts / "upload"
    (folder / "plots").mkdir(parents=True)
    (folder / "plots" / "curve.txt").write_text("loss went down\n")
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 40)
    client.log_artifacts(parent_id, str(folder))
    model = client.create_logged_model(
        exp, name="classifier", source_run_id=parent_id, params={"depth": "6"}, tags={"stage": "dev"}, model_type="sk"
    )
    model_id = model.model_id
    (folder / "model").mkdir()
    (folder / "model" / "MLmodel").write_text("flavors: {}\n")
    (folder / "model" / "data").mkdir()
    (folder / "model" / "data" / "weights.npy").write_bytes(bytes(range(200)) * 3)
    client.log_model_artifacts(model_id, str(folder / "model"))
    client.log_metric(parent_id, "auc", 0.81, timestamp=t0, step=3, model_id=model_id)
    client.log_metric(
        child_id,
        "auc",
        0.84,
        timestamp=t0 + 2,
        step=1,
        model_id=model_id,
        dataset_name="train",
        dataset_digest=dataset.digest,
    )
    client.log_outputs(parent_id, [LoggedModelOutput(model_id, step=3)])
    client.finalize_logged_model(model_id, "READY")
    client.create_logged_model(other, name="draft")  # never finalized: PENDING
    client.set_terminated(child_id, "FINISHED", end_time=t0 + 5000)
    client.set_terminated(parent_id, "FAILED", end_time=t0 + 9000)

    gone = client.create_run(other, run_name="abandoned")
    client.log_param(gone.info.run_id, "seed", "7")
    client.set_terminated(gone.info.run_id, "KILLED", end_time=t0 + 100)
    client.delete_run(gone.info.run_id)

    client.create_registered_model("import-model", tags={"owner": "ml"}, description="churn")
    v1 = client.create_model_version("import-model", f"runs:/{parent_id}/model", run_id=parent_id)
    client.create_model_version("import-model", f"models:/{model_id}", run_id=parent_id, model_id=model_id)
    client.transition_model_version_stage("import-model", v1.version, "Production")
    client.create_model_version("import-model", f"runs:/{child_id}/model", run_id=child_id, tags={"checked": "yes"})
    client.set_registered_model_alias("import-model", "champion", "3")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 100_000)
