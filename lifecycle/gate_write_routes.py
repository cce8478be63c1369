"""runstream's write API of promotion gates: set or drop a model's gate (as the model tags that hold
it, lifecycle/gate_policy.py), and move an alias or a stage through it (lifecycle/promotions.py); the MLflow
endpoints that move them go through the same gates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.base.auth import CurrentPrincipal, user_name
from runstream.base.errors import invalid, not_found
from runstream.base.responses import json_response
from runstream.lifecycle.gate_policy import Decision, Gate, canonical_target, gate_tags, parse_condition
from runstream.lifecycle.gate_reads import Gates
from runstream.lifecycle.promotions import Promoting
from runstream.mlflow_api.registry_reads import REGISTRY, Registry, RegistryReads, canonical_stage
from runstream.mlflow_api.registry_writer import check_alias
from runstream.mlflow_api.writer import MlflowWriter, Writer
from runstream.schemas.events import event
from runstream.schemas.validation import MAX_ALIAS
from runstream.store.search.lexer import InvalidSearch


class GateBody(BaseModel):
    condition: str
    approvers: list[str] = Field(default_factory=list, description="Users who may move the target (auth on)")


class AliasMove(BaseModel):
    version: str | int


class StageMove(BaseModel):
    stage: str
    archive_existing_versions: bool = False


def _target(target: str) -> str:
    if not target or "." in target or len(target) > MAX_ALIAS:
        raise invalid(f"a gate's target is an alias or a stage (no '.', at most {MAX_ALIAS} characters): {target!r}")
    return canonical_target(target)


def _moved(decision: Decision | None) -> dict[str, Any]:
    return {"gate": None if decision is None else decision.json()}


routes = APIRouter(prefix="/api/v1/registered-models/{name}", tags=["registry"])


async def save(
    w: MlflowWriter, registry: RegistryReads, name: str, tags: dict[str, str | None], principal: CurrentPrincipal
) -> None:
    async with w.registry_lock:
        model_id = str((await registry.model_row(name))["registered_model_id"])
        who = user_name(principal)
        await w.append(
            [
                event("RegisteredModelTagSet", registered_model_id=model_id, key=k, value=v, user=who)
                if v is not None
                else event("RegisteredModelTagDeleted", registered_model_id=model_id, key=k, user=who)
                for k, v in tags.items()
            ],
            REGISTRY,
        )


@routes.put("/gates/{target}", summary="Set the gate of an alias or a stage")
async def set_gate(
    w: Writer, registry: Registry, name: str, target: str, body: GateBody, principal: CurrentPrincipal
) -> Response:
    target = _target(target)
    try:
        parse_condition(body.condition)
    except InvalidSearch as exc:
        raise invalid(f"invalid gate condition: {exc}") from exc
    approvers = [a.strip() for a in body.approvers if a.strip()]
    if any("," in a for a in approvers):
        raise invalid("an approver's name cannot hold a comma")
    await save(w, registry, name, gate_tags(target, body.condition, approvers), principal)
    return json_response(Gate(target, body.condition, tuple(approvers)).json())


@routes.delete("/gates/{target}", summary="Drop the gate of an alias or a stage")
async def delete_gate(
    w: Writer, registry: Registry, gates: Gates, name: str, target: str, principal: CurrentPrincipal
) -> Response:
    target = _target(target)
    model_id = str((await registry.model_row(name))["registered_model_id"])
    if target not in await gates.gates(model_id):
        raise not_found(f"model {name!r} has no gate for {target!r}")
    await save(w, registry, name, dict.fromkeys(gate_tags(target, "", [])), principal)  # both tags deleted
    return json_response({})


@routes.post("/aliases/{alias}", summary="Point an alias at a version, through its gate")
async def move_alias(
    promotions: Promoting, name: str, alias: str, body: AliasMove, principal: CurrentPrincipal
) -> Response:
    check_alias(alias)
    return json_response(_moved(await promotions.move_alias(name, alias, body.version, principal)))


@routes.post("/versions/{version}/stage", summary="Move a version to a stage, through its gate")
async def move_stage(
    promotions: Promoting, name: str, version: str, body: StageMove, principal: CurrentPrincipal
) -> Response:
    stage = canonical_stage(body.stage)
    _, decision = await promotions.move_stage(name, stage, version, body.archive_existing_versions, principal)
    return json_response(_moved(decision))
