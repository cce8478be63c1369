"""MLflow's proxied artifact service (`/api/2.0/mlflow-artifacts/artifacts/...`), what the client
uses for `mlflow-artifacts:` URIs: upload (PUT), folder listing and download (GET), deletion (DELETE). Paths are
`<experiment>/<run_id>/artifacts/<path>` (a run's files) or `<experiment>/models/<model_id>/artifacts/
<path>` (an MLflow 3 logged model's). The bytes go through the artifact store; each file stored is
recorded by an event (ArtifactLogged, ModelArtifactLogged; deletions ArtifactsDeleted,
ModelArtifactsDeleted), so listings come from ClickHouse and
downloads are checked against the recorded sha256, as on the native artifact routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response, StreamingResponse

from runstream.api.artifact_routes import SHA256_HEADER, RequestBody, store_call, verified
from runstream.api.context import ArtifactMaxSize, Artifacts
from runstream.artifacts.store import ArtifactStore
from runstream.base.auth import Access, CurrentPrincipal, Principal, require
from runstream.base.errors import invalid, not_found
from runstream.eventlog.write_marks import model_entity, run_entity
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.mlflow_api.shapes import mlflow_json
from runstream.mlflow_api.writer import MlflowWriter, Writer
from runstream.schemas.artifact_paths import UnsafePath, artifact_path, model_prefix, run_prefix
from runstream.schemas.events import event
from runstream.store import artifacts as listings
from runstream.store.artifacts import Owner
from runstream.store.logged_models import logged_model
from runstream.store.queries import run_experiments

_LAYOUT = "<experiment>/<run_id>/artifacts/<path> or <experiment>/models/<model_id>/artifacts/<path>"


@dataclass(frozen=True)
class Target:
    owner: Owner
    owner_id: str
    experiment_id: str
    prefix: str  # the owner's key prefix in the store
    path: str  # relative to the owner's artifacts; '' is their root

    @property
    def key(self) -> str:
        return f"{self.prefix}/{self.path}"


def target(path: str) -> Target:
    """Where an mlflow-artifacts path points; a path that could leave its owner's prefix is a 400."""
    try:
        parts = artifact_path(path.removesuffix("/")).split("/")
        if len(parts) >= 3 and parts[1] != "models" and parts[2] == "artifacts":
            return Target("run", parts[1], parts[0], run_prefix(parts[1]), "/".join(parts[3:]))
        if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
            return Target("model", parts[2], parts[0], model_prefix(parts[2]), "/".join(parts[4:]))
    except UnsafePath as exc:
        raise invalid(f"invalid artifact path {path!r}: {exc}") from exc
    raise invalid(f"invalid artifact path {path!r}: artifacts live under {_LAYOUT}")


async def owner_experiment(ctx: MlflowContext, owner: Owner, owner_id: str) -> str | None:
    """The experiment of a run or logged model, once this process's writes to it are readable."""
    if owner == "run":
        await ctx.settled(run_entity(owner_id))
        return (await ctx.query(run_experiments, [owner_id])).get(owner_id)
    await ctx.settled(model_entity(owner_id))
    found = await ctx.query(logged_model, owner_id)
    return str(found["experiment_id"]) if found else None


async def owned(ctx: MlflowContext, t: Target, principal: Principal | None, wanted: Access) -> None:
    """404 unless the run or model exists in the path's experiment; 403 without access to it."""
    experiment_id = await owner_experiment(ctx, t.owner, t.owner_id)
    if experiment_id != t.experiment_id:
        raise not_found(f"no {t.owner} {t.owner_id!r} in experiment {t.experiment_id!r}")
    require(principal, wanted, [experiment_id])


