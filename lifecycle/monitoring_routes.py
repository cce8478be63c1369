"""runstream's read API of production monitoring: a served model version's windows in an
environment, with requests, latency and drift per feature from a reference."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from runstream.base.errors import invalid
from runstream.base.responses import json_response
from runstream.mlflow_api.context import Mlflow
from runstream.mlflow_api.registry_reads import Registry
from runstream.mlflow_api.writer import Writer
from runstream.store.drift import DEFAULT_REFERENCE, BadReference, Served, drift, resolve_reference
from runstream.store.served_windows import latencies, windows

MAX_INT64 = 2**63 - 1


routes = APIRouter(prefix="/api/v1", tags=["monitoring"])


@routes.get(
    "/registered-models/{name}/monitoring",
    summary="A model version's production windows in an environment: requests, latency, drift per feature",
)
async def monitoring(
    ctx: Mlflow,
    w: Writer,
    registry: Registry,
    name: str,
    version: Annotated[int, Query(ge=1, le=MAX_INT64)],
    environment: str,
    start: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    end: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    every: Annotated[int, Query(ge=0, le=MAX_INT64, description="ms per interval; 0: each window alone")] = 0,
    reference: str = DEFAULT_REFERENCE,
) -> Response:
    served = Served(name, version, environment, start, end if end is not None else int(time.time() * 1000) + 1, every)
    await registry.model_row(name)  # 404 for a model that does not exist
    try:
        ref = await ctx.query(resolve_reference, served, reference)
    except BadReference as exc:
        raise invalid(str(exc)) from exc
    counted = await ctx.query(windows, served)
    latency = await ctx.query(latencies, served)
    drifted = await ctx.query(drift, served, ref)
    return json_response(
        {
            "name": name,
            "version": str(version),
            "environment": environment,
            "reference": reference,
            "windows": [w | {"latency_ms": latency.get(w["at"]), "drift": drifted.get(w["at"], {})} for w in counted],
        }
    )
