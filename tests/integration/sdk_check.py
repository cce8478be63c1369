"""Run by another environment's Python (a client-only install): logs a run through the SDK, reads it
back and prints what it saw as JSON. `python sdk_check.py TRACKING_URI [--with-mlflow] [--with-training]`
(MLflow's client reads the same run; torch, transformers and lightning import beside it)."""

import json
import sys

import numpy as np

import runstream

SERVER_MODULES = ("fastapi", "uvicorn", "chdb", "clickhouse_connect", "confluent_kafka", "boto3", "starlette")

uri = sys.argv[1]
loaded_by_sdk = [m for m in SERVER_MODULES if m in sys.modules]
run = runstream.start_run(experiment="installed", run_name="beside", tracking_uri=uri)
run.log_params({"lr": 0.1, "layers": 4})
run.log_metric_arrays("loss", np.linspace(1.0, 0.0, 1000), np.arange(1000))
token = run.end()
client = runstream.Client(uri)
seen = client.get_run(run.run_id, after=token)
history = client.get_metric_history(run.run_id, "loss", after=token)
out = {
    "server_modules_loaded_by_sdk": loaded_by_sdk,
    "params": seen["params"],
    "points": len(history),
    "last": float(history.values[-1]),
}
if "--with-mlflow" in sys.argv:
    import mlflow

    mlflow.set_tracking_uri(uri)
    out["mlflow"] = mlflow.__version__
    out["mlflow_sees"] = mlflow.get_run(run.run_id).data.params
if "--with-training" in sys.argv:
    import lightning
    import torch
    import transformers

    out["torch_sum"] = float(torch.ones(3).sum())
    out["training"] = [torch.__version__, transformers.__version__, lightning.__version__]
print(json.dumps(out))
