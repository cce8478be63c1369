"""The client side of artifacts, shared by the SDK's Run (uploads) and runstream.Client (listing,
downloads). Bytes go through presigned URLs the API issues (or its content endpoint when its store is a
local folder); a caller with a store of its own (RUNSTREAM_ARTIFACT_ROOT and S3 credentials) uploads
and downloads directly. sha256 is computed while the bytes stream, never holding a whole file."""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import posixpath
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
import orjson

from runstream.artifacts.store import ArtifactNotFound, ArtifactStore
from runstream.artifacts.stores import store_for
from runstream.schemas.artifact_paths import artifact_dir, artifact_path, object_key
from runstream.sdk.transport import http_retrying

CHUNK = 1024 * 1024
DOWNLOAD_PART = 8 * CHUNK
CONCURRENCY = 8  # files (or parts of one large file) in flight at once
UPLOADS_PER_REQUEST = 500
A = TypeVar("A")
B = TypeVar("B")
T = TypeVar("T")


class ArtifactCorrupted(ValueError):
    """Downloaded bytes do not match the sha256 recorded when the artifact was logged."""


@dataclass(frozen=True)
class Stored:
    """One uploaded file, as its ArtifactLogged event records it."""

    path: str
    size: int
    sha256: str
    uri: str


class HashingReader:
    """Reads a file once, front to back, hashing as it goes. Not seekable, so boto3 reads each byte
    once in order (it buffers parts itself) and the digest covers exactly what was sent."""

    def __init__(self, raw: BinaryIO, limit: int | None = None) -> None:
        self._raw = raw
        self._left = limit
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1, /) -> bytes:
        if self._left is not None:
            n = self._left if n < 0 else min(n, self._left)
        data = self._raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        if self._left is not None:
            self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _exactly(reader: HashingReader, size: int) -> Iterator[bytes]:
    """The body of a PUT whose length was declared (and signed): exactly `size` bytes or an error."""
    left = size
    while left:
        chunk = reader.read(min(CHUNK, left))
        if not chunk:
            raise OSError(f"file shrank while uploading: {left} of {size} bytes missing")
        left -= len(chunk)
        yield chunk


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code == 404:
        raise ArtifactNotFound(_message(response))
    response.raise_for_status()
    return response


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text


