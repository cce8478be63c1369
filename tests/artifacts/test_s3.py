"""Artifacts in a real S3 server (SeaweedFS) through `runstream serve`: SDK uploads (presigned by the
server, or direct with credentials), listings from ClickHouse, verified downloads, bad input."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

import runstream
from runstream.artifacts.s3 import S3Store
from runstream.eventlog.base import LogMessage
from runstream.eventlog.segments import CorruptSegment, list_segments, read_segment, write_segment
from runstream.schemas.artifact_paths import UnsafePath
from runstream.sdk.artifacts import ArtifactClient, HashingReader
from tests.artifacts.conftest import RecordingAuth, Served, keys, start_serve, uploads_in_progress
from tests.artifacts.files import random_file
from tests.integration.roles import Role
from tests.services.clickhouse_server import ClickHouseServer
from tests.services.ports import free_port
from tests.services.s3_server import S3Server

MiB = 1024 * 1024


@pytest.fixture
def direct(s3: S3Server, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK process holds S3 credentials and the artifact root: it uploads without the server."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUNSTREAM_ARTIFACT_ROOT", served.root)


@pytest.mark.parametrize("mode", ["presigned", "direct"])
def test_200_mb_round_trip_through_the_sdk_is_verified(
    mode: str, served: Served, s3: S3Server, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if mode == "direct":
        request.getfixturevalue("direct")
    sha = random_file(tmp_path / "model.bin", 200 * MiB)
    with runstream.start_run(experiment="artifacts", tracking_uri=served.url) as run:
        run.log_artifact(tmp_path / "model.bin", artifact_path="models")
    token = run.end()

    client = runstream.Client(served.url)
    client.get_run(run.run_id, after=token)
    [entry] = client.list_artifacts(run.run_id, "models")
    assert entry == {"path": "models/model.bin", "is_dir": False, "size": 200 * MiB, "sha256": sha}
    got = client.download_artifacts(run.run_id, "models/model.bin", tmp_path / "back.bin")
    assert got.stat().st_size == 200 * MiB
    assert hashlib.file_digest(got.open("rb"), "sha256").hexdigest() == sha
    assert f"mlruns/{run.run_id}/artifacts/models/model.bin" in keys(s3, served.bucket)
    assert uploads_in_progress(s3, served.bucket) == []  # multipart uploads all completed


@pytest.mark.parametrize("mode", ["presigned", "direct"])
def test_a_folder_of_1000_small_files(
    mode: str, served: Served, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if mode == "direct":
        request.getfixturevalue("direct")
    src = tmp_path / "src"
    expected = {}
    for i in range(1000):
        path = f"shard{i % 10}/f{i:04d}.txt"
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_bytes(f"file {i}\n".encode() * (i % 7 + 1))
        expected[f"data/{path}"] = (src / path).read_bytes()
    (src / "shard3" / "empty.txt").write_bytes(b"")
    expected["data/shard3/empty.txt"] = b""
    with runstream.start_run(experiment="artifacts", tracking_uri=served.url) as run:
        run.log_artifacts(src, artifact_path="data")
    token = run.end()

    client = runstream.Client(served.url)
    client.get_run(run.run_id, after=token)
    top = client.list_artifacts(run.run_id)
    assert top == [{"path": "data", "is_dir": True, "size": sum(map(len, expected.values())), "sha256": None}]
    shards = client.list_artifacts(run.run_id, "data")
    assert [e["path"] for e in shards] == [f"data/shard{i}" for i in range(10)]
    files = client.list_artifacts(run.run_id, "data", recursive=True)
    assert {f["path"]: f["sha256"] for f in files} == {p: hashlib.sha256(b).hexdigest() for p, b in expected.items()}
    client.download_artifacts(run.run_id, "data/shard3", tmp_path / "back")
    back = {p.relative_to(tmp_path / "back").as_posix(): p.read_bytes() for p in (tmp_path / "back").rglob("*")}
    assert back == {p.removeprefix("data/shard3/"): b for p, b in expected.items() if p.startswith("data/shard3/")}
    assert client.read_artifact(run.run_id, "data/shard0/f0010.txt", 5, 3) == b"10\n"


def test_presigned_put_and_get_with_plain_http(s3: S3Server, served: Served) -> None:
    run_id = "ab" * 16
    body = b"hello presigned world"
    api = httpx.Client(base_url=served.url)
    files = [{"path": "notes/a.txt", "size": len(body), "content_type": "text/plain"}]
    [target] = api.post(f"/api/v1/runs/{run_id}/artifacts/uploads", json={"files": files}).json()["uploads"]
    assert target["url"].startswith(s3.endpoint_url) and "X-Amz-Signature=" in target["url"]
    assert target["uri"] == f"{served.root}/{run_id}/artifacts/notes/a.txt"
    # The length and type are signed: anything else is refused by S3 itself.
    assert httpx.put(target["url"], content=body + b"!", headers={"Content-Type": "text/plain"}).status_code == 403
    assert httpx.put(target["url"], content=body, headers={"Content-Type": "text/html"}).status_code == 403
    tampered = target["url"].replace("notes/a.txt", "notes/b.txt")
    assert httpx.put(tampered, content=body, headers={"Content-Type": "text/plain"}).status_code == 403
    assert httpx.put(target["url"], content=body, headers={"Content-Type": "text/plain"}).status_code == 200

    store = S3Store(served.root, s3.client())
    params = {"Bucket": store.bucket, "Key": f"mlruns/{run_id}/artifacts/notes/a.txt"}
    get_url = store.client.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
    short_lived = store.client.generate_presigned_url("get_object", Params=params, ExpiresIn=1)
    assert httpx.get(get_url).content == body
    assert httpx.get(get_url, headers={"Range": "bytes=6-14"}).content == b"presigned"
    assert httpx.get(get_url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
    time.sleep(2.1)
    expired = httpx.get(short_lived)
    assert expired.status_code == 403 and b"expired" in expired.content


def test_presigned_urls_name_the_public_endpoint_clients_use(
    s3: S3Server, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server reaches S3 at one address (compose: the service name), clients at another."""
    public = s3.endpoint_url.replace("127.0.0.1", "localhost")
    for name, value in {**s3.env(), "RUNSTREAM_S3_PUBLIC_ENDPOINT": public}.items():
        monkeypatch.setenv(name, value)
    store = S3Store(served.root)
    body = b"signed for the public address"
    put = store.presign_put("public/a.txt", len(body), "text/plain")
    get = store.presign_get("public/a.txt")
    assert put is not None and get is not None
    assert put.startswith(f"{public}/") and get.startswith(f"{public}/")
    assert httpx.put(put, content=body, headers={"Content-Type": "text/plain"}).status_code == 200
    assert httpx.get(get).content == body
    assert b"".join(store.read("public/a.txt", 0, len(body))) == body  # the server's own address


