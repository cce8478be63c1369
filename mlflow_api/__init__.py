"""MLflow's REST API (/api/2.0/mlflow/..., and /ajax-api/2.0/mlflow/... as MLflow's UI calls it), so
the official client works against runstream unchanged. One module per entity, each with its read and
write routes at module level: experiments, runs, metrics, logged_models, registered_models,
model_versions, webhooks, and the artifacts (artifacts.py, artifact_views.py, multipart.py). Reads
answer from ClickHouse; writes become events through writer.py (the registry's, registry_writer.py).
server/app.py includes the routers and puts what they are given in the app's state."""
