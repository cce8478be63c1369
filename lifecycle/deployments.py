"""Deployment records: a deploy tool (or `runstream deploy`) reports which version of a model now
serves in an environment, or that none does; each report is an event of the model's history, shown on
the dashboard's timeline beside the aliases. The version must exist when reported."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from runstream.base.auth import CurrentPrincipal, user_name
from runstream.base.errors import invalid, not_found
from runstream.base.responses import json_response
from runstream.mlflow_api.registry_reads import REGISTRY, Registry
from runstream.mlflow_api.writer import Writer
from runstream.schemas.events import event
from runstream.schemas.validation import environment_problem
from runstream.store import registry as rq


class Deployed(BaseModel):
    environment: str
    version: str | int
    note: str = ""


class Undeployed(BaseModel):
    note: str = ""


def _environment(name: str) -> str:
    problem = environment_problem(name)
    if problem is not None:
        raise invalid(problem)
    return name


routes = APIRouter(prefix="/api/v1/registered-models/{name}/deployments", tags=["registry"])


@routes.post("", summary="Report that a version now serves in an environment")
async def record_deployment(
    w: Writer, reads: Registry, name: str, body: Deployed, principal: CurrentPrincipal
) -> Response:
    environment = _environment(body.environment)
    async with w.registry_lock:
        model_id, found = await reads.version(name, body.version)
        version = int(found["version"])
        deployed = event(
            "ModelDeployed",
            registered_model_id=model_id,
            environment=environment,
            version=version,
            note=body.note,
            user=user_name(principal),
        )
        await w.append([deployed], REGISTRY)
    return json_response({"name": name, "environment": environment, "version": str(version)})


@routes.delete("/{environment}", summary="Report that no version serves in the environment any more")
async def remove_deployment(
    w: Writer, reads: Registry, name: str, environment: str, principal: CurrentPrincipal, body: Undeployed | None = None
) -> Response:
    environment = _environment(environment)
    async with w.registry_lock:
        model_id = str((await reads.model_row(name))["registered_model_id"])
        serving = await w.ctx.query(rq.deployments, model_id)
        if not any(d["environment"] == environment for d in serving):
            raise not_found(f"no version of model {name!r} serves in {environment!r}")
        note = body.note if body is not None else ""
        removed = event(
            "ModelUndeployed",
            registered_model_id=model_id,
            environment=environment,
            note=note,
            user=user_name(principal),
        )
        await w.append([removed], REGISTRY)
    return json_response({})
