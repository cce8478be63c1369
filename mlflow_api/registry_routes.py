"""MLflow's model registry reads (registered-models/*, model-versions/*) and runstream's history of a
model's aliases and stages (/api/v1/registered-models/...), answered from ClickHouse once this
process's registry writes are applied (read-your-writes, as the other MLflow reads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.base.errors import ApiError, invalid, not_found
from runstream.base.responses import json_response
from runstream.mlflow_api.context import MlflowContext
from runstream.mlflow_api.models import logged_model
from runstream.mlflow_api.shapes import mlflow_json
from runstream.schemas.validation import STAGES
from runstream.store import registry as rq

REGISTRY = "registry"  # the write_marks entity of every registry write: names resolve across models
MAX_SOURCE_HOPS = 8  # a version registered from a version registered from ...: a cycle stops here


def model_missing(name: str) -> ApiError:
    return not_found(f"Registered Model with name={name} not found")


def version_number(version: str | int) -> int:
    try:
        number = int(version)
    except ValueError:
        number = 0
    if not 1 <= number < 2**63:
        raise invalid(f"Parameter 'version' must be a positive integer, got {version!r}")
    return number


def version_missing(name: str, version: str | int) -> ApiError:
    return not_found(f"Model Version (name={name}, version={version}) not found")


def pick_version(versions: list[dict[str, Any]], name: str, version: str | int) -> dict[str, Any]:
    """That version of the model's live versions (ModelVersion JSON); 404 as MLflow's if none."""
    number = str(version_number(version))
    found = next((v for v in versions if v["version"] == number), None)
    if found is None:
        raise version_missing(name, version)
    return found


def canonical_stage(stage: str) -> str:
    """MLflow's stages are case-insensitive: 'staging' is Staging."""
    found = {s.lower(): s for s in STAGES}.get(stage.lower())
    if found is None:
        raise invalid(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}.")
    return found


class _Search(BaseModel):
    filter: str | None = None
    page_token: str | None = None


class SearchModels(_Search):
    max_results: int = Field(100, ge=1, le=rq.MAX_MODEL_RESULTS)


class SearchVersions(_Search):
    max_results: int = Field(10_000, ge=1, le=rq.MAX_VERSION_RESULTS)


class LatestVersions(BaseModel):
    name: str
    stages: list[str] = Field(default_factory=list)


class RegistryReads:
    """Lookups by name, after this process's registry writes are applied."""

    def __init__(self, ctx: MlflowContext) -> None:
        self.ctx = ctx

    async def settled(self) -> None:
        await self.ctx.settled(REGISTRY)

    async def model_row(self, name: str) -> dict[str, Any]:
        await self.settled()
        found = await self.ctx.query(rq.model_row, name)
        if found is None:
            raise model_missing(name)
        return found

    async def version(self, name: str, version: str | int) -> tuple[str, dict[str, Any]]:
        """The model's id and the live version (ModelVersion JSON); 404s as MLflow's."""
        row = await self.model_row(name)
        found = await self.ctx.query(rq.versions, row, [version_number(version)])
        if not found:
            raise version_missing(name, version)
        return str(row["registered_model_id"]), found[0]

    async def versions(self, name: str) -> tuple[str, list[dict[str, Any]]]:
        """The model's id and its live versions (ModelVersion JSON), newest first."""
        row = await self.model_row(name)
        return str(row["registered_model_id"]), await self.ctx.query(rq.versions, row)

    async def download_uri(self, source: str, hops: int = 0) -> str:
        """Where a version's files are, as MLflow resolves its source at registration: `models:/<logged
        model id>` is that model's artifact location, `models:/<name>/<version>` that version's; any
        other source (runs:/..., s3://...) is itself."""
        target = source.removeprefix("models:/")
        if target == source or hops > MAX_SOURCE_HOPS:
            return source
        if target.startswith("m-") and "/" not in target:
            model = await self.ctx.query(logged_model, target)
            return str(model["artifact_uri"]) if model else source
        name, _, number = target.rpartition("/")
        if not (name and number.isdigit()):
            return source  # an alias: MLflow keeps it as given
        _, found = await self.version(name, number)
        return await self.download_uri(found["source"], hops + 1)


