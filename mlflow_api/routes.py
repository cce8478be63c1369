"""MLflow's read endpoints: experiments, runs, search, metric history; answered from ClickHouse."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.api.routes import MAX_HISTORY_PAGE
from runstream.base.auth import CurrentPrincipal, Principal, readable, require
from runstream.base.errors import invalid, not_found
from runstream.eventlog.write_marks import experiment_entity, run_entity
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api import shapes
from runstream.mlflow_api.context import MlflowContext
from runstream.mlflow_api.shapes import mlflow_json
from runstream.store import queries
from runstream.store.search.runs import search_experiments, search_runs
from runstream.store.search.sql import MAX_RESULTS

MAX_BULK_RUNS = 100
MAX_DATASET_EXPERIMENTS = 20  # MLflow's limit on search-datasets
MAX_BULK_RESULTS = 2500


def view(view_type: str | int | None) -> str:
    found = shapes.VIEW_TYPES.get(str(view_type or "ACTIVE_ONLY"))
    if found is None:
        raise invalid(f"invalid view type {view_type!r}: ACTIVE_ONLY, DELETED_ONLY or ALL")
    return found


class SearchExperiments(BaseModel):
    max_results: int = Field(1000, ge=1, le=MAX_RESULTS)
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | int | None = None


class SearchDatasets(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)


class SearchRuns(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | int | None = None
    max_results: int = Field(1000, ge=1, le=MAX_RESULTS)
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


def mlflow_read_router(ctx: MlflowContext) -> APIRouter:
    router = APIRouter(tags=["mlflow"])

    @router.get("/experiments/get")
    async def get_experiment(experiment_id: str) -> Response:
        await ctx.settled(experiment_entity(experiment_id))
        found = await ctx.query(queries.experiment, experiment_id)
        if found is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return mlflow_json({"experiment": shapes.experiment(found)})

    @router.get("/experiments/get-by-name")
    async def get_experiment_by_name(experiment_name: str, principal: CurrentPrincipal) -> Response:
        await ctx.settled_all()  # any experiment may have been renamed to this name
        found = await ctx.query(mlflow_queries.experiment_by_name, experiment_name)
        if found is None:
            raise not_found(f"Could not find experiment with name '{experiment_name}'")
        require(principal, "read", [found["experiment_id"]])
        return mlflow_json({"experiment": shapes.experiment(found)})

    async def _search_experiments(body: SearchExperiments, principal: Principal | None) -> Response:
        await ctx.settled_all()
        found, token = await ctx.query(
            search_experiments, view(body.view_type), body.filter, body.order_by, body.max_results, body.page_token
        )
        shown = [shapes.experiment(e) for e in readable(principal, found)]
        return mlflow_json({"experiments": shown, "next_page_token": token})

    @router.post("/experiments/search")
    async def search_experiments_post(body: SearchExperiments, principal: CurrentPrincipal) -> Response:
        return await _search_experiments(body, principal)

    @router.get("/experiments/search")
    async def search_experiments_get(
        query: Annotated[SearchExperiments, Query()],
        principal: CurrentPrincipal,
        order_by: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        return await _search_experiments(query.model_copy(update={"order_by": order_by or []}), principal)

    @router.post("/experiments/search-datasets")
    async def search_datasets(body: SearchDatasets) -> Response:
        if not body.experiment_ids:
            raise invalid("SearchDatasets request must specify at least one experiment_id.")
        if len(body.experiment_ids) > MAX_DATASET_EXPERIMENTS:
            raise invalid(
                f"SearchDatasets request cannot specify more than {MAX_DATASET_EXPERIMENTS} experiment_ids. "
                f"Received {len(body.experiment_ids)} experiment_ids."
            )
        await ctx.settled_all()
        found = await ctx.query(mlflow_queries.dataset_summaries, body.experiment_ids)
        return mlflow_json({"dataset_summaries": found})

    @router.get("/runs/get")
    async def get_run(run_id: str | None = None, run_uuid: str | None = None) -> Response:
        run_id = shapes.run_id_param(run_id, run_uuid)
        await ctx.settled(run_entity(run_id))
        found = await ctx.query(mlflow_queries.run, run_id)
        if found is None:
            raise not_found(f"Run with id={run_id} not found")
        return mlflow_json({"run": found})

    @router.post("/runs/search")
    async def search_runs_post(body: SearchRuns) -> Response:
        if not body.experiment_ids:
            return mlflow_json({})
        await ctx.settled_all()

        def page(client: Any) -> tuple[list[dict[str, Any]], str | None]:
            found, token = search_runs(
                client,
                body.experiment_ids,
                body.filter,
                body.order_by,
                view(body.run_view_type),
                body.max_results,
                body.page_token,
            )
            return mlflow_queries.runs_with_inputs(client, found), token

        runs, token = await ctx.query(page)
        return mlflow_json({"runs": runs, "next_page_token": token})

    @router.get("/metrics/get-history")
    async def get_metric_history(
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

    @router.get("/metrics/get-history-bulk-interval")
    async def get_metric_history_bulk_interval(
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

    return router
