"""MLflow's model registry writes → registry events (schemas/avro/registered_model_*, model_version_*)
appended to the event log, as the tracking writes are (writer.py); the routes are in
registered_models.py and model_versions.py.

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

from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.base.auth import Principal, user_name
from runstream.base.errors import invalid
from runstream.mlflow_api.registry_reads import REGISTRY, RegistryReads
from runstream.mlflow_api.requests import KeyValue
from runstream.mlflow_api.shapes import mlflow_json
from runstream.mlflow_api.writer import Event, MlflowWriter, already_exists
from runstream.schemas.events import event
from runstream.schemas.validation import MAX_MODEL_NAME
from runstream.store import registry as rq

_RESERVED_ALIAS = "latest"


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


def _gatekeeper(request: Request) -> Gatekeeper:
    return cast(Gatekeeper, request.app.state.gatekeeper)


Promoter = Annotated[Gatekeeper, Depends(_gatekeeper)]


async def append(w: MlflowWriter, events: list[Event]) -> None:
    await w.append(events, REGISTRY)


async def name_free(w: MlflowWriter, name: str) -> None:
    if await w.ctx.query(rq.model_row, name) is not None:
        raise already_exists(f"Registered Model (name={name}) already exists.")


async def model(reads: RegistryReads, name: str) -> str:
    return str((await reads.model_row(name))["registered_model_id"])


async def model_json(w: MlflowWriter, reads: RegistryReads, name: str) -> Response:
    row = await reads.model_row(name)
    return mlflow_json({"registered_model": await w.ctx.query(rq.model_shape, row)})


async def version_json(reads: RegistryReads, name: str, number: int) -> Response:
    _, found = await reads.version(name, number)
    return mlflow_json({"model_version": found})


async def version(reads: RegistryReads, name: str, version: str | int) -> tuple[str, int, dict[str, Any]]:
    """The live version's model id, number and ModelVersion JSON."""
    model_id, found = await reads.version(name, version)
    return model_id, int(found["version"]), found


async def model_event(
    w: MlflowWriter, reads: RegistryReads, name: str, kind: str, principal: Principal | None, **fields: Any
) -> None:
    """One event about a live model, checked and appended under the lock."""
    async with w.registry_lock:
        model_id = await model(reads, name)
        await append(w, [event(kind, registered_model_id=model_id, user=user_name(principal), **fields)])


async def version_event(
    w: MlflowWriter,
    reads: RegistryReads,
    name: str,
    ref: str | int,
    kind: str,
    principal: Principal | None,
    **fields: Any,
) -> int:
    """One event about a live version, checked and appended under the lock; its number."""
    async with w.registry_lock:
        model_id, number, _ = await version(reads, name, ref)
        await append(
            w, [event(kind, registered_model_id=model_id, version=number, user=user_name(principal), **fields)]
        )
    return number
