"""The embedded default: `runstream serve` keeps artifacts in its data directory and serves them itself
(uploads and downloads go through its content endpoint; there are no presigned URLs)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import runstream
from runstream.sdk.artifacts import ArtifactClient
from runstream.server.cli import main
from tests.artifacts.conftest import RecordingAuth, start_serve

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("serve-local")
    env = {k: v for k, v in os.environ.items() if k != "RUNSTREAM_ARTIFACT_ROOT"}
    env["RUNSTREAM_ARTIFACT_MAX_SIZE"] = str(10 * MiB)
    url, role = start_serve(workdir, env)
    yield url, workdir / "data"
    role.stop()


def test_serve_stores_and_serves_artifacts_from_its_data_dir(embedded: tuple[str, Path], tmp_path: Path) -> None:
    url, data = embedded
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "loss.png").write_bytes(os.urandom(3 * MiB + 5))
    (tmp_path / "plots" / "acc.svg").write_text("<svg/>")
    (tmp_path / "model.txt").write_text("weights")
    with runstream.start_run(experiment="local", tracking_uri=url) as run:
        run.log_artifacts(tmp_path / "plots", artifact_path="plots")
        run.log_artifact(tmp_path / "model.txt")
    token = run.end()

    stored = data / "artifacts" / run.run_id / "artifacts"
    assert (stored / "plots" / "loss.png").read_bytes() == (tmp_path / "plots" / "loss.png").read_bytes()
    assert (stored / "model.txt").read_text() == "weights"
    client = runstream.Client(url)
    client.get_run(run.run_id, after=token)
    listing = httpx.get(f"{url}/api/v1/runs/{run.run_id}/artifacts").json()
    assert listing["root_uri"] == stored.as_uri()
    assert [(f["path"], f["is_dir"]) for f in listing["files"]] == [("model.txt", False), ("plots", True)]
    assert listing["files"][0]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    # MLflow's listing (its UI's): paths from the run's root, the root as the run's info says
    mlflow_api = f"{url}/api/2.0/mlflow"
    mlflow_listing = httpx.get(f"{mlflow_api}/artifacts/list", params={"run_uuid": run.run_id, "path": "plots"}).json()
    assert [(f["path"], f.get("file_size")) for f in mlflow_listing["files"]] == [
        ("plots/acc.svg", 6),
        ("plots/loss.png", 3 * MiB + 5),
    ]
    info = httpx.get(f"{mlflow_api}/runs/get", params={"run_uuid": run.run_id}).json()["run"]["info"]
    assert mlflow_listing["root_uri"] == info["artifact_uri"]
    assert httpx.get(f"{mlflow_api}/artifacts/list").status_code == 400  # no run named

    client.download_artifacts(run.run_id, "plots", tmp_path / "back")
    assert (tmp_path / "back" / "loss.png").read_bytes() == (tmp_path / "plots" / "loss.png").read_bytes()
    # one file into an existing folder lands inside it, under its own name (as cp and MLflow do)
    into = client.download_artifacts(run.run_id, "plots/acc.svg", tmp_path / "back")
    assert into == tmp_path / "back" / "acc.svg" and into.read_text() == "<svg/>"
    named = client.download_artifacts(run.run_id, "model.txt", tmp_path / "back" / "renamed.txt")
    assert named.read_text() == "weights"
    assert client.read_artifact(run.run_id, "plots/acc.svg", 1, 3) == b"svg"
    assert client.read_artifact(run.run_id, "plots/acc.svg", 4) == b"/>"


def test_content_uploads_stay_inside_the_run_and_under_the_limit(embedded: tuple[str, Path]) -> None:
    url, data = embedded
    run_id = "9a" * 16
    before = sorted(p for p in data.rglob("*"))
    for raw in ["%2e%2e/%2e%2e/evil.txt", "a/%2e%2e/%2e%2e/%2e%2e/evil.txt", "a%5c..%5cevil.txt", "a%00b"]:
        response = httpx.put(f"{url}/api/v1/runs/{run_id}/artifacts/content/{raw}", content=b"evil")
        assert response.status_code == 400, (raw, response.text)
    response = httpx.put(f"{url}/api/v1/runs/%2e%2e/artifacts/content/evil.txt", content=b"evil")
    assert response.status_code == 400
    assert sorted(p for p in data.rglob("*")) == before
    assert not list(data.parent.rglob("evil.txt"))

    too_big = httpx.put(f"{url}/api/v1/runs/{run_id}/artifacts/content/big.bin", content=b"x" * (10 * MiB + 1))
    assert too_big.status_code == 413

    def chunked(*parts: bytes) -> Iterator[bytes]:  # a body without Content-Length
        yield from parts

    for parts, status, size in [((), 200, 0), ((b"ab", b"cde"), 200, 5), ((b"x" * MiB,) * 11, 413, None)]:
        streamed = httpx.put(f"{url}/api/v1/runs/{run_id}/artifacts/content/chunked.bin", content=chunked(*parts))
        assert streamed.status_code == status, streamed.text
        assert size is None or streamed.json()["size"] == size
    ids = {"path": "a.bin", "upload_id": "u"}
    assert httpx.post(f"{url}/api/v1/runs/{run_id}/artifacts/multipart/abort", json=ids).status_code == 404
    ok = httpx.put(f"{url}/api/v1/runs/{run_id}/artifacts/content/ok.bin", content=b"x" * 10)
    assert ok.status_code == 200 and ok.json()["size"] == 10
    # A file and a folder cannot share a name on disk (S3 would keep both): a 400, not a 500.
    for clash in ["ok.bin/inner.bin", "dir/f.bin", "dir"]:
        expected = 200 if clash == "dir/f.bin" else 400
        response = httpx.put(f"{url}/api/v1/runs/{run_id}/artifacts/content/{clash}", content=b"y")
        assert response.status_code == expected, (clash, response.text)
    assert (data / "artifacts" / run_id / "artifacts" / "ok.bin").read_bytes() == b"x" * 10


def test_credentials_go_with_uploads_to_the_server_itself(embedded: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = embedded
    (tmp_path / "a.txt").write_text("a")
    auth = RecordingAuth()
    ArtifactClient(url, auth=auth).upload("8b" * 16, [(tmp_path / "a.txt", "a.txt")])
    assert [method for method, _ in auth.sent] == ["POST", "PUT"]  # the content PUT is the API's own URL


@pytest.mark.parametrize("role", ["serve", "gateway", "api"])
def test_roles_take_the_artifact_options(role: str) -> None:
    shown = CliRunner().invoke(main, [role, "--help"]).output
    assert "--artifact-root" in shown and "RUNSTREAM_ARTIFACT_ROOT" in shown and "--artifact-max-size" in shown
