"""Artifact routes. Writes (need only the store): presigned upload targets, multipart completion, and
the content PUT for stores without presigned URLs (the local folder). Reads (need ClickHouse too):
listings, download URLs, and the content GET with byte ranges, checked against the recorded sha256."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from anyio import from_thread
from anyio.lowlevel import current_token
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from runstream.api.context import After, ArtifactMaxSize, Artifacts, ReadContext, Reads
from runstream.artifacts.store import MULTIPART_THRESHOLD, ArtifactNotFound, StoreUnavailable
from runstream.base.errors import ApiError, invalid, not_found, unavailable
from runstream.base.responses import json_response
from runstream.schemas.artifact_paths import UnsafePath, artifact_dir, object_key, run_prefix
from runstream.store import artifacts as queries

log = logging.getLogger(__name__)
T = TypeVar("T")

PART_URLS = 64  # presigned part URLs per answer: 1 GiB of 16 MiB parts
MAX_FILES_PER_REQUEST = 1000
SHA256_HEADER = "x-runstream-sha256"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_MIME = r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+-]+)*$"


class UploadFile(BaseModel):
    path: str
    size: int = Field(ge=0)
    content_type: str = Field("application/octet-stream", max_length=255, pattern=_MIME)


class UploadRequest(BaseModel):
    files: list[UploadFile] = Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)


class MultipartIds(BaseModel):
    path: str
    upload_id: str = Field(min_length=1, max_length=1024)


class PartUrlsRequest(MultipartIds):
    size: int = Field(ge=0)
    first: int = Field(ge=1, le=10_000)
    count: int = Field(PART_URLS, ge=1, le=1000)


class CompleteRequest(MultipartIds):
    etags: list[str] = Field(min_length=1, max_length=10_000)
    size: int = Field(ge=0)


def _key(run_id: str, path: str) -> str:
    try:
        return object_key(run_id, path)
    except UnsafePath as exc:
        raise invalid(str(exc)) from exc


async def store_call(fn: Callable[..., T], *args: Any) -> T:
    """A blocking store call on a worker thread, its failures as API errors (404, retriable 503)."""
    try:
        return await run_in_threadpool(fn, *args)
    except ArtifactNotFound as exc:
        raise not_found(f"artifact {exc} does not exist in the store") from exc
    except UnsafePath as exc:
        raise invalid(str(exc)) from exc
    except StoreUnavailable as exc:
        log.warning("artifact store unavailable: %s", exc)
        raise unavailable("the artifact store is unavailable; retry later") from exc


def _content_url(request: Request, run_id: str, path: str) -> str:
    return f"{request.base_url}api/v1/runs/{run_id}/artifacts/content/{quote(path)}"


def too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "INVALID_PARAMETER_VALUE", f"artifact of {size} bytes is over the limit of {limit} bytes")


write_routes = APIRouter(prefix="/api/v1", tags=["artifacts"])


@write_routes.post("/runs/{run_id}/artifacts/uploads", summary="Where to PUT each file (presigned, multipart if large)")
async def uploads(
    store: Artifacts, max_size: ArtifactMaxSize, run_id: str, body: UploadRequest, request: Request
) -> Response:
    keys = [_key(run_id, f.path) for f in body.files]
    for f in body.files:
        if f.size > max_size:
            raise too_large(f.size, max_size)
    out: list[dict[str, Any]] = []
    started: list[tuple[str, str]] = []
    try:
        for f, key in zip(body.files, keys, strict=True):
            target: dict[str, Any] = {"path": f.path, "size": f.size, "content_type": f.content_type}
            target["uri"] = store.uri(key)
            multipart = None
            if store.presigned and f.size > MULTIPART_THRESHOLD:
                multipart = await store_call(store.start_multipart, key, f.size, f.content_type)
            if multipart is not None:
                started.append((key, multipart.upload_id))
                urls = store.presign_parts(key, multipart.upload_id, f.size, 1, PART_URLS)
                target["multipart"] = {**asdict(multipart), "urls": urls}
            else:
                url = store.presign_put(key, f.size, f.content_type)
                target["url"] = url or _content_url(request, run_id, f.path)
            out.append(target)
    except ApiError:
        # The client gets no upload ids on failure: abort those started (runstream gc catches any left).
        for key, upload_id in started:
            with contextlib.suppress(ArtifactNotFound, StoreUnavailable):
                await run_in_threadpool(store.abort_multipart, key, upload_id)
        raise
    return json_response({"uploads": out})


@write_routes.post("/runs/{run_id}/artifacts/multipart/urls", summary="More presigned part URLs of a multipart upload")
async def part_urls(store: Artifacts, max_size: ArtifactMaxSize, run_id: str, body: PartUrlsRequest) -> Response:
    key = _key(run_id, body.path)
    if body.size > max_size:
        raise too_large(body.size, max_size)
    urls = await store_call(store.presign_parts, key, body.upload_id, body.size, body.first, body.count)
    return json_response({"urls": urls})


@write_routes.post("/runs/{run_id}/artifacts/multipart/complete", summary="Complete a multipart upload")
async def complete(store: Artifacts, run_id: str, body: CompleteRequest) -> Response:
    key = _key(run_id, body.path)
    await store_call(store.complete_multipart, key, body.upload_id, body.etags)
    stored = await store_call(store.size, key)
    if stored != body.size:
        await store_call(store.delete, key)
        raise invalid(f"the parts hold {stored} bytes, not the {body.size} declared: upload removed")
    return json_response({"path": body.path, "size": stored, "uri": store.uri(key)})


@write_routes.post("/runs/{run_id}/artifacts/multipart/abort", summary="Abort a multipart upload, dropping its parts")
async def abort(store: Artifacts, run_id: str, body: MultipartIds) -> Response:
    await store_call(store.abort_multipart, _key(run_id, body.path), body.upload_id)
    return json_response({"aborted": True})


@write_routes.put("/runs/{run_id}/artifacts/content/{path:path}", summary="Upload one file (stores without presigning)")
async def put_content(
    store: Artifacts,
    max_size: ArtifactMaxSize,
    run_id: str,
    path: str,
    request: Request,
    content_length: Annotated[int | None, Header()] = None,
) -> Response:
    key = _key(run_id, path)
    if store.presigned:
        raise ApiError(405, "INVALID_PARAMETER_VALUE", "upload through a presigned URL: POST .../artifacts/uploads")
    body = RequestBody(request.stream(), content_length, max_size)
    await store_call(store.upload, key, body)
    return json_response({"path": path, "size": body.received, "uri": store.uri(key)})


class RequestBody:
    """The request body as a blocking reader for a store running on a worker thread; refuses to
    yield more bytes than were declared, or than `limit` (413) where no length was declared: a
    chunked upload, as MLflow's client sends an empty file. Hashes what it passes on, so the server
    can record a file it received (MLflow's proxied uploads)."""

    def __init__(self, stream: AsyncIterator[bytes], declared: int | None, limit: int) -> None:
        if declared is not None and declared > limit:
            raise too_large(declared, limit)
        # Made on the event loop; read from any thread (s3transfer reads from its own, not AnyIO's).
        self._loop = current_token()
        self._stream = aiter(stream)
        self._declared = declared
        self._limit = limit
        self._pending = bytearray()  # appended to and cut from the front: no quadratic copying
        self.received = 0
        self.sha256 = hashlib.sha256()

    async def _next(self) -> bytes:
        return await anext(self._stream)

    def read(self, n: int = -1, /) -> bytes:
        """Up to n bytes (all when n < 0), fewer only at the end: s3transfer takes a short read as
        the end of the stream."""
        while n < 0 or len(self._pending) < n:
            chunk = self._next_chunk()
            if not chunk:
                break
            self._pending += chunk
        n = len(self._pending) if n < 0 else n
        data = bytes(self._pending[:n])
        del self._pending[:n]
        self.sha256.update(data)
        return data

    def _next_chunk(self) -> bytes:
        """The body's next chunk; b"" at its end, which must be where it said."""
        try:
            chunk = from_thread.run(self._next, token=self._loop)
        except StopAsyncIteration:
            if self._declared is not None and self.received != self._declared:
                raise invalid(f"body ended after {self.received} of {self._declared} bytes") from None
            return b""
        self.received += len(chunk)
        if self._declared is not None and self.received > self._declared:
            raise invalid(f"body longer than its Content-Length ({self._declared})")
        if self.received > self._limit:
            raise too_large(self.received, self._limit)
        return chunk


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single `bytes=` range, None for the whole object."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match[1] == match[2] == "":
        raise invalid(f"unsupported Range {header!r}: one bytes=start-end range")
    if match[1] == "":  # suffix: the last N bytes
        length = min(int(match[2]), size)
        return size - length, length
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    if start >= size or end < start:
        raise ApiError(416, "INVALID_PARAMETER_VALUE", f"range {header!r} is outside the {size} bytes")
    return start, end - start + 1


def verified(chunks: Iterator[bytes], path: str, sha256: str) -> Iterator[bytes]:
    """Passes the bytes on, holding the last chunk back until the checksum is known: bytes that do
    not match the record break the response off short of its length, so no client takes a complete
    but wrong file."""
    digest = hashlib.sha256()
    held = b""
    for chunk in chunks:
        if held:
            yield held
        digest.update(chunk)
        held = chunk
    if digest.hexdigest() != sha256:
        log.error("artifact %s: stored bytes have sha256 %s, recorded %s", path, digest.hexdigest(), sha256)
        raise OSError(f"artifact {path} does not match its recorded sha256")
    yield held


read_routes = APIRouter(prefix="/api/v1", tags=["artifacts"])


async def recorded(ctx: ReadContext, run_id: str, path: str, after: str | None) -> dict[str, Any]:
    key = _key(run_id, path)
    await ctx.consistent(after)
    found = await ctx.query(queries.artifact, run_id, path)
    if found is None:
        raise not_found(f"run {run_id!r} has no artifact {path!r}")
    return {**found, "key": key}


@read_routes.get("/runs/{run_id}/artifacts", summary="A run's artifacts: a folder's entries, or every file under it")
async def list_artifacts(
    ctx: Reads,
    store: Artifacts,
    request: Request,
    run_id: str,
    path: str = "",
    recursive: bool = False,
    urls: Annotated[bool, Query(description="add a short-lived URL to GET each file")] = False,
    after: After = None,
) -> Response:
    try:
        folder = artifact_dir(path)
        prefix = run_prefix(run_id)
    except UnsafePath as exc:
        raise invalid(str(exc)) from exc
    await ctx.consistent(after)
    files = await ctx.query(queries.artifacts, run_id, folder, recursive)
    if urls:  # a folder download in one call; presigning is local work, no request to S3 per file
        for f in files:
            if not f["is_dir"]:
                f["url"] = store.presign_get(f"{prefix}/{f['path']}") or _content_url(request, run_id, f["path"])
    return json_response({"root_uri": store.uri(prefix), "files": files})


@read_routes.get("/runs/{run_id}/artifacts/download", summary="Size, sha256 and a short-lived URL to GET one file")
async def download(
    ctx: Reads, store: Artifacts, run_id: str, path: str, request: Request, after: After = None
) -> Response:
    found = await recorded(ctx, run_id, path, after)
    await store_call(store.size, found["key"])  # a missing object is a 404 now, not at the GET
    url = store.presign_get(found["key"]) or _content_url(request, run_id, path)
    return json_response({"path": path, "size": found["size"], "sha256": found["sha256"], "url": url})


@read_routes.get("/runs/{run_id}/artifacts/content/{path:path}", summary="One file's bytes (Range supported)")
async def get_content(
    ctx: Reads,
    store: Artifacts,
    run_id: str,
    path: str,
    range: Annotated[str | None, Header()] = None,
    after: After = None,
) -> Response:
    found = await recorded(ctx, run_id, path, after)
    size = await store_call(store.size, found["key"])
    span = _byte_range(range, size)
    start, length = span or (0, size)
    chunks = await store_call(store.read, found["key"], start, length)
    headers = {"accept-ranges": "bytes", "content-length": str(length), SHA256_HEADER: found["sha256"]}
    if span is None:
        chunks = verified(chunks, path, found["sha256"])
    else:
        headers["content-range"] = f"bytes {start}-{start + length - 1}/{size}"
    return StreamingResponse(
        chunks, status_code=206 if span else 200, headers=headers, media_type="application/octet-stream"
    )
