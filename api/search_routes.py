"""POST /api/v1/runs/search and /api/v1/experiments/search: MLflow's filter grammar, JSON bodies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from runstream.api.context import After, Reads, View
from runstream.base.auth import CurrentPrincipal, readable, require
from runstream.base.errors import invalid
from runstream.base.responses import json_response
from runstream.store.search.paging import MAX_OFFSET, encode_page_token
from runstream.store.search.runs import search_experiments, search_runs_counted
from runstream.store.search.sql import MAX_RESULTS


class _Search(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field (filter_string) is an error, not ignored

    filter: str = Field("", description="MLflow filter, e.g. metrics.acc > 0.9 AND params.lr = '0.1'")
    order_by: list[str] = Field(default_factory=list, description='e.g. ["metrics.acc DESC", "attributes.start_time"]')
    view: View = "active"
    max_results: int = Field(1000, ge=1, le=MAX_RESULTS)
    page_token: str | None = None


class RunSearch(_Search):
    experiment_ids: list[str] = Field(min_length=1)
    offset: int | None = Field(
        None, ge=0, le=MAX_OFFSET, description="start at this row instead of a page_token (a table scrolled to it)"
    )
    count: bool = Field(False, description="also answer total_count: how many runs match, over all pages")


class ExperimentSearch(_Search):
    pass


routes = APIRouter(prefix="/api/v1", tags=["search"])


@routes.post("/runs/search", summary="Runs matching an MLflow filter, ordered and paged")
async def runs(ctx: Reads, body: RunSearch, principal: CurrentPrincipal, after: After = None) -> Response:
    require(principal, "read", body.experiment_ids)
    if body.offset is not None and body.page_token:
        raise invalid("give offset or page_token, not both")
    page_token = encode_page_token(body.offset) if body.offset is not None else body.page_token
    await ctx.consistent(after)
    found, token, total = await ctx.query(
        search_runs_counted,
        body.experiment_ids,
        body.filter,
        body.order_by,
        body.view,
        body.max_results,
        page_token,
        body.count,
    )
    answer: dict[str, Any] = {"runs": found, "next_page_token": token}
    if body.count:
        answer["total_count"] = total
    return json_response(answer)


@routes.post("/experiments/search", summary="Experiments matching an MLflow filter, ordered and paged")
async def experiments(ctx: Reads, body: ExperimentSearch, principal: CurrentPrincipal, after: After = None) -> Response:
    await ctx.consistent(after)
    found, token = await ctx.query(
        search_experiments, body.view, body.filter, body.order_by, body.max_results, body.page_token
    )
    return json_response({"experiments": readable(principal, found), "next_page_token": token})