def test_presigned_multipart_with_plain_http(s3: S3Server, served: Served) -> None:
    run_id = "ba" * 16
    body = os.urandom(70 * MiB)
    api = httpx.Client(base_url=served.url, timeout=60)
    files = [{"path": "ckpt.bin", "size": len(body)}]
    [target] = api.post(f"/api/v1/runs/{run_id}/artifacts/uploads", json={"files": files}).json()["uploads"]
    upload = target["multipart"]
    assert (upload["part_size"], upload["parts"], len(upload["urls"])) == (16 * MiB, 5, 5)
    ids = {"path": "ckpt.bin", "upload_id": upload["upload_id"]}
    # More URLs on request (a long upload asks batch by batch), each signed with its part's length.
    more = api.post(f"/api/v1/runs/{run_id}/artifacts/multipart/urls", json={**ids, "size": len(body), "first": 4})
    assert len(more.json()["urls"]) == 2
    urls = upload["urls"][:3] + more.json()["urls"]
    step = upload["part_size"]
    assert httpx.put(urls[0], content=body[: step - 1]).status_code == 403  # a shorter part than signed
    etags = [httpx.put(url, content=body[i * step : (i + 1) * step]).headers["etag"] for i, url in enumerate(urls)]
    wrong = api.post(f"/api/v1/runs/{run_id}/artifacts/multipart/complete", json={**ids, "etags": etags, "size": 1})
    assert wrong.status_code == 400 and "declared" in wrong.json()["message"]  # and the object is removed
    assert not any(k.endswith(f"{run_id}/artifacts/ckpt.bin") for k in keys(s3, served.bucket))