async def file_response(
    ctx: MlflowContext, store: ArtifactStore, t: Target, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """One recorded file's bytes, checked against its sha256 as they stream; 404 if none is recorded."""
    found = await ctx.query(listings.artifact, t.owner_id, t.path, t.owner) if t.path else None
    if found is None:
        raise not_found(f"{t.owner} {t.owner_id} has no artifact {t.path!r}")
    size = await store_call(store.size, t.key)
    chunks = verified(await store_call(store.read, t.key, 0, size), t.path, found["sha256"])
    sent = {"content-length": str(size), SHA256_HEADER: found["sha256"], **(headers or {})}
    return StreamingResponse(chunks, headers=sent, media_type=sent.pop("content-type", "application/octet-stream"))


async def record_file(writer: MlflowWriter, t: Target, size: int, sha256: str, uri: str) -> None:
    """Records a stored file of the run or model (what listings and downloads go by)."""
    stored = {"path": t.path, "size": size, "sha256": sha256, "uri": uri}
    if t.owner == "run":
        await writer.append([event("ArtifactLogged", run_id=t.owner_id, **stored)], run_entity(t.owner_id))
    else:
        await writer.append([event("ModelArtifactLogged", model_id=t.owner_id, **stored)], model_entity(t.owner_id))


read_routes = APIRouter(tags=["mlflow-artifacts"])
write_routes = APIRouter(tags=["mlflow-artifacts"])  # where the role has the event log


@read_routes.get("/artifacts", summary="A folder's entries (MLflow's ListArtifacts)")
async def list_artifacts(ctx: Mlflow, principal: CurrentPrincipal, path: str = "") -> Response:
    t = target(path)
    await owned(ctx, t, principal, "read")
    entries = await ctx.query(listings.artifacts, t.owner_id, t.path, False, t.owner)
    files = [
        {"path": e["path"].rpartition("/")[2], "is_dir": e["is_dir"]}
        | ({} if e["is_dir"] else {"file_size": e["size"]})
        for e in entries
    ]
    return mlflow_json({"files": files or None})


@read_routes.get("/artifacts/{path:path}", summary="One file's bytes, checked against the recorded sha256")
async def download_artifact(ctx: Mlflow, store: Artifacts, path: str, principal: CurrentPrincipal) -> Response:
    t = target(path)
    await owned(ctx, t, principal, "read")
    return await file_response(ctx, store, t)


@write_routes.put("/artifacts/{path:path}", summary="Upload one file (MLflow's UploadArtifact)")
async def upload_artifact(
    ctx: Mlflow,
    store: Artifacts,
    writer: Writer,
    max_size: ArtifactMaxSize,
    path: str,
    request: Request,
    principal: CurrentPrincipal,
    content_length: Annotated[int | None, Header()] = None,
) -> Response:
    t = target(path)
    if not t.path:
        raise invalid(f"invalid artifact path {path!r}: name a file under {_LAYOUT}")
    await owned(ctx, t, principal, "write")
    body = RequestBody(request.stream(), content_length, max_size)
    await store_call(store.upload, t.key, body)
    await record_file(writer, t, body.received, body.sha256.hexdigest(), store.uri(t.key))
    return mlflow_json({})


@write_routes.delete("/artifacts/{path:path}", summary="Delete a file, or every file under a folder")
async def delete_artifacts(
    ctx: Mlflow, store: Artifacts, writer: Writer, path: str, principal: CurrentPrincipal
) -> Response:
    """As MLflow's server: nothing there to delete is no error. Recorded first, so no listing
    shows a file whose bytes are going; then the bytes go."""
    t = target(path)
    await owned(ctx, t, principal, "write")
    found = await ctx.query(listings.artifact, t.owner_id, t.path, t.owner) if t.path else None
    files = (
        [t.path]
        if found
        else [f["path"] for f in await ctx.query(listings.artifacts, t.owner_id, t.path, True, t.owner)]
    )
    if not files:
        return mlflow_json({})
    if t.owner == "run":
        await writer.append([event("ArtifactsDeleted", run_id=t.owner_id, paths=files)], run_entity(t.owner_id))
    else:
        deleted = event("ModelArtifactsDeleted", model_id=t.owner_id, paths=files)
        await writer.append([deleted], model_entity(t.owner_id))
    for file in files:
        await store_call(store.delete, f"{t.prefix}/{file}")
    return mlflow_json({})
