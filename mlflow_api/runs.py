"""MLflow's runs: get and search; create, update, delete and restore, params, tags, inputs, and
log-batch (params, tags and metrics in one append, durable whole or not at all)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from runstream.base.errors import invalid, not_found
from runstream.eventlog.write_marks import run_entity
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api import shapes
from runstream.mlflow_api.context import Mlflow
from runstream.mlflow_api.requests import (
    MAX_BATCH_BYTES,
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    CreateRun,
    DeleteTag,
    LogBatch,
    LogInputs,
    LogParam,
    RunRef,
    SearchRuns,
    SetTag,
    UpdateRun,
    check_batch_limit,
    check_name,
    cut,
    distinct_params,
    view,
)
from runstream.mlflow_api.shapes import mlflow_json, ok
from runstream.mlflow_api.writer import (
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    MlflowWriter,
    RunFacts,
    Writer,
    metric_events,
    param_events,
    random_run_name,
    tag_events,
)
from runstream.schemas.events import (
    event,
    now_ms,
)
from runstream.schemas.validation import MAX_PARAM_VALUE, MAX_RUN_TAG_VALUE
from runstream.store.search.runs import search_runs

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")

read_routes = APIRouter(tags=["mlflow"])
write_routes = APIRouter(tags=["mlflow"])


async def set_lifecycle(w: MlflowWriter, run_id: str, name: str, deleted: bool) -> Response:
    async with w.lock(run_id):
        facts = await w.run(run_id)
        await w.append([event(name, run_id=run_id)], run_entity(run_id))
        facts.deleted = deleted
        facts.info = None
    return ok()


@read_routes.get("/runs/get")
async def get_run(ctx: Mlflow, run_id: str | None = None, run_uuid: str | None = None) -> Response:
    run_id = shapes.run_id_param(run_id, run_uuid)
    found = await ctx.mlflow_run(run_id)
    if found is None:
        raise not_found(f"Run with id={run_id} not found")
    return mlflow_json({"run": found})


@read_routes.post("/runs/search")
async def search_runs_post(ctx: Mlflow, body: SearchRuns) -> Response:
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


@write_routes.post("/runs/create")
async def create_run(w: Writer, body: CreateRun) -> Response:
    experiment = await w.active_experiment(body.experiment_id)
    tags = {t.key: t.value for t in cut(body.tags, MAX_RUN_TAG_VALUE)}
    for key in tags:
        check_name("tag", key)
    named = tags.get(RUN_NAME_TAG)
    if body.run_name and named and body.run_name != named:
        raise invalid(f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with different values")
    tags[RUN_NAME_TAG] = run_name = body.run_name or named or random_run_name()
    run_id = uuid.uuid4().hex
    parent = tags.get(PARENT_RUN_TAG)
    location = experiment["artifact_location"] or shapes.default_artifact_location(body.experiment_id)
    run = {
        "run_id": run_id,
        "experiment_id": body.experiment_id,
        "run_name": run_name,
        "user_id": body.user_id,
        "start_time": now_ms() if body.start_time is None else body.start_time,
        "artifact_uri": f"{location}/{run_id}/artifacts",
    }
    created = event("RunCreated", **run, tags=tags, parent_run_id=parent if parent and _RUN_ID.match(parent) else None)
    await w.append([created], run_entity(run_id))
    info = {**run, "status": "RUNNING", "end_time": None, "lifecycle_stage": "active"}
    w.remember(run_id, RunFacts(deleted=False, info=info))
    response = shapes.run({**info, "metrics": {}, "params": {}, "tags": tags}, [])
    return mlflow_json({"run": response})


@write_routes.post("/runs/update")
async def update_run(w: Writer, body: UpdateRun) -> Response:
    run_id = body.id
    async with w.lock(run_id):
        facts = await w.active_run(run_id)
        events = [
            event("RunUpdated", run_id=run_id, status=body.status, end_time=body.end_time, run_name=body.run_name)
        ]
        if body.run_name:
            events.append(event("TagsSet", run_id=run_id, tags={RUN_NAME_TAG: body.run_name}))
        await w.append(events, run_entity(run_id))
        if facts.info is not None:
            changed = {"status": body.status, "end_time": body.end_time, "run_name": body.run_name}
            facts.info = {**facts.info, **{k: v for k, v in changed.items() if v is not None}}
            return mlflow_json({"run_info": shapes.run_info(facts.info)})
    found = await w.ctx.run(run_id)
    assert found is not None  # checked above; runs are never removed
    return mlflow_json({"run_info": shapes.run_info(found)})


@write_routes.post("/runs/delete")
async def delete_run(w: Writer, body: RunRef) -> Response:
    return await set_lifecycle(w, body.id, "RunDeleted", True)


@write_routes.post("/runs/restore")
async def restore_run(w: Writer, body: RunRef) -> Response:
    return await set_lifecycle(w, body.id, "RunRestored", False)


@write_routes.post("/runs/log-parameter")
async def log_param(w: Writer, body: LogParam) -> Response:
    run_id = body.id
    check_name("param", body.key)
    params = {p.key: p.value for p in cut([body], MAX_PARAM_VALUE)}
    async with w.lock(run_id):  # check-then-append, atomic per run
        facts = await w.active_run(run_id)
        events = param_events(run_id, facts, params)
        if events:
            await w.append(events, run_entity(run_id))
            facts.params.update(params)
    return ok()


@write_routes.post("/runs/set-tag")
async def set_tag(w: Writer, body: SetTag) -> Response:
    run_id = body.id
    check_name("tag", body.key)
    facts = await w.active_run(run_id)
    tags = {t.key: t.value for t in cut([body], MAX_RUN_TAG_VALUE)}
    await w.append(tag_events(run_id, tags), run_entity(run_id))
    if body.key == RUN_NAME_TAG:
        facts.info = None
    return ok()


@write_routes.post("/runs/delete-tag")
async def delete_tag(w: Writer, body: DeleteTag) -> Response:
    run_id = body.id
    await w.active_run(run_id)
    found = await w.ctx.run(run_id)
    if found is None or body.key not in found["tags"]:
        raise not_found(f"No tag with name: {body.key} in run with id {run_id}")
    await w.append([event("TagDeleted", run_id=run_id, key=body.key)], run_entity(run_id))
    return ok()


@write_routes.post("/runs/log-batch")
async def log_batch(w: Writer, body: LogBatch, request: Request) -> Response:
    size = len(await request.body())
    if size > MAX_BATCH_BYTES:
        raise invalid(f"Batched logging API requests must be at most {MAX_BATCH_BYTES} bytes, got {size}.")
    run_id = body.id
    check_batch_limit("metrics", MAX_METRICS_PER_BATCH, len(body.metrics))
    check_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(body.params))
    check_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(body.tags))
    total = len(body.metrics) + len(body.params) + len(body.tags)
    check_batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, total)
    for kind, items in (("metric", body.metrics), ("param", body.params), ("tag", body.tags)):
        for item in items:
            check_name(kind, item.key)
    params = distinct_params(cut(body.params, MAX_PARAM_VALUE))
    async with w.lock(run_id):  # check-then-append, atomic per run
        facts = await w.active_run(run_id)
        events = param_events(run_id, facts, params)
        if body.tags:
            events += tag_events(run_id, {t.key: t.value for t in cut(body.tags, MAX_RUN_TAG_VALUE)})
            if any(t.key == RUN_NAME_TAG for t in body.tags):
                facts.info = None
        if body.metrics:
            events += metric_events(run_id, body.metrics)
        if events:  # one append: the batch is durable whole or not at all
            await w.append(events, run_entity(run_id))
            facts.params.update(params)
    return ok()


@write_routes.post("/runs/log-inputs")
async def log_inputs(w: Writer, body: LogInputs) -> Response:
    run_id = body.id
    await w.active_run(run_id)
    datasets = [
        {
            "name": d.dataset.name,
            "digest": d.dataset.digest,
            "source_type": d.dataset.source_type,
            "source": d.dataset.source,
            "schema": d.dataset.schema_,
            "profile": d.dataset.profile,
            "tags": {t.key: t.value for t in d.tags},
        }
        for d in body.datasets
    ]
    events = [event("InputsLogged", run_id=run_id, datasets=datasets)] if datasets else []
    if body.models:
        events.append(event("ModelInputsLogged", run_id=run_id, model_ids=[m.model_id for m in body.models]))
    if events:
        await w.append(events, run_entity(run_id))
    return ok()
