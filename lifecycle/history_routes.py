"""A registered model's history under /api/v1: every alias and stage change (with the gates'
decisions and the deployments), where each version serves now, and what an alias named at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from runstream.base.errors import not_found
from runstream.base.responses import json_response
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.mlflow_api.registry_reads import Registry, RegistryReads, model_missing
from runstream.store import registry as rq

history = APIRouter(prefix="/api/v1", tags=["registry"])


async def model_id(ctx: MlflowContext, reads: RegistryReads, name: str) -> str:
    await reads.settled()
    found = await ctx.query(rq.model_row_any, name)
    if found is None:
        raise model_missing(name)
    return str(found["registered_model_id"])


@history.get(
    "/registered-models/{name}/history",
    summary="Every alias and stage change of a model (and its version and model events), oldest first",
)
async def model_history(reads: Registry, ctx: Mlflow, name: str) -> Response:
    found = await model_id(ctx, reads, name)
    changes, decided = await ctx.query(rq.history, found), await ctx.query(rq.gate_decisions, found)
    deployed = await ctx.query(rq.deployment_history, found)
    # A gate's decision is appended just before the move it allowed: first among equal times.
    events = sorted(decided + changes + deployed, key=lambda e: int(e["time"]))
    return json_response({"name": name, "events": events})


@history.get(
    "/registered-models/{name}/deployments",
    summary="Where a version of the model serves now, as deploy tools reported it: version, since, user, note",
)
async def model_deployments(ctx: Mlflow, reads: Registry, name: str) -> Response:
    await reads.settled()
    model_id = str((await reads.model_row(name))["registered_model_id"])
    return json_response({"name": name, "deployments": await ctx.query(rq.deployments, model_id)})


@history.get(
    "/registered-models/{name}/aliases/{alias}",
    summary="The version an alias named at a time (ms since the epoch; default now), who set it and when",
)
async def alias_at(
    reads: Registry, ctx: Mlflow, name: str, alias: str, at: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None
) -> Response:
    moment = at if at is not None else 2**63 - 1
    found = await ctx.query(rq.alias_at, await model_id(ctx, reads, name), alias, moment)
    if found is None:
        raise not_found(f"alias {alias!r} of model {name!r} did not exist at {at}")
    return json_response({"name": name, "alias": alias, "at": at, **found})
