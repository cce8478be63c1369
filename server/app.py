"""The HTTP application of each role: the gateway's write routes, the read routes, or both."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from runstream.api import artifact_routes, routes, search_routes, series_routes
from runstream.api.access import run_access
from runstream.api.context import ReadContext
from runstream.api.dashboard.routes import dashboard_router
from runstream.artifacts.store import DEFAULT_MAX_SIZE, ArtifactStore
from runstream.base.auth import PROBES, AuthMiddleware, Users
from runstream.base.clickhouse import ClickHouse
from runstream.base.errors import ContentLengthCheck, install_error_handlers
from runstream.eventlog.base import EventLog
from runstream.eventlog.write_marks import WriteMarks
from runstream.ingest.gateway import Gateway, RunOwners
from runstream.ingest.gateway import routes as gateway_routes
from runstream.lifecycle import deployments, gate_read_routes, gate_write_routes, history_routes, monitoring_routes
from runstream.lifecycle.promotions import Promotions
from runstream.mlflow_api import (
    artifact_views,
    artifacts,
    experiments,
    graphql,
    logged_models,
    metrics,
    model_versions,
    multipart,
    registered_models,
    runs,
    server_info,
    webhooks,
)
from runstream.mlflow_api.access import mlflow_access, registry_access
from runstream.mlflow_api.context import MlflowContext
from runstream.mlflow_api.web_ui import mount_mlflow_ui
from runstream.mlflow_api.writer import MlflowWriter, ensure_default_experiment
from runstream.server.docs import DOCS_PATHS, OPENAPI_URL, docs_router
from runstream.server.health import Check, clickhouse_check, health_router
from runstream.store.applied import Applied

VERSION = "0.1.0"
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")  # the second is what MLflow's UI calls
MLFLOW_ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")


def build_app(
    role: str,
    log: EventLog | None = None,
    store: ClickHouse | None = None,
    consumer_group: str = "",
    applied: Applied | None = None,
    reads: bool = True,
    checks: dict[str, Check] | None = None,
    users: Users | None = None,
    artifacts: ArtifactStore | None = None,
    artifact_max_size: int = DEFAULT_MAX_SIZE,
    mlflow_ui: Path | None = None,
) -> FastAPI:
    """Write routes when given a log; read routes when given a store (and `reads`); always /health,
        /ready (the log, the store and `checks`) and /metrics (Prometheus). With `users`, every other
        route requires credentials and checks the user's access to the experiments it touches. With
        `mlflow_ui` (the installed mlflow package's web app), MLflow's own UI at /mlflow/. `applied`: where the
    projector stands, when it runs in this process (else read from ClickHouse)."""
    title = f"runstream {role}"
    # FastAPI's own /docs and /redoc load their scripts from a CDN; docs_router serves Swagger UI's locally.
    app = FastAPI(title=title, version=VERSION, openapi_url=OPENAPI_URL, docs_url=None, redoc_url=None)
    app.include_router(docs_router(title))
    install_error_handlers(app)
    if users is not None:
        app.add_middleware(AuthMiddleware, users=users, open_paths=PROBES | {OPENAPI_URL} | DOCS_PATHS)
    probes = dict(checks or {})
    marks = WriteMarks()  # this process's writes, native and MLflow's: MLflow reads wait for both
    # What the module-level routes are given by their dependencies (api/context.py, ingest/gateway.py).
    app.state.artifacts = artifacts
    app.state.artifact_max_size = artifact_max_size
    if log is not None:
        app.state.gateway = Gateway(log, RunOwners(store), marks)
        app.include_router(gateway_routes)
        probes["event_log"] = log.check
    if store is not None:
        probes["clickhouse"] = clickhouse_check(store)
        if reads:
            app.state.reads = ctx = ReadContext(store, consumer_group, applied)
            app.include_router(routes.routes)
            app.include_router(series_routes.routes)
            app.include_router(search_routes.routes)
            _mount_mlflow(app, MlflowContext(ctx, marks), log, artifacts)
            app.include_router(dashboard_router())
            if mlflow_ui is not None:
                mount_mlflow_ui(app, mlflow_ui)
            if artifacts is not None:
                reading = Depends(run_access(store, "read"))
                app.include_router(artifact_routes.read_routes, dependencies=[reading])
    if artifacts is not None:
        writing = Depends(run_access(store, "write"))
        app.include_router(artifact_routes.write_routes, dependencies=[writing])
    app.include_router(health_router(role, VERSION, probes))
    Instrumentator(excluded_handlers=["/metrics"]).instrument(app, metric_namespace="runstream").expose(
        app, include_in_schema=False
    )
    app.add_middleware(ContentLengthCheck)  # added last: runs first, before the metrics middleware
    return app


def _mount_mlflow(app: FastAPI, mlflow: MlflowContext, log: EventLog | None, store: ArtifactStore | None) -> None:
    """MLflow's tracking API: reads wherever ClickHouse is reachable; writes where the log is too,
    sharing one record of this process's writes so the client reads what it wrote; the model
    registry likewise, with its history under /api/v1; the proxied artifact service (mlflow-artifacts)
    where there is an artifact store. The routes are module-level, one module per entity; what they
    are given (the read context, the writer, the artifact store) is in the app's state."""
    ctx = mlflow.reads
    access = Depends(mlflow_access(ctx.store))
    registry = Depends(registry_access)
    app.state.mlflow = mlflow
    routers = [
        (experiments.read_routes, access),
        (runs.read_routes, access),
        (metrics.read_routes, access),
        (artifact_views.list_routes, access),
        (logged_models.read_routes, access),
        (registered_models.read_routes, registry),
        (model_versions.read_routes, registry),
        (webhooks.read_routes, registry),
    ]
    writer = None
    if log is not None:
        ensure_default_experiment(log, ctx.store, mlflow.marks)
        app.state.mlflow_writer = writer = MlflowWriter(log, mlflow)
        app.state.gatekeeper = Promotions(writer)
        routers += [
            (experiments.write_routes, access),
            (runs.write_routes, access),
            (metrics.write_routes, access),
            (logged_models.write_routes, access),
            (registered_models.write_routes, registry),
            (model_versions.write_routes, registry),
            (webhooks.write_routes, registry),
        ]
    app.state.multipart_uploads = store is not None and store.presigned and writer is not None
    app.include_router(graphql.routes)  # calls the routes below, which check access
    app.include_router(server_info.routes)
    if store is not None:  # these check access themselves: their paths name the run or model
        app.include_router(artifact_views.file_routes)
        artifact_routers = [artifacts.read_routes]
        if writer is not None:
            artifact_routers += [artifacts.write_routes, multipart.multipart_routes]
        for router in artifact_routers:
            for prefix in MLFLOW_ARTIFACT_PREFIXES:
                app.include_router(router, prefix=prefix, include_in_schema=prefix == MLFLOW_ARTIFACT_PREFIXES[0])
    for router, check in routers:
        for prefix in MLFLOW_PREFIXES:
            app.include_router(
                router, prefix=prefix, include_in_schema=prefix == MLFLOW_PREFIXES[0], dependencies=[check]
            )
    app.include_router(history_routes.history, dependencies=[registry])
    app.include_router(gate_read_routes.routes, dependencies=[registry])
    app.include_router(monitoring_routes.routes, dependencies=[registry])
    if writer is not None:
        app.include_router(gate_write_routes.routes, dependencies=[registry])
        app.include_router(deployments.routes, dependencies=[registry])
