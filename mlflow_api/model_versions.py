"""MLflow's model versions: get, search, download URI; create (numbered 1, 2, 3... with no gap
across writers), update, stage transitions (through the model's promotion gates), delete, tags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from runstream.base.auth import CurrentPrincipal, user_name
from runstream.base.errors import unavailable
from runstream.mlflow_api.context import Mlflow
from runstream.mlflow_api.registry_reads import (
    Registry,
    SearchVersions,
    canonical_stage,
)
from runstream.mlflow_api.registry_writer import (
    CreateVersion,
    Promoter,
    TransitionStage,
    UpdateVersion,
    VersionRef,
    VersionTag,
    VersionTagRef,
    append,
    model,
    version,
    version_event,
    version_json,
)
from runstream.mlflow_api.requests import check_name
from runstream.mlflow_api.shapes import mlflow_json, ok
from runstream.mlflow_api.writer import Writer
from runstream.schemas.events import event
from runstream.store import registry as rq
from runstream.store.logged_models import logged_model

_MAX_CLAIMS = 10  # tries at a version number that other writers keep winning

read_routes = APIRouter(tags=["mlflow-registry"])
write_routes = APIRouter(tags=["mlflow-registry"])


@read_routes.get("/model-versions/get")
async def get_model_version(reads: Registry, name: str, version: str) -> Response:
    _, found = await reads.version(name, version)
    return mlflow_json({"model_version": found})


@read_routes.get("/model-versions/search")
async def search_model_versions(
    ctx: Mlflow,
    reads: Registry,
    query: Annotated[SearchVersions, Query()],
    order_by: Annotated[list[str] | None, Query()] = None,
) -> Response:
    await reads.settled()
    found, token = await ctx.query(
        rq.search_versions, query.filter, order_by or [], query.max_results, query.page_token
    )
    return mlflow_json({"model_versions": found, "next_page_token": token})


@read_routes.get("/model-versions/get-download-uri")
async def get_model_version_download_uri(reads: Registry, name: str, version: str) -> Response:
    _, found = await reads.version(name, version)
    return mlflow_json({"artifact_uri": await reads.download_uri(found["source"])})


@write_routes.post("/model-versions/create")
async def create_model_version(
    w: Writer, reads: Registry, body: CreateVersion, principal: CurrentPrincipal
) -> Response:
    tags = {t.key: t.value for t in body.tags}
    for key in tags:
        check_name("tag", key)
    run_id = body.run_id or None
    if run_id:
        await w.run(run_id)  # 404 for a run that does not exist
    elif body.model_id:  # MLflow 3 registers a logged model: the version's run is the model's run
        logged = await w.ctx.query(logged_model, body.model_id)
        run_id = logged["source_run_id"] if logged else None
    who = user_name(principal)
    async with w.registry_lock:
        model_id = await model(reads, body.name)
        for _ in range(_MAX_CLAIMS):
            # Claim the next number; the first claim of a number in the log wins it (the view
            # reads so). Another process may have claimed it unseen: then take the next one.
            number = await w.ctx.query(rq.max_version, model_id) + 1
            created = event(
                "ModelVersionCreated",
                registered_model_id=model_id,
                version=number,
                source=body.source,
                run_id=run_id,
                run_link=body.run_link or None,
                logged_model_id=body.model_id or None,
                description=body.description,
                tags={},  # set below, once the number is ours: a lost claim must carry none
                user=who,
            )
            await append(w, [created])
            await reads.settled()
            if await w.ctx.query(rq.creation_event, model_id, number) == created[1]["header"]["event_id"]:
                break
        else:
            raise unavailable("other writers took every version number tried; retry")
        tag_events = [
            event("ModelVersionTagSet", registered_model_id=model_id, version=number, key=k, value=v, user=who)
            for k, v in tags.items()
        ]
        if tag_events:
            await append(w, tag_events)
    return await version_json(reads, body.name, number)


@write_routes.patch("/model-versions/update")
async def update_model_version(
    w: Writer, reads: Registry, body: UpdateVersion, principal: CurrentPrincipal
) -> Response:
    number = await version_event(
        w, reads, body.name, body.version, "ModelVersionUpdated", principal, description=body.description
    )
    return await version_json(reads, body.name, number)


@write_routes.post("/model-versions/transition-stage")
async def transition_model_version_stage(
    reads: Registry, promotions: Promoter, body: TransitionStage, principal: CurrentPrincipal
) -> Response:
    number, _ = await promotions.move_stage(
        body.name, canonical_stage(body.stage), body.version, body.archive_existing_versions, principal
    )
    return await version_json(reads, body.name, number)


@write_routes.delete("/model-versions/delete")
async def delete_model_version(w: Writer, reads: Registry, body: VersionRef, principal: CurrentPrincipal) -> Response:
    async with w.registry_lock:
        model_id, number, found = await version(reads, body.name, body.version)
        who = user_name(principal)
        # MLflow drops the version's aliases with it; here each drop is an event of the history.
        events = [
            event("RegisteredModelAliasDeleted", registered_model_id=model_id, alias=alias, user=who)
            for alias in found["aliases"]
        ]
        events.append(event("ModelVersionDeleted", registered_model_id=model_id, version=number, user=who))
        await append(w, events)
    return ok()


@write_routes.post("/model-versions/set-tag")
async def set_model_version_tag(w: Writer, reads: Registry, body: VersionTag, principal: CurrentPrincipal) -> Response:
    check_name("tag", body.key)
    await version_event(
        w, reads, body.name, body.version, "ModelVersionTagSet", principal, key=body.key, value=body.value
    )
    return ok()


@write_routes.delete("/model-versions/delete-tag")
async def delete_model_version_tag(
    w: Writer, reads: Registry, body: VersionTagRef, principal: CurrentPrincipal
) -> Response:
    await version_event(w, reads, body.name, body.version, "ModelVersionTagDeleted", principal, key=body.key)
    return ok()
