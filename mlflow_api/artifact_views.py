"""MLflow's artifact reads by run, registered version or logged model, what its web UI lists and
previews artifacts with: `artifacts/list` (paths from the run's root, as MLflow's server lists them),
`/get-artifact`, `/model-versions/get-artifact` and a logged model's `artifacts/files`. Each file is
sent as an attachment of its own type, as MLflow's server sends it (a browser never runs it as a
page of this site), from the same recorded and checked bytes as the mlflow-artifacts routes."""

from __future__ import annotations

import mimetypes
import urllib.parse
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from runstream.api.context import Artifacts
from runstream.base.auth import CurrentPrincipal, Principal, require
from runstream.base.errors import invalid, not_found
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api.artifacts import Target, file_response, owner_experiment, target
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.mlflow_api.registry_reads import Registry
from runstream.mlflow_api.shapes import mlflow_json, run_id_param
from runstream.store import artifacts as listings

# Shown as text by MLflow's UI and sent as text/plain by its server, whatever the extension says.
TEXT_FILES = {"txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml",
              "yaml", "yml", "json", "jsonnet", "md", "rst", "py", "js", "tsx", "jsx", "sql", "csv", "tsv",
              "MLmodel", "MLproject"}  # fmt: skip


def _attachment(path: str) -> dict[str, str]:
    name = PurePosixPath(path).name
    suffix = PurePosixPath(name).suffix.lstrip(".") or name
    kind = "text/plain" if suffix in TEXT_FILES else mimetypes.guess_type(name)[0] or "application/octet-stream"
    ascii_name = name.encode("ascii", "ignore").decode().replace('"', "") or "download"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"
    return {"content-type": kind, "content-disposition": disposition, "x-content-type-options": "nosniff"}


async def _run_file(ctx: MlflowContext, run_id: str, path: str, principal: Principal | None) -> Target:
    experiment_id = await owner_experiment(ctx, "run", run_id)
    if experiment_id is None:
        raise not_found(f"Run with id={run_id} not found")
    require(principal, "read", [experiment_id])
    return target(f"{experiment_id}/{run_id}/artifacts/{path}")


list_routes = APIRouter(tags=["mlflow"])


@list_routes.get("/artifacts/list", summary="A run's artifacts in one folder, paths from the run's root")
async def list_artifacts(
    ctx: Mlflow, principal: CurrentPrincipal, run_id: str | None = None, run_uuid: str | None = None, path: str = ""
) -> Response:
    t = await _run_file(ctx, run_id_param(run_id, run_uuid), path, principal)
    root_uri = await ctx.query(mlflow_queries.artifact_uri, t.owner_id)
    entries = await ctx.query(listings.artifacts, t.owner_id, t.path, False, "run")
    files = [{"path": e["path"], "is_dir": e["is_dir"]} | ({} if e["is_dir"] else {"file_size": e["size"]})
             for e in entries]  # fmt: skip
    return mlflow_json({"root_uri": root_uri, "files": files or None})


file_routes = APIRouter(tags=["mlflow-artifacts"])


@file_routes.get("/get-artifact", summary="One file of a run, as an attachment (MLflow's UI previews)")
async def get_artifact(
    ctx: Mlflow,
    store: Artifacts,
    principal: CurrentPrincipal,
    path: str,
    run_id: str | None = None,
    run_uuid: str | None = None,
) -> Response:
    t = await _run_file(ctx, run_id_param(run_id, run_uuid), path, principal)
    return await file_response(ctx, store, t, _attachment(t.path))


@file_routes.get("/model-versions/get-artifact", summary="One file of a registered model version, as an attachment")
async def get_model_version_artifact(
    ctx: Mlflow, store: Artifacts, registry: Registry, principal: CurrentPrincipal, name: str, version: str, path: str
) -> Response:
    require(principal, "read", [None])  # the registry's access, as its other reads
    _, found = await registry.version(name, version)
    uri = await registry.download_uri(found["source"])
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "runs":
        run_id, _, inner = parsed.path.lstrip("/").partition("/")
        t = await _run_file(ctx, run_id, f"{inner}/{path}", principal)
    elif parsed.scheme == "mlflow-artifacts":
        t = target(f"{parsed.path.strip('/')}/{path}")
        require(principal, "read", [await owner_experiment(ctx, t.owner, t.owner_id)])
    else:
        raise not_found(f"version {version} of {name!r} has its files at {uri}, outside runstream's artifact store")
    return await file_response(ctx, store, t, _attachment(t.path))


@file_routes.get(
    "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
    summary="One file of a logged model, as an attachment",
)
async def get_logged_model_artifact(
    ctx: Mlflow,
    store: Artifacts,
    principal: CurrentPrincipal,
    model_id: str,
    artifact_file_path: Annotated[str, Query()] = "",
) -> Response:
    if not artifact_file_path:
        raise invalid('Request must include the "artifact_file_path" query parameter.')
    experiment_id = await owner_experiment(ctx, "model", model_id)
    if experiment_id is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    require(principal, "read", [experiment_id])
    t = target(f"{experiment_id}/models/{model_id}/artifacts/{artifact_file_path}")
    return await file_response(ctx, store, t, _attachment(t.path))
