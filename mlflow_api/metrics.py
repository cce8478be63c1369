"""MLflow's metrics: one point logged to a run, and a metric's history, whole (paged) or bucketed
over many runs (get-history-bulk-interval)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from runstream.api.routes import MAX_HISTORY_PAGE
from runstream.base.errors import invalid
from runstream.eventlog.write_marks import run_entity
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api import shapes
from runstream.mlflow_api.context import Mlflow
from runstream.mlflow_api.requests import (
    MAX_BULK_RESULTS,
    MAX_BULK_RUNS,
    LogMetric,
    check_name,
)
from runstream.mlflow_api.shapes import mlflow_json, ok
from runstream.mlflow_api.writer import (
    Writer,
    metric_events,
)
from runstream.store import queries

read_routes = APIRouter(tags=["mlflow"])
write_routes = APIRouter(tags=["mlflow"])


@read_routes.get("/metrics/get-history")
async def get_metric_history(
    ctx: Mlflow,
    metric_key: str,
    run_id: str | None = None,
    run_uuid: str | None = None,
    # without max_results MLflow returns every point; the largest page is the closest
    max_results: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = MAX_HISTORY_PAGE,
    page_token: str | None = None,
) -> Response:
    run_id = shapes.run_id_param(run_id, run_uuid)
    await ctx.settled(run_entity(run_id))
    page = await ctx.query(queries.metric_history, run_id, metric_key, max_results, page_token)
    points = zip(page.steps.tolist(), page.timestamps.tolist(), page.values.tolist(), strict=True)
    metrics = [shapes.metric(metric_key, value, ts, step) for step, ts, value in points]
    return mlflow_json({"metrics": metrics, "next_page_token": page.next_page_token})


@read_routes.get("/metrics/get-history-bulk-interval")
async def get_metric_history_bulk_interval(
    ctx: Mlflow,
    run_ids: Annotated[list[str], Query(min_length=1, max_length=MAX_BULK_RUNS)],
    metric_key: str,
    start_step: int | None = None,
    end_step: int | None = None,
    max_results: Annotated[int, Query(ge=1, le=MAX_BULK_RESULTS)] = MAX_BULK_RESULTS,
) -> Response:
    if (start_step is None) != (end_step is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    if start_step is not None and end_step is not None and start_step > end_step:
        raise invalid(f"end_step must be greater than start_step. Found {start_step=} and {end_step=}.")
    await ctx.settled(*map(run_entity, run_ids))
    metrics = await ctx.query(
        mlflow_queries.history_bulk_interval, run_ids, metric_key, max_results, start_step, end_step
    )
    return mlflow_json({"metrics": metrics})


@write_routes.post("/runs/log-metric")
async def log_metric(w: Writer, body: LogMetric) -> Response:
    run_id = body.id
    check_name("metric", body.key)
    await w.active_run(run_id)
    await w.append(metric_events(run_id, [body]), run_entity(run_id))
    return ok()
