"""runstream's read API of promotion gates (/api/v1/registered-models/{name}/gates): a model's gates,
and a dry run of a move (what the gate would decide now, nothing written)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from runstream.base.auth import CurrentPrincipal, user_name
from runstream.base.responses import json_response
from runstream.lifecycle.gate_reads import Gates
from runstream.mlflow_api.registry_reads import Registry, canonical_stage

PREFIX = "/api/v1/registered-models/{name}/gates"


class Candidate(BaseModel):
    version: str | int
    kind: Literal["alias", "stage"] = "alias"


routes = APIRouter(prefix=PREFIX, tags=["registry"])


@routes.get("", summary="The model's promotion gates, by alias or stage")
async def list_gates(registry: Registry, gates: Gates, name: str) -> Response:
    model_id = str((await registry.model_row(name))["registered_model_id"])
    found = await gates.gates(model_id)
    return json_response({"name": name, "gates": [found[t].json() for t in sorted(found)]})


@routes.post("/{target}/check", summary="What the gate would decide on moving the target to a version now")
async def check_gate(gates: Gates, name: str, target: str, body: Candidate, principal: CurrentPrincipal) -> Response:
    target = canonical_stage(target) if body.kind == "stage" else target
    decision = await gates.check(name, body.kind, target, body.version, user_name(principal))
    if decision is None:
        return json_response({"allowed": True, "gate": None})
    return json_response({**decision.json(), "gate": target})