def mlflow_registry_read_router(ctx: MlflowContext) -> APIRouter:
    router = APIRouter(tags=["mlflow-registry"])
    reads = RegistryReads(ctx)

    @router.get("/registered-models/get")
    async def get_registered_model(name: str) -> Response:
        row = await reads.model_row(name)
        return mlflow_json({"registered_model": await ctx.query(rq.model_shape, row)})

    @router.get("/registered-models/search")
    async def search_registered_models(
        query: Annotated[SearchModels, Query()], order_by: Annotated[list[str] | None, Query()] = None
    ) -> Response:
        await reads.settled()
        found, token = await ctx.query(
            rq.search_models, query.filter, order_by or [], query.max_results, query.page_token
        )
        return mlflow_json({"registered_models": found, "next_page_token": token})

    @router.post("/registered-models/get-latest-versions")
    async def get_latest_versions(body: LatestVersions) -> Response:
        row = await reads.model_row(body.name)
        stages = [canonical_stage(s) for s in body.stages] or list(STAGES)
        found = await ctx.query(rq.latest_versions, row, stages)
        return mlflow_json({"model_versions": found})

    @router.get("/registered-models/get-latest-versions")
    async def get_latest_versions_by_query(query: Annotated[LatestVersions, Query()]) -> Response:
        return await get_latest_versions(query)  # MLflow takes both; its Java client sends a GET

    @router.get("/registered-models/alias")
    async def get_model_version_by_alias(name: str, alias: str) -> Response:
        _, held = await reads.versions(name)
        found = [v for v in held if alias in v["aliases"]]
        if not found:
            raise invalid(f"Registered model alias {alias} not found.")  # MLflow's code for it
        return mlflow_json({"model_version": found[0]})

    @router.get("/model-versions/get")
    async def get_model_version(name: str, version: str) -> Response:
        _, found = await reads.version(name, version)
        return mlflow_json({"model_version": found})

    @router.get("/model-versions/search")
    async def search_model_versions(
        query: Annotated[SearchVersions, Query()], order_by: Annotated[list[str] | None, Query()] = None
    ) -> Response:
        await reads.settled()
        found, token = await ctx.query(
            rq.search_versions, query.filter, order_by or [], query.max_results, query.page_token
        )
        return mlflow_json({"model_versions": found, "next_page_token": token})

    @router.get("/model-versions/get-download-uri")
    async def get_model_version_download_uri(name: str, version: str) -> Response:
        _, found = await reads.version(name, version)
        return mlflow_json({"artifact_uri": await reads.download_uri(found["source"])})

    return router


def registry_history_router(ctx: MlflowContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["registry"])
    reads = RegistryReads(ctx)

    async def model_id(name: str) -> str:
        await reads.settled()
        found = await ctx.query(rq.model_row_any, name)
        if found is None:
            raise model_missing(name)
        return str(found["registered_model_id"])

    @router.get(
        "/registered-models/{name}/history",
        summary="Every alias and stage change of a model (and its version and model events), oldest first",
    )
    async def model_history(name: str) -> Response:
        found = await model_id(name)
        changes, decided = await ctx.query(rq.history, found), await ctx.query(rq.gate_decisions, found)
        deployed = await ctx.query(rq.deployment_history, found)
        # A gate's decision is appended just before the move it allowed: first among equal times.
        events = sorted(decided + changes + deployed, key=lambda e: int(e["time"]))
        return json_response({"name": name, "events": events})

    @router.get(
        "/registered-models/{name}/deployments",
        summary="Where a version of the model serves now, as deploy tools reported it: version, since, user, note",
    )
    async def model_deployments(name: str) -> Response:
        await reads.settled()
        model_id = str((await reads.model_row(name))["registered_model_id"])
        return json_response({"name": name, "deployments": await ctx.query(rq.deployments, model_id)})

    @router.get(
        "/registered-models/{name}/aliases/{alias}",
        summary="The version an alias named at a time (ms since the epoch; default now), who set it and when",
    )
    async def alias_at(name: str, alias: str, at: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None) -> Response:
        moment = at if at is not None else 2**63 - 1
        found = await ctx.query(rq.alias_at, await model_id(name), alias, moment)
        if found is None:
            raise not_found(f"alias {alias!r} of model {name!r} did not exist at {at}")
        return json_response({"name": name, "alias": alias, "at": at, **found})

    return router
