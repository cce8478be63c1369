"""MLflow's model registry reads (registered-models/*, model-versions/*) and runstream's history of a
model's aliases and stages (/api/v1/registered-models/...), answered from ClickHouse once this
process's registry writes are applied (read-your-writes, as the other MLflow reads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, Field

from runstream.base.errors import ApiError, invalid, not_found
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.schemas.validation import STAGES
from runstream.store import registry as rq
from runstream.store.logged_models import logged_model

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


def _registry(ctx: Mlflow) -> RegistryReads:
    return RegistryReads(ctx)


Registry = Annotated[RegistryReads, Depends(_registry)]
