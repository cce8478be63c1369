"""`runstream serve` storing its artifacts in the session's real S3 server (SeaweedFS, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.roles import Role
from tests.services.ports import free_port
from tests.services.s3_server import S3Server


class Served:
    """A `runstream serve` whose artifact root is `root`, in S3 bucket `bucket`."""

    def __init__(self, url: str, role: Role, root: str, bucket: str) -> None:
        self.url, self.role, self.root, self.bucket = url, role, root, bucket


def start_serve(workdir: Path, env: dict[str, str], *args: str) -> tuple[str, Role]:
    port = free_port()
    role = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data"), *args, env=env)
    return f"http://127.0.0.1:{port}", role


@pytest.fixture(scope="module")
def served(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`runstream serve` (embedded log and ClickHouse) with its artifacts in S3, small size limit."""
    bucket = s3.new_bucket()
    root = f"s3://{bucket}/mlruns"
    env = {**s3.env(), "RUNSTREAM_ARTIFACT_ROOT": root, "RUNSTREAM_ARTIFACT_MAX_SIZE": str(300 * 1024**2)}
    url, role = start_serve(tmp_path_factory.mktemp("serve-s3"), env)
    yield Served(url, role, root, bucket)
    role.stop()


def keys(server: S3Server, bucket: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def uploads_in_progress(server: S3Server, bucket: str) -> list[dict[str, Any]]:
    return server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])  # type: ignore[no-any-return]


class RecordingAuth(httpx.Auth):
    """Credentials as a server with auth on wants them; records which requests carried them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer test-token"
        self.sent.append((request.method, str(request.url)))
        yield request
