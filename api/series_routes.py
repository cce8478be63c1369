"""Chart reads: downsampled series, comparisons of many runs, the runs table, aggregates over
groups of runs, and the run hierarchy."""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from fastapi import APIRouter, Header
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.api.context import After, Reads
from runstream.base.auth import CurrentPrincipal
from runstream.base.responses import accepts_arrow, arrow_response, json_response
from runstream.schemas.wire import ARROW_STREAM, json_floats, split_series
from runstream.store import hierarchy, series

Keys = Annotated[list[Annotated[str, Field(min_length=1, max_length=250)]], Field(min_length=1, max_length=50)]
RunIds = Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=series.MAX_RUNS)]


class SeriesRequest(BaseModel):
    run_ids: RunIds
    keys: Keys
    max_points: int = Field(1000, ge=1, le=series.MAX_BUCKETS, description="buckets per series")
    x_axis: series.XAxis = "step"
    x_min: int | None = None
    x_max: int | None = None
    rank: int | None = Field(None, ge=0, description="only this rank's points")
    per_rank: bool = Field(False, description="one series per rank instead of all ranks together")


class SummaryRequest(BaseModel):
    run_ids: Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=100_000)]
    keys: Keys | None = None


class AggregateRequest(BaseModel):
    run_ids: RunIds
    key: Annotated[str, Field(min_length=1, max_length=250)]
    group_by: Annotated[
        list[Annotated[str, Field(pattern=r"^(params|tags)\..+$", max_length=260)]], Field(max_length=10)
    ] = Field(default_factory=list, description='e.g. ["params.lr"]; runs with equal values form a group')
    max_points: int = Field(500, ge=1, le=series.MAX_BUCKETS)
    x_axis: series.XAxis = "step"
    x_min: int | None = None
    x_max: int | None = None


def _series_table(client: Client, request: SeriesRequest) -> tuple[series.Grid, pa.Table]:
    selection = series.Selection(
        client, request.run_ids, request.keys, request.x_axis, request.rank, request.x_min, request.x_max
    )
    grid = selection.grid(request.max_points)
    table = series.bucket_table(selection, grid, request.per_rank)
    rollup = selection.without_expired_points(grid, request.max_points, table)
    if rollup is None:
        return grid, table
    return rollup, series.bucket_table(selection, rollup, request.per_rank)


def _series(client: Client, request: SeriesRequest) -> dict[str, Any]:
    grid, table = _series_table(client, request)
    return {**grid.as_dict(), "series": split_series(table, request.run_ids, request.keys, request.per_rank)}


def _aggregate(client: Client, request: AggregateRequest) -> dict[str, Any]:
    groups = hierarchy.group_runs(client, request.run_ids, request.group_by)
    group_of_run = [0] * len(request.run_ids)
    index = {run_id: i for i, run_id in enumerate(request.run_ids)}
    for g, (_, members) in enumerate(groups):
        for run_id in members:
            group_of_run[index[run_id]] = g
    selection = series.Selection(
        client, request.run_ids, [request.key], request.x_axis, None, request.x_min, request.x_max
    )
    grid = selection.grid(request.max_points)
    table = series.group_aggregates(selection, grid, group_of_run)
    group_index = table.column("group_index").to_numpy()
    out = []
    for g, (values, members) in enumerate(groups):
        rows = group_index == g
        columns = {
            c: json_floats(table.column(c).to_numpy()[rows])
            for c in ["bucket", "mean", "std", "min", "max", "median", "runs"]
        }
        out.append({"group": values, "run_ids": members, **columns})
    return {**grid.as_dict(), "key": request.key, "groups": out}


routes = APIRouter(prefix="/api/v1", tags=["charts"])


@routes.post("/series", summary="Downsampled metric series of one or many runs on one x grid")
async def get_series(
    ctx: Reads,
    request: SeriesRequest,
    principal: CurrentPrincipal,
    after: After = None,
    accept: Annotated[str | None, Header(description=f"{ARROW_STREAM}: the bucket rows as Arrow IPC")] = None,
) -> Response:
    await ctx.consistent(after)
    await ctx.allow_runs(principal, request.run_ids)
    if accepts_arrow(accept):
        grid, table = await ctx.query(_series_table, request)
        return arrow_response(table, grid.as_dict())
    return json_response(await ctx.query(_series, request))


@routes.post("/runs/summary", summary="Per run and key: latest value and step, min, max, count")
async def summary(ctx: Reads, request: SummaryRequest, principal: CurrentPrincipal, after: After = None) -> Response:
    await ctx.consistent(after)
    await ctx.allow_runs(principal, request.run_ids)
    rows = await ctx.query(series.summaries, request.run_ids, request.keys)
    return json_response({"summaries": rows})


@routes.post("/aggregate", summary="Mean, std, min, max, median and count across the runs of each group")
async def aggregate(
    ctx: Reads, request: AggregateRequest, principal: CurrentPrincipal, after: After = None
) -> Response:
    await ctx.consistent(after)
    await ctx.allow_runs(principal, request.run_ids)
    return json_response(await ctx.query(_aggregate, request))


@routes.get("/runs/{run_id}/children", summary="Runs whose parent is this run")
async def children(ctx: Reads, run_id: str, principal: CurrentPrincipal, after: After = None) -> Response:
    await ctx.consistent(after)
    await ctx.allow_runs(principal, [run_id])
    return json_response({"run_ids": await ctx.query(hierarchy.children, run_id)})


@routes.get("/runs/{run_id}/parents", summary="The parent chain of a run, nearest first")
async def parents(ctx: Reads, run_id: str, principal: CurrentPrincipal, after: After = None) -> Response:
    await ctx.consistent(after)
    await ctx.allow_runs(principal, [run_id])
    return json_response({"run_ids": await ctx.query(hierarchy.parents, run_id)})
