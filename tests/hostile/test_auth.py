"""With an auth file: every route but the probes needs credentials (Basic or Bearer, as the MLflow
client sends them), access is checked per experiment on reads and writes, secrets never reach logs."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from runstream.base.auth import AuthConfigError, Users, hash_password, hash_token
from runstream.ingest.gateway import Checked, RunOwners
from runstream.schemas.framing import CONTENT_TYPE, frame
from tests.hostile.conftest import RUNS, message, seeded_app

ALICE, CAROL, DAVE = ("alice", "alice-secret"), ("carol", "carol-secret"), ("dave", "dave-secret")
BOB_TOKEN = "bob-token-0123456789"


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "auth.toml"
    path.write_text(
        f"""
[users.alice]
password = "{hash_password(ALICE[1], iterations=1000)}"
access = "write"

[users.bob]
tokens = ["{hash_token(BOB_TOKEN)}"]
access = "none"
experiments = {{ "1" = "read" }}

[users.carol]
password = "{hash_password(CAROL[1], iterations=1000)}"
access = "read"

[users.dave]
password = "{hash_password(DAVE[1], iterations=1000)}"
access = "write"
"""
    )
    return path


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, auth_file: Path) -> Iterator[FastAPI]:
    with seeded_app(request, tmp_path_factory.mktemp("auth-app"), Users.load(auth_file)) as app:
        yield app


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BOB = {"Authorization": f"Bearer {BOB_TOKEN}"}


def params_event(run_id: str) -> bytes:
    return frame([message("ParamsLogged", run_id=run_id, params={"p": "1"})[1]])


def post_events(http: TestClient, body: bytes, headers: dict[str, str]) -> int:
    response = http.post("/api/v1/events", content=body, headers={**headers, "content-type": CONTENT_TYPE})
    return int(response.status_code)


def test_every_route_but_the_probes_needs_credentials(app: FastAPI) -> None:
    http = TestClient(app)
    for path in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert http.get(path).status_code == 200, path
    for headers in (
        {},
        basic("alice", "wrong"),
        basic("nobody", "x"),
        {"Authorization": "Basic %%%"},
        BOB | {"Authorization": "Bearer nope"},
    ):
        for response in (
            http.get("/api/v1/experiments", headers=headers),
            http.get(f"/api/v1/runs/{RUNS['1']}", headers=headers),
            http.post("/api/v1/runs/search", json={"experiment_ids": ["1"]}, headers=headers),
        ):
            assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"
            assert "Basic" in response.headers["www-authenticate"]
        assert post_events(http, params_event(RUNS["1"]), headers) == 401


def test_access_is_checked_per_experiment(app: FastAPI) -> None:
    http = TestClient(app)
    alice = basic(*ALICE)

    def visible(headers: dict[str, str]) -> list[str]:
        return [e["experiment_id"] for e in http.get("/api/v1/experiments", headers=headers).json()["experiments"]]

    assert visible(alice) == ["1", "2", "0"] and visible(BOB) == ["1"]  # 0: Default, made at start
    assert http.get(f"/api/v1/runs/{RUNS['1']}", headers=BOB).status_code == 200
    assert http.get(f"/api/v1/runs/{RUNS['1']}/artifacts", headers=BOB).status_code == 200
    upload = {"path": "model.bin", "size": 3, "content_type": "application/octet-stream"}
    for denied in (
        http.get(f"/api/v1/runs/{RUNS['2']}", headers=BOB),
        http.get("/api/v1/experiments/2", headers=BOB),
        http.get(f"/api/v1/runs/{RUNS['2']}/metric-history", params={"key": "loss"}, headers=BOB),
        http.post("/api/v1/series", json={"run_ids": [RUNS["1"], RUNS["2"]], "keys": ["loss"]}, headers=BOB),
        http.post("/api/v1/runs/search", json={"experiment_ids": ["1", "2"]}, headers=BOB),
        http.get("/api/v1/runs", params={"experiment_id": "2"}, headers=BOB),
        http.get(f"/api/v1/runs/{RUNS['2']}/artifacts", headers=BOB),
        http.post(f"/api/v1/runs/{RUNS['1']}/artifacts/uploads", json={"files": [upload]}, headers=BOB),
    ):
        assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"
    # Writes: read access is not enough, write access to every experiment touched is.
    assert post_events(http, params_event(RUNS["1"]), BOB) == 403
    assert post_events(http, params_event(RUNS["2"]), basic(*CAROL)) == 403
    assert post_events(http, params_event(RUNS["2"]), alice) == 200
    uploads = http.post(f"/api/v1/runs/{RUNS['2']}/artifacts/uploads", json={"files": [upload]}, headers=alice)
    assert uploads.status_code == 200


def test_a_run_created_in_a_writable_experiment_is_writable_before_it_is_projected(tmp_path: Path) -> None:
    # bob may write experiment 7 only: he creates a run there and logs to it right away
    auth = tmp_path / "auth.toml"
    auth.write_text(f'[users.bob]\ntokens = ["{hash_token(BOB_TOKEN)}"]\nexperiments = {{ "7" = "write" }}\n')
    users = Users.load(auth)
    owners = RunOwners(store=None)
    run_id = "ab" * 16
    created = Checked([], {"7"}, set(), {run_id: "7"})
    assert owners.of(created) == ["7", "7"]
    assert owners.of(Checked([], set(), {run_id}, {})) == ["7"]
    assert owners.of(Checked([], set(), {"cd" * 16}, {})) == [None]  # unknown: bob's default (none) applies
    bob = users.authenticate(f"Bearer {BOB_TOKEN}")
    assert bob is not None and bob.can("write", "7") and not bob.can("write", None) and not bob.can("read", "1")


def test_secrets_never_reach_the_logs(app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    http = TestClient(app)
    with caplog.at_level(logging.DEBUG):
        http.get("/api/v1/experiments", headers=basic("alice", "guess-123"))
        http.get("/api/v1/experiments", headers=basic(*ALICE))
        http.get("/api/v1/experiments", headers={"Authorization": "Bearer leaked-token-xyz"})
        post_events(http, params_event(RUNS["1"]), BOB)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("guess-123", ALICE[1], "leaked-token-xyz", BOB_TOKEN):
        assert secret not in logged


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[users.x]\npassword = 'plain-text'\n",
        "[users.x]\naccess = 'admin'\n",
        "[users.x]\ntokens = ['raw-token']\n",
        "not toml [",
    ],
)
def test_a_bad_auth_file_is_refused_at_start(tmp_path: Path, text: str) -> None:
    path = tmp_path / "auth.toml"
    path.write_text(text)
    with pytest.raises(AuthConfigError):
        Users.load(path)


def test_mlflow_routes_check_access_too(app: FastAPI) -> None:
    http = TestClient(app)
    api = "/api/2.0/mlflow"
    assert http.get(f"{api}/runs/get", params={"run_id": RUNS["1"]}).status_code == 401
    assert http.get(f"{api}/runs/get", params={"run_id": RUNS["1"]}, headers=BOB).status_code == 200
    denied = http.get(f"{api}/runs/get", params={"run_id": RUNS["2"]}, headers=BOB)
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"
    param = {"run_id": RUNS["1"], "key": "k", "value": "v"}
    assert http.post(f"{api}/runs/log-parameter", json=param, headers=BOB).status_code == 403
    assert http.post(f"{api}/runs/search", json={"experiment_ids": ["2"]}, headers=BOB).status_code == 403
    assert http.post(f"{api}/runs/search", json={"experiment_ids": ["1"]}, headers=BOB).status_code == 200
    assert http.post(f"{api}/experiments/create", json={"name": "new"}, headers=basic(*CAROL)).status_code == 403
    assert http.post(f"{api}/runs/log-parameter", json=param, headers=basic(*ALICE)).status_code == 200
    searched = http.post(f"{api}/experiments/search", json={"max_results": 100}, headers=BOB).json()["experiments"]
    assert [e["experiment_id"] for e in searched] == ["1"]  # only what bob may read
    assert (
        http.get(f"{api}/experiments/get-by-name", params={"experiment_name": "exp1"}, headers=BOB).status_code == 200
    )
    assert (
        http.get(f"{api}/experiments/get-by-name", params={"experiment_name": "exp2"}, headers=BOB).status_code == 403
    )


def test_registry_needs_the_users_default_access_and_records_who(app: FastAPI) -> None:
    http = TestClient(app)
    api = "/api/2.0/mlflow"
    model = {"name": "guarded"}
    assert http.post(f"{api}/registered-models/create", json=model, headers=basic(*CAROL)).status_code == 403
    assert http.post(f"{api}/registered-models/create", json=model, headers=basic(*ALICE)).status_code == 200
    version = {"name": "guarded", "source": "s3://b/m"}
    assert http.post(f"{api}/model-versions/create", json=version, headers=basic(*ALICE)).status_code == 200
    alias = {"name": "guarded", "alias": "prod", "version": "1"}
    assert http.post(f"{api}/registered-models/alias", json=alias, headers=basic(*CAROL)).status_code == 403
    assert http.post(f"{api}/registered-models/alias", json=alias, headers=basic(*ALICE)).status_code == 200
    read = http.get(f"{api}/registered-models/get", params=model, headers=basic(*CAROL))
    assert read.status_code == 200 and read.json()["registered_model"]["aliases"] == [{"alias": "prod", "version": "1"}]
    latest = http.post(f"{api}/registered-models/get-latest-versions", json=model, headers=basic(*CAROL))
    assert latest.status_code == 200  # a POST that only reads
    assert http.get(f"{api}/registered-models/get", params=model, headers=BOB).status_code == 403
    assert http.get("/api/v1/registered-models/guarded/history", headers=BOB).status_code == 403
    history = http.get("/api/v1/registered-models/guarded/history", headers=basic(*CAROL)).json()["events"]
    assert [(e["event"], e["user"]) for e in history] == [
        ("model_created", "alice"),
        ("version_created", "alice"),
        ("alias_set", "alice"),
    ]


def test_a_gate_with_approvers_lets_only_them_move_its_alias(app: FastAPI) -> None:
    http = TestClient(app)
    api, alice, dave = "/api/2.0/mlflow", basic(*ALICE), basic(*DAVE)
    assert http.post(f"{api}/registered-models/create", json={"name": "approved"}, headers=alice).status_code == 200
    for _ in range(2):
        version = {"name": "approved", "source": "s3://b/m"}
        assert http.post(f"{api}/model-versions/create", json=version, headers=alice).status_code == 200
    gate = {"condition": "tags.reviewed IS NULL", "approvers": ["alice"]}  # met: the versions have no run
    put = http.put("/api/v1/registered-models/approved/gates/prod", json=gate, headers=dave)
    assert put.status_code == 200 and put.json()["approvers"] == ["alice"]
    refused = http.post(
        f"{api}/registered-models/alias", json={"name": "approved", "alias": "prod", "version": "1"}, headers=dave
    )
    assert refused.status_code == 403 and "user in (alice) failed (asked by dave)" in refused.json()["message"]
    moved = http.post("/api/v1/registered-models/approved/aliases/prod", json={"version": "2"}, headers=alice)
    assert moved.status_code == 200 and moved.json()["gate"]["allowed"] is True
    history = http.get("/api/v1/registered-models/approved/history", headers=alice).json()["events"]
    assert [(e["event"], e["user"]) for e in history if e["event"].startswith(("gate", "alias"))] == [
        ("gate_refused", "dave"),
        ("gate_allowed", "alice"),
        ("alias_set", "alice"),
    ]


def test_logged_models_and_mlflow_artifacts_check_access(app: FastAPI) -> None:
    http = TestClient(app)
    api, alice = "/api/2.0/mlflow", basic(*ALICE)
    created = http.post(f"{api}/logged-models", json={"experiment_id": "2", "name": "m"}, headers=alice)
    assert created.status_code == 200, created.text
    model_id = created.json()["model"]["info"]["model_id"]
    assert http.post(f"{api}/logged-models", json={"experiment_id": "1"}, headers=BOB).status_code == 403
    for denied in (
        http.get(f"{api}/logged-models/{model_id}", headers=BOB),
        http.patch(f"{api}/logged-models/{model_id}", json={"status": "LOGGED_MODEL_READY"}, headers=basic(*CAROL)),
        http.delete(f"{api}/logged-models/{model_id}", headers=BOB),
        http.post(f"{api}/logged-models/search", json={"experiment_ids": ["2"]}, headers=BOB),
        http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": f"2/{RUNS['2']}/artifacts"}, headers=BOB),
        http.put(f"/api/2.0/mlflow-artifacts/artifacts/1/{RUNS['1']}/artifacts/x.txt", content=b"x", headers=BOB),
        http.put(f"/api/2.0/mlflow-artifacts/artifacts/2/models/{model_id}/artifacts/x", content=b"x", headers=BOB),
    ):
        assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"
    assert http.post(f"{api}/logged-models/search", json={"experiment_ids": ["1"]}, headers=BOB).status_code == 200
    assert http.get(f"{api}/logged-models/{model_id}", headers=basic(*CAROL)).status_code == 200
    path = f"/api/2.0/mlflow-artifacts/artifacts/1/{RUNS['1']}/artifacts/x.txt"
    assert http.put(path, content=b"x", headers=alice).status_code == 200
    assert http.get(path, headers=BOB).content == b"x"
