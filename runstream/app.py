"""The HTTP application of each role: the gateway's write routes, the read routes, or both."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from api.artifact_routes import artifact_read_router, artifact_write_router
from api.context import ReadContext
from api.routes import read_router
from api.search.routes import search_router
from api.series_routes import series_router
from artifacts.store import DEFAULT_MAX_SIZE, ArtifactStore
from ingest.gateway import gateway_router
from ingest.log.base import EventLog
from runstream.clickhouse import ClickHouse
from runstream.errors import install_error_handlers
from runstream.responses import json_response

VERSION = "0.1.0"


def build_app(
    role: str,
    log: EventLog | None = None,
    store: ClickHouse | None = None,
    consumer_group: str = "",
    artifacts: ArtifactStore | None = None,
    artifact_max_size: int = DEFAULT_MAX_SIZE,
) -> FastAPI:
    app = FastAPI(title=f"runstream {role}", version=VERSION)
    install_error_handlers(app)
    if log is not None:
        app.include_router(gateway_router(log))
    if store is not None:
        ctx = ReadContext(store, consumer_group)
        app.include_router(read_router(ctx))
        app.include_router(series_router(ctx))
        app.include_router(search_router(ctx))
        if artifacts is not None:
            app.include_router(artifact_read_router(ctx, artifacts))
    if artifacts is not None:
        app.include_router(artifact_write_router(artifacts, artifact_max_size))

    @app.get("/health", tags=["health"])
    async def health() -> Response:
        return json_response({"status": "ok", "role": role, "version": VERSION})

    return app
