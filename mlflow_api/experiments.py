"""MLflow's experiments: get, get by name, search, search datasets; create, rename, delete and restore
(with their runs), tags. Reads come from ClickHouse, writes go to the event log as events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from runstream.base.auth import CurrentPrincipal, Principal, readable, require
from runstream.base.errors import ApiError, invalid, not_found
from runstream.eventlog.write_marks import experiment_entity, run_entity
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api import shapes
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.mlflow_api.requests import (
    MAX_DATASET_EXPERIMENTS,
    CreateExperiment,
    DeleteExperimentTag,
    ExperimentRef,
    ExperimentTag,
    SearchDatasets,
    SearchExperiments,
    UpdateExperiment,
    check_name,
    view,
)
from runstream.mlflow_api.shapes import mlflow_json, ok
from runstream.mlflow_api.writer import (
    MlflowWriter,
    Writer,
)
from runstream.schemas.events import (
    DEFAULT_EXPERIMENT_ID,
    event,
)
from runstream.store import queries, run_inputs
from runstream.store.search.runs import search_experiments

read_routes = APIRouter(tags=["mlflow"])
write_routes = APIRouter(tags=["mlflow"])


async def _search_experiments(ctx: MlflowContext, body: SearchExperiments, principal: Principal | None) -> Response:
    await ctx.settled_all()
    found, token = await ctx.query(
        search_experiments, view(body.view_type), body.filter, body.order_by, body.max_results, body.page_token
    )
    shown = [shapes.experiment(e) for e in readable(principal, found)]
    return mlflow_json({"experiments": shown, "next_page_token": token})


async def set_experiment_lifecycle(w: MlflowWriter, experiment_id: str, deleted: bool) -> Response:
    """MLflow deletes (restores) an experiment's runs with it. It looks the experiment up among the
    ones it can leave: deleting a deleted one, or restoring an active one, finds none."""
    if (await w.experiment(experiment_id))["lifecycle_stage"] != ("active" if deleted else "deleted"):
        raise not_found(f"No Experiment with id={experiment_id} exists")
    await w.ctx.settled_all()  # every run this process created in it
    run_ids = await w.ctx.query(queries.experiment_run_ids, experiment_id, "active" if deleted else "deleted")
    run_event = "RunDeleted" if deleted else "RunRestored"
    events = [event("ExperimentDeleted" if deleted else "ExperimentRestored", experiment_id=experiment_id)]
    events += [event(run_event, run_id=run_id) for run_id in run_ids]
    await w.append(events, experiment_entity(experiment_id), *map(run_entity, run_ids))
    w.forget(run_ids)
    return ok()


@read_routes.get("/experiments/get")
async def get_experiment(ctx: Mlflow, experiment_id: str) -> Response:
    await ctx.settled(experiment_entity(experiment_id))
    found = await ctx.query(queries.experiment, experiment_id)
    if found is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return mlflow_json({"experiment": shapes.experiment(found)})


@read_routes.get("/experiments/get-by-name")
async def get_experiment_by_name(ctx: Mlflow, experiment_name: str, principal: CurrentPrincipal) -> Response:
    await ctx.settled_all()  # any experiment may have been renamed to this name
    found = await ctx.query(mlflow_queries.experiment_by_name, experiment_name)
    if found is None:
        raise not_found(f"Could not find experiment with name '{experiment_name}'")
    require(principal, "read", [found["experiment_id"]])
    return mlflow_json({"experiment": shapes.experiment(found)})


@read_routes.post("/experiments/search")
async def search_experiments_post(ctx: Mlflow, body: SearchExperiments, principal: CurrentPrincipal) -> Response:
    return await _search_experiments(ctx, body, principal)


@read_routes.get("/experiments/search")
async def search_experiments_get(
    ctx: Mlflow,
    query: Annotated[SearchExperiments, Query()],
    principal: CurrentPrincipal,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> Response:
    return await _search_experiments(ctx, query.model_copy(update={"order_by": order_by or []}), principal)


@read_routes.post("/experiments/search-datasets")
async def search_datasets(ctx: Mlflow, body: SearchDatasets) -> Response:
    if not body.experiment_ids:
        raise invalid("SearchDatasets request must specify at least one experiment_id.")
    if len(body.experiment_ids) > MAX_DATASET_EXPERIMENTS:
        raise invalid(
            f"SearchDatasets request cannot specify more than {MAX_DATASET_EXPERIMENTS} experiment_ids. "
            f"Received {len(body.experiment_ids)} experiment_ids."
        )
    await ctx.settled_all()
    found = await ctx.query(run_inputs.dataset_summaries, body.experiment_ids)
    return mlflow_json({"dataset_summaries": found})


@write_routes.post("/experiments/create")
async def create_experiment(w: Writer, body: CreateExperiment) -> Response:
    if not body.name:
        raise invalid(f"Invalid experiment name: '{body.name}'")
    await w.check_name_free(body.name)
    experiment_id = await w.new_experiment_id(body.name)
    location = body.artifact_location or shapes.default_artifact_location(experiment_id)
    tags = {t.key: t.value for t in body.tags}
    for key in tags:
        check_name("tag", key)
    created = event(
        "ExperimentCreated", experiment_id=experiment_id, name=body.name, artifact_location=location, tags=tags
    )
    await w.append([created], experiment_entity(experiment_id))
    return mlflow_json({"experiment_id": experiment_id})


@write_routes.post("/experiments/update")
async def update_experiment(w: Writer, body: UpdateExperiment) -> Response:
    if (await w.experiment(body.experiment_id))["lifecycle_stage"] != "active":
        raise ApiError(400, "INVALID_STATE", "Cannot rename a non-active experiment.")  # MLflow: a 500
    if not body.new_name:
        raise invalid("The experiment's new name must not be empty")
    await w.check_name_free(body.new_name, "BAD_REQUEST")  # MLflow's code for a rename onto a taken name
    renamed = event("ExperimentRenamed", experiment_id=body.experiment_id, name=body.new_name)
    await w.append([renamed], experiment_entity(body.experiment_id))
    return ok()


@write_routes.post("/experiments/delete")
async def delete_experiment(w: Writer, body: ExperimentRef) -> Response:
    if body.experiment_id == DEFAULT_EXPERIMENT_ID:
        raise invalid("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
    return await set_experiment_lifecycle(w, body.experiment_id, True)


@write_routes.post("/experiments/restore")
async def restore_experiment(w: Writer, body: ExperimentRef) -> Response:
    return await set_experiment_lifecycle(w, body.experiment_id, False)


@write_routes.post("/experiments/set-experiment-tag")
async def set_experiment_tag(w: Writer, body: ExperimentTag) -> Response:
    check_name("tag", body.key)
    await w.active_experiment(body.experiment_id)
    tag = event("ExperimentTagSet", experiment_id=body.experiment_id, key=body.key, value=body.value)
    await w.append([tag], experiment_entity(body.experiment_id))
    return ok()


@write_routes.post("/experiments/delete-experiment-tag")
async def delete_experiment_tag(w: Writer, body: DeleteExperimentTag) -> Response:
    found = await w.active_experiment(body.experiment_id)
    if body.key not in found["tags"]:
        raise not_found(f"No tag with name: {body.key} in experiment with id {body.experiment_id}")
    deleted = event("ExperimentTagDeleted", experiment_id=body.experiment_id, key=body.key)
    await w.append([deleted], experiment_entity(body.experiment_id))
    return ok()
