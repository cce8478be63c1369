"""MLflow 3's logged models: get and search (answered from ClickHouse, mlflow_api/models.py); create,
finalize, tags, params, delete, and runs/outputs; and MLflow 2's runs/log-model (the run's model
history tag). Writes go to the event log as events."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.base.errors import invalid, not_found
from runstream.eventlog.write_marks import model_entity, run_entity
from runstream.mlflow_api.context import Mlflow
from runstream.mlflow_api.models import SearchModels, model_json, search_models
from runstream.mlflow_api.requests import (
    MAX_PARAMS_TAGS_PER_BATCH,
    KeyValue,
    RunRef,
    check_batch_limit,
    check_name,
    distinct_params,
)
from runstream.mlflow_api.shapes import mlflow_json
from runstream.mlflow_api.writer import MlflowWriter, Writer, random_run_name, tag_events
from runstream.schemas.events import event
from runstream.store.logged_models import logged_model

read_routes = APIRouter(tags=["mlflow"])
write_routes = APIRouter(tags=["mlflow"])


LOGGED_MODELS_TAG = "mlflow.log-model.history"  # MLflow 2: the run's models, as a JSON list


_MODEL_JSON_FIELDS = {"artifact_path", "flavors", "utc_time_created", "run_id"}


# LoggedModelStatus by name or number, as protobuf JSON may carry it → the stored status.
_STATUSES: dict[str | int, str] = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    1: "PENDING",
    2: "READY",
    3: "FAILED",
}


class CreateLoggedModel(BaseModel):
    experiment_id: str
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)
    tags: list[KeyValue] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)


class FinalizeLoggedModel(BaseModel):
    status: str | int


class ModelTags(BaseModel):
    tags: list[KeyValue] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)


class ModelParams(BaseModel):
    params: list[KeyValue] = Field(default_factory=list)


class ModelOutput(BaseModel):
    model_id: str
    step: int = Field(0, ge=-(2**63), le=2**63 - 1)


class LogOutputs(RunRef):
    models: list[ModelOutput] = Field(default_factory=list)


class LogModel(RunRef):
    model_json: str


def _named(kind: str, items: list[KeyValue]) -> dict[str, str]:
    for item in items:
        check_name(kind, item.key)
    return {i.key: i.value for i in items}


async def existing(w: MlflowWriter, model_id: str) -> dict[str, Any]:
    await w.ctx.settled(model_entity(model_id))
    found = await w.ctx.query(logged_model, model_id)
    if found is None or found["deleted"]:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return found


async def written(w: MlflowWriter, model_id: str) -> Response:
    """The model as it reads after this process's writes: what MLflow's server answers."""
    return mlflow_json({"model": model_json(await existing(w, model_id))})


@read_routes.get("/logged-models/{model_id}")
async def get_logged_model(ctx: Mlflow, model_id: str, allow_deleted: bool = False) -> Response:
    await ctx.settled(model_entity(model_id))
    found = await ctx.query(logged_model, model_id)
    if found is None or (found["deleted"] and not allow_deleted):
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return mlflow_json({"model": model_json(found)})


@read_routes.post("/logged-models/search")
async def search_logged_models(ctx: Mlflow, body: SearchModels) -> Response:
    await ctx.settled_all()
    models, token = await ctx.query(search_models, body)
    return mlflow_json({"models": models, "next_page_token": token})


@write_routes.post("/logged-models")
async def create_logged_model(w: Writer, body: CreateLoggedModel) -> Response:
    experiment = await w.active_experiment(body.experiment_id)
    if body.source_run_id:
        await w.run(body.source_run_id)
    model_id = f"m-{uuid.uuid4().hex}"
    location = experiment["artifact_location"] or f"mlflow-artifacts:/{body.experiment_id}"
    created = event(
        "LoggedModelCreated",
        model_id=model_id,
        experiment_id=body.experiment_id,
        name=body.name or random_run_name(),
        model_type=body.model_type,
        source_run_id=body.source_run_id or None,
        artifact_uri=f"{location}/models/{model_id}/artifacts",
        tags=_named("tag", body.tags),
        params=distinct_params(body.params),
    )
    await w.append([created], model_entity(model_id))
    return await written(w, model_id)


@write_routes.patch("/logged-models/{model_id}")
async def finalize_logged_model(w: Writer, model_id: str, body: FinalizeLoggedModel) -> Response:
    status = _STATUSES.get(body.status)
    if status is None:
        raise invalid(f"invalid logged model status {body.status!r}: LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED")
    await existing(w, model_id)
    finalized = event("LoggedModelFinalized", model_id=model_id, status=status, status_message=None)
    await w.append([finalized], model_entity(model_id))
    return await written(w, model_id)


@write_routes.delete("/logged-models/{model_id}")
async def delete_logged_model(w: Writer, model_id: str) -> Response:
    await existing(w, model_id)
    await w.append([event("LoggedModelDeleted", model_id=model_id)], model_entity(model_id))
    return mlflow_json({})


@write_routes.patch("/logged-models/{model_id}/tags")
async def set_logged_model_tags(w: Writer, model_id: str, body: ModelTags) -> Response:
    await existing(w, model_id)
    tags = _named("tag", body.tags)
    if tags:
        await w.append([event("LoggedModelTagsSet", model_id=model_id, tags=tags)], model_entity(model_id))
    return await written(w, model_id)


@write_routes.delete("/logged-models/{model_id}/tags/{tag_key}")
async def delete_logged_model_tag(w: Writer, model_id: str, tag_key: str) -> Response:
    found = await existing(w, model_id)
    if tag_key not in found["tags"]:
        raise not_found(f"No tag with key {tag_key!r} on logged model {model_id}")
    deleted = event("LoggedModelTagDeleted", model_id=model_id, key=tag_key)
    await w.append([deleted], model_entity(model_id))
    return mlflow_json({})


@write_routes.post("/logged-models/{model_id}/params")
async def log_logged_model_params(w: Writer, model_id: str, body: ModelParams) -> Response:
    check_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(body.params))
    for item in body.params:
        check_name("param", item.key)
    params = distinct_params(body.params)
    await existing(w, model_id)
    if params:
        logged = event("LoggedModelParamsLogged", model_id=model_id, params=params)
        await w.append([logged], model_entity(model_id))
    return mlflow_json({})


@write_routes.post("/runs/outputs")
async def log_outputs(w: Writer, body: LogOutputs) -> Response:
    run_id = body.id
    await w.active_run(run_id)
    for output in body.models:
        await existing(w, output.model_id)
    if body.models:
        models = [{"model_id": m.model_id, "step": m.step} for m in body.models]
        await w.append([event("RunOutputsLogged", run_id=run_id, models=models)], run_entity(run_id))
    return mlflow_json({})


@write_routes.post("/runs/log-model")
async def log_model(w: Writer, body: LogModel) -> Response:
    """MLflow's record of a model logged to a run (2.x): appended to the run's history tag."""
    try:
        model = json.loads(body.model_json)
    except ValueError as exc:
        raise invalid(f"Malformed model info: model_json is not valid JSON: {exc}") from exc
    if not isinstance(model, dict):
        raise invalid("Malformed model info: model_json must be a JSON object")
    if missing := _MODEL_JSON_FIELDS - set(model):
        raise invalid(f"Model json is missing mandatory fields: {sorted(missing)}")
    run_id = body.id
    async with w.lock(run_id):  # read-modify-write of the tag, atomic per run
        await w.active_run(run_id)
        found = await w.ctx.run(run_id)
        assert found is not None  # checked above; runs are never removed
        try:
            history = json.loads(found["tags"].get(LOGGED_MODELS_TAG, "[]"))
        except ValueError:
            history = None
        if not isinstance(history, list):
            raise invalid(f"the run's {LOGGED_MODELS_TAG} tag is not a JSON list: set it back or delete it")
        await w.append(tag_events(run_id, {LOGGED_MODELS_TAG: json.dumps([*history, model])}), run_entity(run_id))
    return mlflow_json({})
