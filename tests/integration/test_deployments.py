"""Deployment records against `runstream serve`: a deploy tool's HTTP hook and `runstream deploy` /
`undeploy` report which version serves where; the model's history and its current deployments say so,
and bad reports are refused with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
import pytest

import runstream
from tests.integration.roles import REPO

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def model(serve: str) -> str:
    name = f"deployed-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=serve, timeout=60) as http:
        http.post(f"{API}/registered-models/create", json={"name": name}).raise_for_status()
        for i in range(3):
            http.post(f"{API}/model-versions/create", json={"name": name, "source": f"s3://m/{i}"}).raise_for_status()
    return name


def runstream_cli(serve: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNSTREAM_TRACKING_URI": serve}
    command = [sys.executable, "-m", "runstream", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_reports_from_the_hook_and_the_cli_are_the_models_deployments_and_history(serve: str, model: str) -> None:
    client = runstream.Client(serve)
    client.record_deployment(model, 1, "prod", note="release 1.0")
    done = runstream_cli(serve, "deploy", model, "2", "--env", "eu-canary", "--note", "canary of 2.0")
    assert done.returncode == 0 and f"{model} v2 serves in eu-canary" in done.stdout, done.stderr
    client.record_deployment(model, "2", "prod", note="release 2.0")
    assert runstream_cli(serve, "undeploy", model, "--env", "eu-canary").returncode == 0

    now = client.get_deployments(model)
    assert [(d["environment"], d["version"], d["note"]) for d in now] == [("prod", "2", "release 2.0")]
    deployed = [e for e in client.get_model_history(model) if e["event"] in ("deployed", "undeployed")]
    assert [(e["event"], e["environment"], e["version"], e["previous_version"]) for e in deployed] == [
        ("deployed", "prod", "1", None),
        ("deployed", "eu-canary", "2", None),
        ("deployed", "prod", "2", "1"),
        ("undeployed", "eu-canary", None, "2"),
    ]
    assert now[0]["since"] == deployed[2]["time"]


def test_bad_reports_are_refused_with_the_reason(serve: str, model: str) -> None:
    hook = f"{serve}/api/v1/registered-models/{model}/deployments"
    missing = httpx.post(hook, json={"environment": "prod", "version": "9"})
    assert missing.status_code == 404 and "version=9" in missing.json()["message"]
    bad = httpx.post(hook, json={"environment": "eu canary", "version": "1"})
    assert bad.status_code == 400 and "environment 'eu canary' is invalid" in bad.json()["message"]
    nowhere = httpx.delete(f"{hook}/staging")
    assert nowhere.status_code == 404 and "serves in 'staging'" in nowhere.json()["message"]
    no_model = httpx.post(
        f"{serve}/api/v1/registered-models/nope-{uuid.uuid4().hex}/deployments",
        json={"environment": "a", "version": "1"},
    )
    assert no_model.status_code == 404
    done = runstream_cli(serve, "deploy", model, "9", "--env", "prod")
    assert done.returncode != 0 and "version=9" in done.stderr
