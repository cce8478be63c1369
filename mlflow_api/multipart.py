"""MLflow's proxied multipart upload (`MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`, files over
`MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE`): `mpu/create` gives presigned part URLs of the artifact
store and the client PUTs the parts straight there; `mpu/complete` joins them and records the file,
its sha256 read back from the store (every recorded file has one, and downloads are checked against
it); `mpu/abort` drops the parts. A store without presigned URLs (the embedded folder) answers
MLflow's NOT_IMPLEMENTED, on which the client sends the file in one PUT, as with MLflow's own server
on a local artifact root."""

from __future__ import annotations

import hashlib
import posixpath

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.api.artifact_routes import store_call, too_large
from runstream.api.context import ArtifactMaxSize, Artifacts
from runstream.artifacts.store import ArtifactStore
from runstream.base.auth import CurrentPrincipal, Principal
from runstream.base.errors import ApiError, invalid
from runstream.mlflow_api.artifacts import Target, owned, record_file, target
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.mlflow_api.shapes import mlflow_json
from runstream.mlflow_api.writer import Writer

MAX_PARTS = 10_000  # S3's
# MLflow's client falls back to one PUT on exactly this message (its _UnsupportedMultipartUploadException).
UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


class _Upload(BaseModel):
    path: str = Field(min_length=1, description="the client's local file: its name is the artifact's")


class CreateUpload(_Upload):
    num_parts: int = Field(1, ge=1, le=MAX_PARTS)


class Part(BaseModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str
    url: str | None = None


class CompleteUpload(_Upload):
    upload_id: str = Field(min_length=1)
    parts: list[Part] = Field(min_length=1, max_length=MAX_PARTS)


class AbortUpload(_Upload):
    upload_id: str = Field(min_length=1)


def _sha256(store: ArtifactStore, key: str, size: int) -> str:
    digest = hashlib.sha256()
    for chunk in store.read(key, 0, size):
        digest.update(chunk)
    return digest.hexdigest()


multipart_routes = APIRouter(tags=["mlflow-artifacts"])


async def file_target(ctx: MlflowContext, folder: str, upload: _Upload, principal: Principal | None) -> Target:
    """The file the upload makes: the client's file name in the path's folder."""
    name = posixpath.basename(upload.path.replace("\\", "/"))
    t = target(f"{folder.rstrip('/')}/{name}")
    await owned(ctx, t, principal, "write")
    return t


@multipart_routes.post("/mpu/create/{path:path}", summary="Start a multipart upload: presigned URLs of its parts")
async def create(ctx: Mlflow, store: Artifacts, path: str, body: CreateUpload, principal: CurrentPrincipal) -> Response:
    t = await file_target(ctx, path, body, principal)
    started = await store_call(store.start_multipart, t.key, 0, "application/octet-stream") if store.presigned else None
    if started is None:
        raise ApiError(501, "NOT_IMPLEMENTED", UNSUPPORTED)
    urls = await store_call(store.presign_parts, t.key, started.upload_id, None, 1, body.num_parts)
    credentials = [{"part_number": n, "url": url, "headers": {}} for n, url in enumerate(urls, 1)]
    return mlflow_json({"upload_id": started.upload_id, "credentials": credentials})


@multipart_routes.post("/mpu/complete/{path:path}", summary="Join the uploaded parts into the file and record it")
async def complete(
    ctx: Mlflow,
    store: Artifacts,
    writer: Writer,
    max_size: ArtifactMaxSize,
    path: str,
    body: CompleteUpload,
    principal: CurrentPrincipal,
) -> Response:
    t = await file_target(ctx, path, body, principal)
    parts = sorted(body.parts, key=lambda p: p.part_number)
    if [p.part_number for p in parts] != list(range(1, len(parts) + 1)):
        raise invalid("the parts must be numbered 1, 2, ... without gaps or repeats")
    await store_call(store.complete_multipart, t.key, body.upload_id, [p.etag for p in parts])
    size = await store_call(store.size, t.key)
    if size > max_size:
        await store_call(store.delete, t.key)
        raise too_large(size, max_size)
    sha256 = await run_in_threadpool(_sha256, store, t.key, size)
    await record_file(writer, t, size, sha256, store.uri(t.key))
    return mlflow_json({})


@multipart_routes.post("/mpu/abort/{path:path}", summary="Abort a multipart upload, dropping its parts")
async def abort(ctx: Mlflow, store: Artifacts, path: str, body: AbortUpload, principal: CurrentPrincipal) -> Response:
    t = await file_target(ctx, path, body, principal)
    await store_call(store.abort_multipart, t.key, body.upload_id)
    return mlflow_json({})
