"""The native read API (/api/v1): experiments, runs, metric history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api import queries
from api.consistency import wait_applied
from ingest.log.base import parse_token
from runstream.clickhouse import ClickHouse
from runstream.errors import invalid, not_found, unavailable
from runstream.responses import json_response

T = TypeVar("T")
MAX_HISTORY_PAGE = 1_000_000
View = Literal["active", "deleted", "all"]
After = Annotated[
    str | None,
    Query(description="Consistency token from a write: answer only once that write is applied."),
]


def _series(values: np.ndarray) -> Any:
    """float64 column for JSON; non-finite values become MLflow's strings."""
    if np.isfinite(values).all():
        return values
    return [queries.json_float(float(v)) for v in values]


def read_router(store: ClickHouse, consumer_group: str) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["read"])

    async def query(fn: Callable[..., T], *args: Any) -> T:
        # store.client is per thread: take it in the worker thread that runs the query.
        return await run_in_threadpool(lambda: fn(store.client, *args))

    async def consistent(after: str | None) -> None:
        if not after:
            return
        try:
            wanted = parse_token(after)
        except ValueError as exc:
            raise invalid("malformed consistency token") from exc
        if not await wait_applied(store, consumer_group, wanted):
            raise unavailable("the write is not applied yet; retry later")

    @router.get("/experiments", summary="List experiments, optionally the one with a given name")
    async def list_experiments(view: View = "active", name: str | None = None, after: After = None) -> Response:
        await consistent(after)
        found = await query(queries.experiments, view, name)
        return json_response({"experiments": found})

    @router.get("/experiments/{experiment_id}", summary="One experiment")
    async def get_experiment(experiment_id: str, after: After = None) -> Response:
        await consistent(after)
        found = await query(queries.experiment, experiment_id)
        if found is None:
            raise not_found(f"experiment {experiment_id!r} does not exist")
        return json_response(found)

    @router.get("/runs", summary="Runs of experiments with params, tags and the latest value per metric")
    async def list_runs(
        experiment_id: Annotated[list[str], Query(min_length=1)],
        view: View = "active",
        max_results: Annotated[int, Query(ge=1, le=50_000)] = 1000,
        page_token: str | None = None,
        after: After = None,
    ) -> Response:
        await consistent(after)
        try:
            found, token = await query(queries.runs, experiment_id, view, max_results, page_token)
        except queries.InvalidPageToken as exc:
            raise invalid(str(exc)) from exc
        return json_response({"runs": found, "next_page_token": token})

    @router.get("/runs/{run_id}", summary="One run with params, tags and the latest value per metric")
    async def get_run(run_id: str, after: After = None) -> Response:
        await consistent(after)
        found = await query(queries.run, run_id)
        if found is None:
            raise not_found(f"run {run_id!r} does not exist")
        return json_response(found)

    @router.get("/runs/{run_id}/metric-history", summary="Raw points of one metric, paged, as columns")
    async def metric_history(
        run_id: str,
        key: str,
        max_results: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = 100_000,
        page_token: str | None = None,
        after: After = None,
    ) -> Response:
        await consistent(after)
        try:
            page = await query(queries.metric_history, run_id, key, max_results, page_token)
        except queries.InvalidPageToken as exc:
            raise invalid(str(exc)) from exc
        return json_response(
            {
                "run_id": run_id,
                "key": key,
                "steps": page.steps,
                "timestamps": page.timestamps,
                "values": _series(page.values),
                "ranks": page.ranks,
                "next_page_token": page.next_page_token,
            }
        )

    return router
