"""MLflow's REST API (/api/2.0/mlflow/..., and /ajax-api/2.0/mlflow/... as MLflow's UI calls it), so
the official client works against runstream unchanged. Reads answer from ClickHouse here; writes
become events in mlflow_api/writes.py. Artifacts, logged models and the model registry plug in
beside these routers (see server/app.py)."""