def test_sdk_asks_for_part_urls_batch_by_batch(s3: S3Server, served: Served, tmp_path: Path) -> None:
    run_id = "bb" * 16
    sha = random_file(tmp_path / "ckpt.bin", 70 * MiB)
    client = ArtifactClient(served.url)
    files = [{"path": "ckpt.bin", "size": 70 * MiB}]
    [target] = client._call("POST", f"/api/v1/runs/{run_id}/artifacts/uploads", {"files": files})["uploads"]
    target["multipart"]["urls"] = target["multipart"]["urls"][:2]  # as a server answering in batches of 2
    stored = client._multipart(run_id, tmp_path / "ckpt.bin", target)
    assert (stored.size, stored.sha256) == (70 * MiB, sha)
    got = s3.client().get_object(Bucket=served.bucket, Key=f"mlruns/{run_id}/artifacts/ckpt.bin")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha


def test_reads_verify_and_serve_ranges(s3: S3Server, served: Served, tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(bytes(range(256)) * 100)
    with runstream.start_run(experiment="artifacts", tracking_uri=served.url) as run:
        run.log_artifact(tmp_path / "w.bin")
    token = run.end()
    content = f"{served.url}/api/v1/runs/{run.run_id}/artifacts/content/w.bin"
    whole = httpx.get(content, params={"after": token})
    assert whole.status_code == 200 and whole.content == bytes(range(256)) * 100
    assert whole.headers["x-runstream-sha256"] == hashlib.sha256(whole.content).hexdigest()
    part = httpx.get(content, headers={"Range": "bytes=-3"})
    assert (part.status_code, part.content, part.headers["content-range"]) == (
        206,
        b"\xfd\xfe\xff",
        "bytes 25597-25599/25600",
    )
    assert httpx.get(content, headers={"Range": "bytes=30000-"}).status_code == 416

    # Bytes changed behind runstream's back: the client refuses them, the server breaks the stream off.
    s3.client().put_object(Bucket=served.bucket, Key=f"mlruns/{run.run_id}/artifacts/w.bin", Body=b"x" * 25600)
    client = runstream.Client(served.url)
    with pytest.raises(runstream.ArtifactCorrupted):
        client.download_artifacts(run.run_id, "w.bin", tmp_path / "back.bin")
    assert not (tmp_path / "back.bin").exists()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(content)

    # Recorded but gone from the store, and never recorded: both 404, not 500.
    s3.client().delete_object(Bucket=served.bucket, Key=f"mlruns/{run.run_id}/artifacts/w.bin")
    for url in [content, f"{served.url}/api/v1/runs/{run.run_id}/artifacts/content/nope.bin"]:
        response = httpx.get(url)
        assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(runstream.ArtifactNotFound):
        client.download_artifacts(run.run_id, "w.bin", tmp_path / "back.bin")


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\\..\\escape.txt", "a\x00b", "a//b", "./a"],
)
def test_path_traversal_is_refused_with_400(s3: S3Server, served: Served, path: str) -> None:
    run_id = "cd" * 16
    before = keys(s3, served.bucket)
    api = httpx.Client(base_url=served.url)
    files = [{"path": path, "size": 1}]
    for response in [
        api.post(f"/api/v1/runs/{run_id}/artifacts/uploads", json={"files": files}),
        api.get(f"/api/v1/runs/{run_id}/artifacts/download", params={"path": path}),
        api.get(f"/api/v1/runs/{run_id}/artifacts", params={"path": path}),
        api.post("/api/v1/runs/%2e%2e/artifacts/uploads", json={"files": [{"path": "a", "size": 1}]}),
    ]:
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE" and response.json()["message"]
    with pytest.raises(UnsafePath):
        ArtifactClient(served.url).upload(run_id, [(Path(__file__), path)])
    assert keys(s3, served.bucket) == before


