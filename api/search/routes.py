"""POST /api/v1/runs/search and /api/v1/experiments/search: MLflow's filter grammar, JSON bodies."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.context import After, ReadContext, View
from api.search.runs import search_experiments, search_runs
from api.search.sql import MAX_RESULTS
from runstream.auth import CurrentPrincipal, readable, require
from runstream.responses import json_response


class _Search(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field (filter_string) is an error, not ignored

    filter: str = Field("", description="MLflow filter, e.g. metrics.acc > 0.9 AND params.lr = '0.1'")
    order_by: list[str] = Field(default_factory=list, description='e.g. ["metrics.acc DESC", "attributes.start_time"]')
    view: View = "active"
    max_results: int = Field(1000, ge=1, le=MAX_RESULTS)
    page_token: str | None = None


class RunSearch(_Search):
    experiment_ids: list[str] = Field(min_length=1)


class ExperimentSearch(_Search):
    pass


def search_router(ctx: ReadContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["search"])

    @router.post("/runs/search", summary="Runs matching an MLflow filter, ordered and paged")
    async def runs(body: RunSearch, principal: CurrentPrincipal, after: After = None) -> Response:
        require(principal, "read", body.experiment_ids)
        await ctx.consistent(after)
        found, token = await ctx.query(
            search_runs, body.experiment_ids, body.filter, body.order_by, body.view, body.max_results, body.page_token
        )
        return json_response({"runs": found, "next_page_token": token})

    @router.post("/experiments/search", summary="Experiments matching an MLflow filter, ordered and paged")
    async def experiments(body: ExperimentSearch, principal: CurrentPrincipal, after: After = None) -> Response:
        await ctx.consistent(after)
        found, token = await ctx.query(
            search_experiments, body.view, body.filter, body.order_by, body.max_results, body.page_token
        )
        return json_response({"experiments": readable(principal, found), "next_page_token": token})

    return router
