"""MLflow's model registry writes → registry events (schemas/avro/registered_model_*, model_version_*)
appended to the event log, as the tracking writes are (mlflow_api/writes.py).

A model is named in events by a stable id given at creation, so a rename keeps its versions, aliases
and history, and a name deleted and created again is a new model. Every registry write of this
process runs its check-then-append under one lock, after its earlier registry writes are applied,
so names stay unique among this process's writes. Version numbers are 1, 2, 3... per model with no
gap or repeat across any number of writer processes: a version is created by the first claim of its
number in the log (all of a model's events share a partition, so the log orders them), and a writer
reads its claim back and claims the next number if another process's claim came first. Numbers of
deleted versions are not reused, as in MLflow. Names are checked by each process on its own: two
gateways creating the same name at once could both succeed, so route a client's registry writes to
one gateway, as for read-your-writes."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.base.auth import CurrentPrincipal, Principal, user_name
from runstream.base.errors import invalid, unavailable
from runstream.mlflow_api.models import logged_model
from runstream.mlflow_api.registry_routes import REGISTRY, RegistryReads, canonical_stage
from runstream.mlflow_api.requests import KeyValue, check_name
from runstream.mlflow_api.shapes import mlflow_json
from runstream.mlflow_api.writes import Event, MlflowWriter, already_exists
from runstream.schemas.events import event
from runstream.schemas.validation import MAX_MODEL_NAME
from runstream.store import registry as rq

_RESERVED_ALIAS = "latest"
_MAX_CLAIMS = 10


class ModelRef(BaseModel):
    name: str


class CreateModel(ModelRef):
    tags: list[KeyValue] = Field(default_factory=list)
    description: str = ""


class RenameModel(ModelRef):
    new_name: str


class UpdateModel(ModelRef):
    description: str = ""


class ModelTag(ModelRef):
    key: str
    value: str = ""


class ModelTagRef(ModelRef):
    key: str


class AliasRef(ModelRef):
    alias: str


class SetAlias(AliasRef):
    version: str | int


class CreateVersion(ModelRef):
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str | None = None
    description: str = ""
    model_id: str | None = None  # the 3.x client's logged model


class VersionRef(ModelRef):
    version: str | int


class UpdateVersion(VersionRef):
    description: str = ""


class TransitionStage(VersionRef):
    stage: str
    archive_existing_versions: bool = False


class VersionTag(VersionRef):
    key: str
    value: str = ""


class VersionTagRef(VersionRef):
    key: str


def check_model_name(name: str) -> None:
    """MLflow 3's rule (2.x is laxer): not blank, no '/' or ':'."""
    if not name.strip():
        raise invalid("Missing value for required parameter 'name'.")
    if "/" in name or ":" in name:
        raise invalid(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if len(name) > MAX_MODEL_NAME:
        raise invalid(f"Model name longer than {MAX_MODEL_NAME} characters.")


def check_alias(alias: str) -> None:
    if alias.lower() == _RESERVED_ALIAS:
        raise invalid("'latest' alias name (case insensitive) is reserved.")
    if len(alias) > 1 and alias[0] in "vV" and alias[1:].isdigit():
        raise invalid(f"Version alias name '{alias}' is reserved.")


class Gatekeeper(Protocol):
    """What a move of an alias or a stage goes through: the model's promotion gates
    (lifecycle/promotions.py, given by the server's composition)."""

    def check_tag(self, key: str, value: str) -> None: ...

    async def move_alias(self, name: str, alias: str, ref: str | int, principal: Principal | None) -> object: ...

    async def move_stage(
        self, name: str, stage: str, ref: str | int, archive_others: bool, principal: Principal | None
    ) -> tuple[int, object]: ...


def mlflow_registry_write_router(w: MlflowWriter, promotions: Gatekeeper) -> APIRouter:
    router = APIRouter(tags=["mlflow-registry"])
    reads = RegistryReads(w.ctx)
    lock = w.registry_lock

    async def append(events: list[Event]) -> None:
        await w.append(events, REGISTRY)

    async def name_free(name: str) -> None:
        if await w.ctx.query(rq.model_row, name) is not None:
            raise already_exists(f"Registered Model (name={name}) already exists.")

    async def model(name: str) -> str:
        return str((await reads.model_row(name))["registered_model_id"])

    async def model_json(name: str) -> Response:
        row = await reads.model_row(name)
        return mlflow_json({"registered_model": await w.ctx.query(rq.model_shape, row)})

    async def version_json(name: str, number: int) -> Response:
        _, found = await reads.version(name, number)
        return mlflow_json({"model_version": found})

    async def version(name: str, version: str | int) -> tuple[str, int, dict[str, Any]]:
        """The live version's model id, number and ModelVersion JSON."""
        model_id, found = await reads.version(name, version)
        return model_id, int(found["version"]), found

    async def model_event(name: str, kind: str, principal: Principal | None, **fields: Any) -> None:
        """One event about a live model, checked and appended under the lock."""
        async with lock:
            model_id = await model(name)
            await append([event(kind, registered_model_id=model_id, user=user_name(principal), **fields)])

    async def version_event(name: str, ref: str | int, kind: str, principal: Principal | None, **fields: Any) -> int:
        """One event about a live version, checked and appended under the lock; its number."""
        async with lock:
            model_id, number, _ = await version(name, ref)
            await append(
                [event(kind, registered_model_id=model_id, version=number, user=user_name(principal), **fields)]
            )
        return number

    def ok() -> Response:
        return mlflow_json({})

    @router.post("/registered-models/create")
    async def create_registered_model(body: CreateModel, principal: CurrentPrincipal) -> Response:
        check_model_name(body.name)
        tags = {t.key: t.value for t in body.tags}
        for key in tags:
            check_name("tag", key)
        async with lock:
            await reads.settled()
            await name_free(body.name)
            created = event(
                "RegisteredModelCreated",
                registered_model_id=uuid.uuid4().hex,
                name=body.name,
                description=body.description,
                tags=tags,
                user=user_name(principal),
            )
            await append([created])
        return await model_json(body.name)

    @router.post("/registered-models/rename")
    async def rename_registered_model(body: RenameModel, principal: CurrentPrincipal) -> Response:
        check_model_name(body.new_name)
        async with lock:
            model_id = await model(body.name)
            await name_free(body.new_name)
            renamed = event(
                "RegisteredModelRenamed", registered_model_id=model_id, name=body.new_name, user=user_name(principal)
            )
            await append([renamed])
        return await model_json(body.new_name)

    @router.patch("/registered-models/update")
    async def update_registered_model(body: UpdateModel, principal: CurrentPrincipal) -> Response:
        await model_event(body.name, "RegisteredModelUpdated", principal, description=body.description)
        return await model_json(body.name)

    @router.delete("/registered-models/delete")
    async def delete_registered_model(body: ModelRef, principal: CurrentPrincipal) -> Response:
        await model_event(body.name, "RegisteredModelDeleted", principal)
        return ok()

    @router.post("/registered-models/set-tag")
    async def set_registered_model_tag(body: ModelTag, principal: CurrentPrincipal) -> Response:
        check_name("tag", body.key)
        promotions.check_tag(body.key, body.value)
        await model_event(body.name, "RegisteredModelTagSet", principal, key=body.key, value=body.value)
        return ok()

    @router.delete("/registered-models/delete-tag")
    async def delete_registered_model_tag(body: ModelTagRef, principal: CurrentPrincipal) -> Response:
        await model_event(body.name, "RegisteredModelTagDeleted", principal, key=body.key)
        return ok()

    @router.post("/registered-models/alias")
    async def set_registered_model_alias(body: SetAlias, principal: CurrentPrincipal) -> Response:
        check_alias(body.alias)
        await promotions.move_alias(body.name, body.alias, body.version, principal)
        return ok()

    @router.delete("/registered-models/alias")
    async def delete_registered_model_alias(body: AliasRef, principal: CurrentPrincipal) -> Response:
        async with lock:
            model_id, held = await reads.versions(body.name)
            if any(body.alias in v["aliases"] for v in held):  # MLflow ignores an unknown alias: so do we
                deleted = event(
                    "RegisteredModelAliasDeleted",
                    registered_model_id=model_id,
                    alias=body.alias,
                    user=user_name(principal),
                )
                await append([deleted])
        return ok()

    @router.post("/model-versions/create")
    async def create_model_version(body: CreateVersion, principal: CurrentPrincipal) -> Response:
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
        async with lock:
            model_id = await model(body.name)
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
                await append([created])
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
                await append(tag_events)
        return await version_json(body.name, number)

    @router.patch("/model-versions/update")
    async def update_model_version(body: UpdateVersion, principal: CurrentPrincipal) -> Response:
        number = await version_event(
            body.name, body.version, "ModelVersionUpdated", principal, description=body.description
        )
        return await version_json(body.name, number)

    @router.post("/model-versions/transition-stage")
    async def transition_model_version_stage(body: TransitionStage, principal: CurrentPrincipal) -> Response:
        number, _ = await promotions.move_stage(
            body.name, canonical_stage(body.stage), body.version, body.archive_existing_versions, principal
        )
        return await version_json(body.name, number)

    @router.delete("/model-versions/delete")
    async def delete_model_version(body: VersionRef, principal: CurrentPrincipal) -> Response:
        async with lock:
            model_id, number, found = await version(body.name, body.version)
            who = user_name(principal)
            # MLflow drops the version's aliases with it; here each drop is an event of the history.
            events = [
                event("RegisteredModelAliasDeleted", registered_model_id=model_id, alias=alias, user=who)
                for alias in found["aliases"]
            ]
            events.append(event("ModelVersionDeleted", registered_model_id=model_id, version=number, user=who))
            await append(events)
        return ok()

    @router.post("/model-versions/set-tag")
    async def set_model_version_tag(body: VersionTag, principal: CurrentPrincipal) -> Response:
        check_name("tag", body.key)
        await version_event(body.name, body.version, "ModelVersionTagSet", principal, key=body.key, value=body.value)
        return ok()

    @router.delete("/model-versions/delete-tag")
    async def delete_model_version_tag(body: VersionTagRef, principal: CurrentPrincipal) -> Response:
        await version_event(body.name, body.version, "ModelVersionTagDeleted", principal, key=body.key)
        return ok()

    return router
