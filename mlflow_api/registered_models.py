"""MLflow's registered models: get, search, latest versions, a version by alias; create, rename,
update, delete, tags, and aliases (moved through the model's promotion gates)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from runstream.base.auth import CurrentPrincipal, user_name
from runstream.base.errors import invalid
from runstream.mlflow_api.context import Mlflow
from runstream.mlflow_api.registry_reads import (
    LatestVersions,
    Registry,
    SearchModels,
    canonical_stage,
)
from runstream.mlflow_api.registry_writer import (
    AliasRef,
    CreateModel,
    ModelRef,
    ModelTag,
    ModelTagRef,
    Promoter,
    RenameModel,
    SetAlias,
    UpdateModel,
    append,
    check_alias,
    check_model_name,
    model,
    model_event,
    model_json,
    name_free,
)
from runstream.mlflow_api.requests import check_name
from runstream.mlflow_api.shapes import mlflow_json, ok
from runstream.mlflow_api.writer import Writer
from runstream.schemas.events import event
from runstream.schemas.validation import STAGES
from runstream.store import registry as rq

read_routes = APIRouter(tags=["mlflow-registry"])
write_routes = APIRouter(tags=["mlflow-registry"])


@read_routes.get("/registered-models/get")
async def get_registered_model(ctx: Mlflow, reads: Registry, name: str) -> Response:
    row = await reads.model_row(name)
    return mlflow_json({"registered_model": await ctx.query(rq.model_shape, row)})


@read_routes.get("/registered-models/search")
async def search_registered_models(
    ctx: Mlflow,
    reads: Registry,
    query: Annotated[SearchModels, Query()],
    order_by: Annotated[list[str] | None, Query()] = None,
) -> Response:
    await reads.settled()
    found, token = await ctx.query(rq.search_models, query.filter, order_by or [], query.max_results, query.page_token)
    return mlflow_json({"registered_models": found, "next_page_token": token})


@read_routes.post("/registered-models/get-latest-versions")
async def get_latest_versions(ctx: Mlflow, reads: Registry, body: LatestVersions) -> Response:
    row = await reads.model_row(body.name)
    stages = [canonical_stage(s) for s in body.stages] or list(STAGES)
    found = await ctx.query(rq.latest_versions, row, stages)
    return mlflow_json({"model_versions": found})


@read_routes.get("/registered-models/get-latest-versions")
async def get_latest_versions_by_query(
    ctx: Mlflow, reads: Registry, query: Annotated[LatestVersions, Query()]
) -> Response:
    return await get_latest_versions(ctx, reads, query)  # MLflow takes both; its Java client sends a GET


@read_routes.get("/registered-models/alias")
async def get_model_version_by_alias(reads: Registry, name: str, alias: str) -> Response:
    _, held = await reads.versions(name)
    found = [v for v in held if alias in v["aliases"]]
    if not found:
        raise invalid(f"Registered model alias {alias} not found.")  # MLflow's code for it
    return mlflow_json({"model_version": found[0]})


@write_routes.post("/registered-models/create")
async def create_registered_model(
    w: Writer, reads: Registry, body: CreateModel, principal: CurrentPrincipal
) -> Response:
    check_model_name(body.name)
    tags = {t.key: t.value for t in body.tags}
    for key in tags:
        check_name("tag", key)
    async with w.registry_lock:
        await reads.settled()
        await name_free(w, body.name)
        created = event(
            "RegisteredModelCreated",
            registered_model_id=uuid.uuid4().hex,
            name=body.name,
            description=body.description,
            tags=tags,
            user=user_name(principal),
        )
        await append(w, [created])
    return await model_json(w, reads, body.name)


@write_routes.post("/registered-models/rename")
async def rename_registered_model(
    w: Writer, reads: Registry, body: RenameModel, principal: CurrentPrincipal
) -> Response:
    check_model_name(body.new_name)
    async with w.registry_lock:
        model_id = await model(reads, body.name)
        await name_free(w, body.new_name)
        renamed = event(
            "RegisteredModelRenamed", registered_model_id=model_id, name=body.new_name, user=user_name(principal)
        )
        await append(w, [renamed])
    return await model_json(w, reads, body.new_name)


@write_routes.patch("/registered-models/update")
async def update_registered_model(
    w: Writer, reads: Registry, body: UpdateModel, principal: CurrentPrincipal
) -> Response:
    await model_event(w, reads, body.name, "RegisteredModelUpdated", principal, description=body.description)
    return await model_json(w, reads, body.name)


@write_routes.delete("/registered-models/delete")
async def delete_registered_model(w: Writer, reads: Registry, body: ModelRef, principal: CurrentPrincipal) -> Response:
    await model_event(w, reads, body.name, "RegisteredModelDeleted", principal)
    return ok()


@write_routes.post("/registered-models/set-tag")
async def set_registered_model_tag(
    w: Writer, reads: Registry, promotions: Promoter, body: ModelTag, principal: CurrentPrincipal
) -> Response:
    check_name("tag", body.key)
    promotions.check_tag(body.key, body.value)
    await model_event(w, reads, body.name, "RegisteredModelTagSet", principal, key=body.key, value=body.value)
    return ok()


@write_routes.delete("/registered-models/delete-tag")
async def delete_registered_model_tag(
    w: Writer, reads: Registry, body: ModelTagRef, principal: CurrentPrincipal
) -> Response:
    await model_event(w, reads, body.name, "RegisteredModelTagDeleted", principal, key=body.key)
    return ok()


@write_routes.post("/registered-models/alias")
async def set_registered_model_alias(promotions: Promoter, body: SetAlias, principal: CurrentPrincipal) -> Response:
    check_alias(body.alias)
    await promotions.move_alias(body.name, body.alias, body.version, principal)
    return ok()


@write_routes.delete("/registered-models/alias")
async def delete_registered_model_alias(
    w: Writer, reads: Registry, body: AliasRef, principal: CurrentPrincipal
) -> Response:
    async with w.registry_lock:
        model_id, held = await reads.versions(body.name)
        if any(body.alias in v["aliases"] for v in held):  # MLflow ignores an unknown alias: so do we
            deleted = event(
                "RegisteredModelAliasDeleted",
                registered_model_id=model_id,
                alias=body.alias,
                user=user_name(principal),
            )
            await append(w, [deleted])
    return ok()
