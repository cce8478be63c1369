"""The HTTP application of each role: the gateway's write routes, the read routes, or both."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from api.context import ReadContext
from api.routes import read_router
from api.search.routes import search_router
from api.series_routes import series_router
from ingest.gateway import gateway_router
from ingest.log.base import EventLog
from runstream.auth import AuthMiddleware, Users
from runstream.clickhouse import ClickHouse
from runstream.errors import install_error_handlers
from runstream.health import Check, clickhouse_check, health_router

VERSION = "0.1.0"


def build_app(
    role: str,
    log: EventLog | None = None,
    store: ClickHouse | None = None,
    consumer_group: str = "",
    reads: bool = True,
    checks: dict[str, Check] | None = None,
    users: Users | None = None,
) -> FastAPI:
    """Write routes when given a log; read routes when given a store (and `reads`); always /health,
    /ready (the log, the store and `checks`) and /metrics (Prometheus). With `users`, every other
    route requires credentials and checks the user's access to the experiments it touches."""
    app = FastAPI(title=f"runstream {role}", version=VERSION)
    install_error_handlers(app)
    if users is not None:
        app.add_middleware(AuthMiddleware, users=users)
    probes = dict(checks or {})
    if log is not None:
        app.include_router(gateway_router(log, store))
        probes["event_log"] = log.check
    if store is not None:
        probes["clickhouse"] = clickhouse_check(store)
        if reads:
            ctx = ReadContext(store, consumer_group)
            app.include_router(read_router(ctx))
            app.include_router(series_router(ctx))
            app.include_router(search_router(ctx))
    app.include_router(health_router(role, VERSION, probes))
    Instrumentator(excluded_handlers=["/metrics"]).instrument(app, metric_namespace="runstream").expose(
        app, include_in_schema=False
    )
    return app
