"""MLflow's REST API (/api/2.0/mlflow/..., and /ajax-api/2.0/mlflow/... as MLflow's UI calls it), so
the official client works against runstream unchanged. Reads answer from ClickHouse here; writes
become events in ingest/mlflow_writes.py. Artifacts, logged models and the model registry plug in
beside these routers (see runstream/app.py)."""