def test_size_limit_and_bad_requests(served: Served) -> None:
    run_id = "ef" * 16
    api = httpx.Client(base_url=served.url)
    too_big = api.post(
        f"/api/v1/runs/{run_id}/artifacts/uploads", json={"files": [{"path": "huge.bin", "size": 301 * MiB}]}
    )
    assert too_big.status_code == 413 and "limit" in too_big.json()["message"]
    bad_type = api.post(
        f"/api/v1/runs/{run_id}/artifacts/uploads",
        json={"files": [{"path": "a", "size": 1, "content_type": "text/plain\r\nx-evil: 1"}]},
    )
    assert bad_type.status_code == 400
    assert api.put(f"/api/v1/runs/{run_id}/artifacts/content/a.txt", content=b"x").status_code == 405
    ids = {"path": "a.bin", "upload_id": "no-such-upload"}
    assert api.post(f"/api/v1/runs/{run_id}/artifacts/multipart/abort", json=ids).status_code == 404
    complete = {**ids, "etags": ["x"], "size": 1}
    assert api.post(f"/api/v1/runs/{run_id}/artifacts/multipart/complete", json=complete).status_code == 404


def test_failed_multipart_upload_leaves_no_parts_behind(s3: S3Server, served: Served, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    random_file(big, 80 * MiB)
    client = ArtifactClient(served.url)
    original = client._put_part
    calls = 0

    def flaky(url: str, data: bytes) -> str:  # the third part's PUT meets a dead network
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("network down")
        return original(url, data)

    client._put_part = flaky  # type: ignore[method-assign]
    with pytest.raises(OSError, match="network down"):
        client.upload("12" * 16, [(big, "big.bin")])
    assert uploads_in_progress(s3, served.bucket) == []
    assert not any("big.bin" in k for k in keys(s3, served.bucket))


def test_failed_direct_upload_leaves_no_parts_behind(s3: S3Server, served: Served) -> None:
    store = S3Store(served.root, s3.client())
    started = []

    class Failing(HashingReader):
        def read(self, n: int = -1, /) -> bytes:
            if self.size > 100 * MiB:  # past the multipart threshold: parts are on their way
                started.extend(uploads_in_progress(s3, served.bucket))
                raise OSError("disk read error")
            return super().read(n)

    with pytest.raises(OSError, match="disk read error"), open("/dev/urandom", "rb") as source:
        store.upload("34" * 16 + "/artifacts/big.bin", Failing(source))
    assert started and uploads_in_progress(s3, served.bucket) == []


def test_s3_outage_is_a_retriable_503(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    env = {**s3.env(), "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}  # nothing listens there
    url, role = start_serve(tmp_path, env, "--artifact-root", f"s3://{bucket}/x")
    try:
        response = httpx.post(
            f"{url}/api/v1/runs/{'56' * 16}/artifacts/uploads",
            json={"files": [{"path": "big.bin", "size": 100 * MiB}]},
            timeout=60,
        )
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    finally:
        role.stop()


def test_api_role_issues_presigned_urls_and_reads_from_clickhouse(
    s3: S3Server, clickhouse: ClickHouseServer, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = {**os.environ, **s3.env(), "RUNSTREAM_CLICKHOUSE_URL": f"{clickhouse.url}/t{uuid.uuid4().hex[:10]}"}
    port = free_port()
    role = Role(tmp_path, "api", "--port", str(port), "--artifact-root", f"s3://{bucket}/p", env=env)
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        run_id = "ca" * 16
        files = [{"path": "m.bin", "size": 3}]
        [target] = api.post(f"/api/v1/runs/{run_id}/artifacts/uploads", json={"files": files}).json()["uploads"]
        assert httpx.put(target["url"], content=b"abc", headers={"Content-Type": target["content_type"]}).is_success
        assert s3.client().get_object(Bucket=bucket, Key=f"p/{run_id}/artifacts/m.bin")["Body"].read() == b"abc"
        # Stored but not recorded (no event yet): listings come from ClickHouse only.
        assert api.get(f"/api/v1/runs/{run_id}/artifacts").json()["files"] == []
        assert api.get(f"/api/v1/runs/{run_id}/artifacts/download", params={"path": "m.bin"}).status_code == 404
    finally:
        role.stop()


def test_credentials_go_to_the_api_never_to_presigned_urls(served: Served, tmp_path: Path) -> None:
    small, big = tmp_path / "s.txt", tmp_path / "b.bin"
    small.write_text("small")
    random_file(big, 70 * MiB)
    auth = RecordingAuth()
    client = ArtifactClient(served.url, auth=auth)
    run_id = "da" * 16
    stored = client.upload(run_id, [(small, "s.txt"), (big, "b.bin")])  # S3 refuses a request signed twice
    assert [s.size for s in stored] == [5, 70 * MiB]
    assert auth.sent and all(url.startswith(served.url) for _, url in auth.sent)
    assert {url.split("?")[0].rsplit("/", 1)[-1] for _, url in auth.sent} == {"uploads", "complete"}


@pytest.mark.parametrize("size", [300_000, 80 * MiB], ids=["one-part", "multipart"])
def test_mlflow_proxied_upload_lands_in_s3(s3: S3Server, served: Served, size: int) -> None:
    """MLflow's proxied artifact service: the server streams the request body into S3 (s3transfer
    reads it from its own threads, past the multipart threshold in parts) and reads it back."""
    mlflow = f"{served.url}/api/2.0/mlflow"
    run = httpx.post(f"{mlflow}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
    path = f"0/{run['run_id']}/artifacts/weights.bin"
    data = os.urandom(size)
    put = httpx.put(f"{served.url}/api/2.0/mlflow-artifacts/artifacts/{path}", content=data, timeout=120)
    assert put.status_code == 200, put.text
    assert f"mlruns/{run['run_id']}/artifacts/weights.bin" in keys(s3, served.bucket)
    back = httpx.get(f"{served.url}/api/2.0/mlflow-artifacts/artifacts/{path}", timeout=120)
    assert back.status_code == 200
    assert len(back.content) == size
    assert back.content == data
    assert uploads_in_progress(s3, served.bucket) == []


def test_archive_segments_are_listed_and_checked_on_s3(s3: S3Server, served: Served) -> None:
    """The log's archive on S3: segments listed back by range, a damaged one refused by its checksum."""
    store = S3Store(served.root, s3.client())
    topic = f"t{uuid.uuid4().hex[:8]}.events"
    first = [LogMessage(1, o, "run", bytes([o]) * 10) for o in range(5)]
    second = [LogMessage(1, o, "run", b"x") for o in range(5, 9)]
    written = [write_segment(store, topic, 1, first, 5), write_segment(store, topic, 1, second, 9)]
    assert list_segments(store, topic) == {1: written}
    assert read_segment(store, written[0]) == first
    store.upload(written[1].key, io.BytesIO(b"damaged"))
    with pytest.raises(CorruptSegment, match=r"partition 1, offsets 5\.\.8 .*checksum"):
        read_segment(store, written[1])
