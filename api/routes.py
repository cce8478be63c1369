"""The native read API (/api/v1): experiments, runs, metric history."""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from runstream.api.context import After, Reads, View
from runstream.base.auth import CurrentPrincipal, readable, require
from runstream.base.errors import not_found
from runstream.base.responses import accepts_arrow, arrow_response, json_response
from runstream.eventlog.base import format_token
from runstream.schemas.wire import ARROW_STREAM, json_floats
from runstream.store import queries
from runstream.store.applied import applied_positions

MAX_HISTORY_PAGE = 1_000_000


routes = APIRouter(prefix="/api/v1", tags=["read"])


def _found(found: dict[str, Any] | None, what: str) -> Response:
    if found is None:
        raise not_found(f"{what} does not exist")
    return json_response(found)


@routes.get("/experiments", summary="List experiments, optionally the one with a given name")
async def list_experiments(
    ctx: Reads,
    principal: CurrentPrincipal,
    view: View = "active",
    name: str | None = None,
    run_counts: Annotated[bool, Query(description="add run_count: the runs of each (in the same view)")] = False,
    after: After = None,
) -> Response:
    await ctx.consistent(after)
    found = readable(principal, await ctx.query(queries.experiments, view, name))
    if run_counts:
        counts = await ctx.query(queries.run_counts, [e["experiment_id"] for e in found], view)
        for e in found:
            e["run_count"] = counts.get(e["experiment_id"], 0)
    return json_response({"experiments": found})


@routes.get("/experiments/{experiment_id}", summary="One experiment")
async def get_experiment(ctx: Reads, experiment_id: str, principal: CurrentPrincipal, after: After = None) -> Response:
    require(principal, "read", [experiment_id])
    await ctx.consistent(after)
    return _found(await ctx.query(queries.experiment, experiment_id), f"experiment {experiment_id!r}")


@routes.get("/experiments/{experiment_id}/keys", summary="The param, tag and metric keys of an experiment's runs")
async def experiment_keys(
    ctx: Reads, experiment_id: str, principal: CurrentPrincipal, view: View = "active", after: After = None
) -> Response:
    require(principal, "read", [experiment_id])
    await ctx.consistent(after)
    return json_response(await ctx.query(queries.experiment_keys, experiment_id, view))


@routes.get("/read-position", summary="What is queryable now: a consistency token of the applied log positions")
async def read_position(ctx: Reads) -> Response:
    # Cheap to poll: a page compares it with the last one it saw to know when to fetch what is new.
    applied = await ctx.query(applied_positions, ctx.consumer_group)
    return json_response({"token": format_token(applied)})


@routes.get("/runs", summary="Runs of experiments with params, tags and the latest value per metric")
async def list_runs(
    ctx: Reads,
    principal: CurrentPrincipal,
    experiment_id: Annotated[list[str], Query(min_length=1)],
    view: View = "active",
    max_results: Annotated[int, Query(ge=1, le=50_000)] = 1000,
    page_token: str | None = None,
    after: After = None,
) -> Response:
    require(principal, "read", experiment_id)
    await ctx.consistent(after)
    found, token = await ctx.query(queries.runs, experiment_id, view, max_results, page_token)
    return json_response({"runs": found, "next_page_token": token})


@routes.get("/runs/{run_id}", summary="One run with params, tags and the latest value per metric")
async def get_run(ctx: Reads, run_id: str, principal: CurrentPrincipal, after: After = None) -> Response:
    await ctx.consistent(after)
    await ctx.allow_runs(principal, [run_id])
    return _found(await ctx.query(queries.run, run_id), f"run {run_id!r}")


@routes.get("/runs/{run_id}/metric-history", summary="Raw points of one metric, paged, as columns")
async def metric_history(
    ctx: Reads,
    run_id: str,
    key: str,
    principal: CurrentPrincipal,
    max_results: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = 100_000,
    page_token: str | None = None,
    after: After = None,
    accept: Annotated[str | None, Header(description=f"{ARROW_STREAM} for an Arrow IPC stream")] = None,
) -> Response:
    await ctx.consistent(after)
    await ctx.allow_runs(principal, [run_id])
    page = await ctx.query(queries.metric_history, run_id, key, max_results, page_token)
    if accepts_arrow(accept):
        columns = {"steps": page.steps, "timestamps": page.timestamps, "values": page.values, "ranks": page.ranks}
        return arrow_response(
            pa.table(columns), {"run_id": run_id, "key": key, "next_page_token": page.next_page_token}
        )
    return json_response(
        {
            "run_id": run_id,
            "key": key,
            "steps": page.steps,
            "timestamps": page.timestamps,
            "values": json_floats(page.values),
            "ranks": page.ranks,
            "next_page_token": page.next_page_token,
        }
    )