class ArtifactClient:
    def __init__(
        self,
        api_uri: str | None,
        artifact_root: str | None = None,
        retry_for_s: float = 120.0,
        auth: httpx.Auth | None = None,
    ) -> None:
        """`api_uri` may be None only with `artifact_root` (direct uploads, no API needed). `auth`
        goes to the API only: never with a presigned URL (S3 refuses a second authentication)."""
        root = artifact_root if artifact_root is not None else os.environ.get("RUNSTREAM_ARTIFACT_ROOT")
        self.store: ArtifactStore | None = store_for(root) if root else None
        timeout = httpx.Timeout(300.0, connect=10.0)  # long transfers
        limits = httpx.Limits(max_connections=32)
        self._api = httpx.Client(base_url=api_uri, timeout=timeout, limits=limits, auth=auth) if api_uri else None
        self._http = httpx.Client(timeout=timeout, limits=limits)
        self._retry_for_s = retry_for_s

    def _client_for(self, url: str) -> httpx.Client:
        """The API's client (with its credentials) for the API's own content URLs, else a plain one."""
        if self._api is not None and httpx.URL(url).netloc == self._api.base_url.netloc:
            return self._api
        return self._http

    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            raise ValueError(
                "artifacts need the read API (RUNSTREAM_API_URI or an http tracking URI), "
                "or for direct uploads RUNSTREAM_ARTIFACT_ROOT and S3 credentials"
            )
        return self._api

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        for attempt in http_retrying(self._retry_for_s):
            with attempt:
                response = self.api.request(method, route, params=query, json=body)
                if 400 <= response.status_code < 500 and response.status_code != 404:
                    raise ValueError(f"{response.status_code}: {_message(response)}")
                _check(response)
        return orjson.loads(response.content)

    # uploads

    def upload(self, run_id: str, files: Sequence[tuple[Path, str]]) -> list[Stored]:
        """Uploads (local file, artifact path) pairs; returns what to record, in the same order."""
        for _, path in files:
            artifact_path(path)  # refuse bad paths before any byte moves
        if self.store is not None:
            store = self.store
            return self._each(files, lambda f, p: _upload_direct(store, run_id, f, p))
        stored: list[Stored] = []
        for start in range(0, len(files), UPLOADS_PER_REQUEST):
            batch = files[start : start + UPLOADS_PER_REQUEST]
            sizes = [f.stat().st_size for f, _ in batch]
            body = {
                "files": [
                    {"path": p, "size": size, "content_type": _content_type(p)}
                    for (_, p), size in zip(batch, sizes, strict=True)
                ]
            }
            targets = self._call("POST", f"/api/v1/runs/{run_id}/artifacts/uploads", body)["uploads"]
            single = [(f, t) for (f, _), t in zip(batch, targets, strict=True) if "multipart" not in t]
            stored_single = iter(self._each(single, self._put))
            # Large files one at a time, each with its parts in parallel.
            for (f, _), t in zip(batch, targets, strict=True):
                stored.append(self._multipart(run_id, f, t) if "multipart" in t else next(stored_single))
        return stored

    def _each(self, items: Sequence[tuple[A, B]], fn: Callable[[A, B], T]) -> list[T]:
        if len(items) <= 1:
            return [fn(a, b) for a, b in items]
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            return list(pool.map(lambda item: fn(*item), items))

    def _put(self, file: Path, target: dict[str, Any]) -> Stored:
        size = target["size"]
        headers = {"Content-Length": str(size), "Content-Type": target["content_type"]}
        for attempt in http_retrying(self._retry_for_s):
            with attempt, file.open("rb") as f:  # each attempt reads (and hashes) the file afresh
                reader = HashingReader(f)
                http = self._client_for(target["url"])
                response = http.put(target["url"], content=_exactly(reader, size), headers=headers)
                if 400 <= response.status_code < 500:
                    raise OSError(f"upload of {target['path']!r} refused ({response.status_code}): {response.text}")
                response.raise_for_status()
        return Stored(target["path"], reader.size, reader.sha.hexdigest(), target["uri"])

    def _multipart(self, run_id: str, file: Path, target: dict[str, Any]) -> Stored:
        upload = target["multipart"]
        base = f"/api/v1/runs/{run_id}/artifacts/multipart"
        ids = {"path": target["path"], "upload_id": upload["upload_id"]}
        try:
            with file.open("rb") as f, ThreadPoolExecutor(CONCURRENCY) as pool:
                reader = HashingReader(f, limit=target["size"])
                in_flight = threading.BoundedSemaphore(CONCURRENCY + 1)  # bounds the parts held in memory
                failed = threading.Event()

                def done(future: Future[str]) -> None:
                    if future.exception() is not None:
                        failed.set()
                    in_flight.release()

                urls = dict(enumerate(upload["urls"], 1))
                parts: list[Future[str]] = []
                for n in range(1, upload["parts"] + 1):
                    in_flight.acquire()
                    if failed.is_set():
                        break  # stop reading: the first failed part's error is raised below
                    if n not in urls:  # the next batch, asked for when needed so none expires unused
                        more = self._call("POST", f"{base}/urls", {**ids, "size": target["size"], "first": n})
                        urls.update(enumerate(more["urls"], n))
                    future = pool.submit(self._put_part, urls.pop(n), reader.read(upload["part_size"]))
                    future.add_done_callback(done)
                    parts.append(future)
                etags = [p.result() for p in parts]
            if reader.size != target["size"]:
                raise OSError(f"{file} changed size while uploading")
            self._call("POST", f"{base}/complete", {**ids, "etags": etags, "size": reader.size})
        except BaseException:
            # No orphaned multipart upload: S3 keeps (and bills) its parts until aborted. Should the
            # abort fail too, the original error is the one to see; `runstream gc` aborts leftovers.
            with contextlib.suppress(Exception):
                self._call("POST", f"{base}/abort", ids)
            raise
        return Stored(target["path"], reader.size, reader.sha.hexdigest(), target["uri"])

    def _put_part(self, url: str, data: bytes) -> str:
        for attempt in http_retrying(self._retry_for_s):
            with attempt:
                response = self._client_for(url).put(url, content=data)
                if 400 <= response.status_code < 500:
                    raise OSError(f"part refused ({response.status_code}): {response.text[:500]}")
                response.raise_for_status()
        return response.headers["etag"]

    # reads

    def list(self, run_id: str, path: str = "", recursive: bool = False, urls: bool = False) -> list[dict[str, Any]]:
        found = self._call("GET", f"/api/v1/runs/{run_id}/artifacts", path=path, recursive=recursive, urls=urls)
        return found["files"]  # type: ignore[no-any-return]

    def download(self, run_id: str, path: str, dest: Path) -> Path:
        """Downloads a file to `dest` (into it, under the file's name, when `dest` is an existing
        folder, as `cp` and MLflow do), or a folder into `dest`/; every file checked against its
        sha256. Returns where it went."""
        path = artifact_dir(path)
        try:
            info = self._call("GET", f"/api/v1/runs/{run_id}/artifacts/download", path=path) if path else None
        except ArtifactNotFound:
            info = None
        if info is not None:
            if dest.is_dir():
                dest = dest / posixpath.basename(path)
            self._download_file(run_id, info, dest)
            return dest
        files = self.list(run_id, path, recursive=True, urls=self.store is None)
        if not files:
            raise ArtifactNotFound(f"run {run_id} has no artifact {path!r}")
        cut = len(path) + 1 if path else 0
        self._each([(f, dest / f["path"][cut:]) for f in files], lambda f, to: self._download_file(run_id, f, to))
        return dest

    def _download_file(self, run_id: str, info: dict[str, Any], dest: Path) -> None:
        """Parts fetched in parallel (byte ranges), hashed and written in order as they arrive."""
        fetch = self._fetcher(run_id, info)
        size = info["size"]
        spans = [(start, min(DOWNLOAD_PART, size - start)) for start in range(0, size, DOWNLOAD_PART)]
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        sha = hashlib.sha256()
        try:
            with part.open("wb") as out:
                for data in _in_order(fetch, spans) if len(spans) > 1 else (fetch(*s) for s in spans):
                    sha.update(data)
                    out.write(data)
            if sha.hexdigest() != info["sha256"]:
                raise ArtifactCorrupted(f"{info['path']}: sha256 {sha.hexdigest()} != recorded {info['sha256']}")
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)

    def _fetcher(self, run_id: str, info: dict[str, Any]) -> Callable[[int, int], bytes]:
        """(start, length) → bytes: from the caller's own store, or through a presigned URL."""
        if self.store is not None:
            store, key = self.store, object_key(run_id, info["path"])
            return lambda start, length: b"".join(store.read(key, start, length))
        url = info["url"]
        return lambda start, length: self._get_range(url, start, length, info["size"])

    def _get_range(self, url: str, start: int, length: int, size: int) -> bytes:
        for attempt in http_retrying(self._retry_for_s):
            span = {"Range": f"bytes={start}-{start + length - 1}"}
            with attempt, self._client_for(url).stream("GET", url, headers=span) as r:
                if r.status_code < 500 and r.status_code not in (200, 206):
                    r.read()
                    _check(r)
                    raise OSError(f"download refused ({r.status_code}): {r.text}")
                r.raise_for_status()
                # Raw: the stored bytes, as hashed at upload (no decoding); joined once, not re-chunked.
                data = b"".join(r.iter_raw())
                total = r.headers.get("content-range", "").rpartition("/")[2]
        if len(data) != length or (total and int(total) != size):
            raise ArtifactCorrupted(f"the stored object is not the {size} bytes recorded")
        return data

    def read(self, run_id: str, path: str, start: int = 0, length: int | None = None) -> bytes:
        """Bytes [start, start+length) of one artifact (to its end without `length`)."""
        if length == 0:
            return b""
        end = "" if length is None else str(start + length - 1)
        url = f"/api/v1/runs/{run_id}/artifacts/content/{quote(artifact_path(path))}"
        response = self.api.get(url, headers={"Range": f"bytes={start}-{end}"})
        if response.status_code == 416:
            return b""
        return _check(response).content

    def close(self) -> None:
        self._http.close()
        if self._api is not None:
            self._api.close()


def _upload_direct(store: ArtifactStore, run_id: str, file: Path, path: str) -> Stored:
    key = object_key(run_id, path)
    with file.open("rb") as f:
        reader = HashingReader(f)
        store.upload(key, reader)
    return Stored(path, reader.size, reader.sha.hexdigest(), store.uri(key))


def _in_order(fetch: Callable[[int, int], bytes], spans: list[tuple[int, int]]) -> Iterator[bytes]:
    """fetch(*span) for every span, CONCURRENCY at a time, yielded in order (memory stays bounded)."""
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        window: deque[Future[bytes]] = deque()
        try:
            for span in spans:
                window.append(pool.submit(fetch, *span))
                if len(window) > CONCURRENCY:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:
                future.cancel()
