"""Promotion gates against `runstream serve`, over MLflow's REST API (as its client sends it) and the
native one: refusals name each failed check, an allowed move lands with its decision, dry runs write
nothing, every decision is in the model's history, and concurrent promotions cannot both pass a gate
that compares with the version the alias names now. (tests/mlflow_client has the official client's
view; tests/store/test_gates.py the checks' semantics.)"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from typing import Any

import httpx
import pytest

API = "/api/2.0/mlflow"


class Registry:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)

    def mlflow(self, method: str, path: str, **body: Any) -> httpx.Response:
        return self.http.request(method, API + path, json=body)

    def ok(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        response = self.mlflow(method, path, **body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def model_with_versions(self, accuracies: list[float], statuses: list[str] | None = None) -> str:
        """A model whose version i+1 was trained by a run with metric accuracy[i] and tag
        validation_status statuses[i]."""
        experiment = self.ok("POST", "/experiments/create", name=f"gates-{uuid.uuid4().hex}")["experiment_id"]
        name = f"gated-{uuid.uuid4().hex[:8]}"
        self.ok("POST", "/registered-models/create", name=name)
        for i, accuracy in enumerate(accuracies):
            run = self.ok("POST", "/runs/create", experiment_id=experiment)["run"]["info"]["run_id"]
            self.ok("POST", "/runs/log-metric", run_id=run, key="accuracy", value=accuracy, timestamp=0, step=0)
            if statuses:
                self.ok("POST", "/runs/set-tag", run_id=run, key="validation_status", value=statuses[i])
            self.ok("POST", "/model-versions/create", name=name, source=f"s3://models/{i}", run_id=run)
        return name

    def history(self, name: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/api/v1/registered-models/{name}/history")
        assert response.status_code == 200, response.text
        return response.json()["events"]  # type: ignore[no-any-return]

    def alias(self, name: str, alias: str) -> str | None:
        aliases = self.ok("GET", f"/registered-models/get?name={name}")["registered_model"].get("aliases", [])
        return next((a["version"] for a in aliases if a["alias"] == alias), None)


@pytest.fixture(scope="module")
def registry(serve: str) -> Registry:
    return Registry(serve)


GATE = "metrics.accuracy >= 0.9 and metrics.accuracy >= current.metrics.accuracy and tags.validation_status = 'passed'"


def test_an_alias_gate_set_as_a_model_tag_refuses_and_allows_as_its_condition_says(registry: Registry) -> None:
    name = registry.model_with_versions([0.91, 0.85, 0.95, 0.97], ["passed", "passed", "failed", "passed"])
    registry.ok("POST", "/registered-models/set-tag", name=name, key="runstream.gate.prod", value=GATE)
    registry.ok("POST", "/registered-models/alias", name=name, alias="prod", version="1")
    refused = registry.mlflow("POST", "/registered-models/alias", name=name, alias="prod", version="2")
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    message = refused.json()["message"]
    assert "metrics.accuracy >= 0.9 failed (the candidate has 0.85)" in message
    assert (
        "metrics.accuracy >= current.metrics.accuracy failed (the candidate has 0.85, the current version 0.91)"
        in message
    )
    assert "validation_status" not in message  # that check passed
    refused = registry.mlflow("POST", "/registered-models/alias", name=name, alias="prod", version="3")
    assert (
        refused.status_code == 403
        and "tags.validation_status = 'passed' failed (the candidate has failed)" in (refused.json()["message"])
    )
    assert registry.alias(name, "prod") == "1"
    registry.ok("POST", "/registered-models/alias", name=name, alias="prod", version="4")
    assert registry.alias(name, "prod") == "4"
    registry.ok("POST", "/registered-models/alias", name=name, alias="other", version="2")  # no gate: no decision

    decided = [e for e in registry.history(name) if e["event"].startswith("gate_")]
    assert [(e["event"], e["version"], e["current_version"]) for e in decided] == [
        ("gate_allowed", "1", None),
        ("gate_refused", "2", "1"),
        ("gate_refused", "3", "1"),
        ("gate_allowed", "4", "1"),
    ]
    assert decided[1]["checks"] == [
        {"condition": "metrics.accuracy >= 0.9", "passed": False, "actual": "0.85", "expected": None},
        {
            "condition": "metrics.accuracy >= current.metrics.accuracy",
            "passed": False,
            "actual": "0.85",
            "expected": "0.91",
        },
        {"condition": "tags.validation_status = 'passed'", "passed": True, "actual": "passed", "expected": None},
    ]
    events = [e["event"] for e in registry.history(name)]
    allowed = events.index("gate_allowed")
    assert events[allowed + 1] == "alias_set"  # the decision comes just before the move it allowed


def test_a_stage_gate_through_the_native_api_and_a_dry_run_that_writes_nothing(registry: Registry) -> None:
    name = registry.model_with_versions([0.8, 0.95])
    gates = f"/api/v1/registered-models/{name}/gates"
    put = registry.http.put(f"{gates}/production", json={"condition": "metrics.accuracy > 0.9"})
    assert put.status_code == 200 and put.json()["target"] == "Production"
    bad = registry.http.put(f"{gates}/Staging", json={"condition": "metrics.accuracy >>= 1"})
    assert bad.status_code == 400 and "invalid gate condition" in bad.json()["message"]
    assert registry.http.get(gates).json()["gates"] == [
        {"target": "Production", "condition": "metrics.accuracy > 0.9", "approvers": []}
    ]
    dry = registry.http.post(f"{gates}/Production/check", json={"version": "1", "kind": "stage"}).json()
    assert (dry["allowed"], dry["checks"][0]["actual"]) == (False, "0.8")
    assert not [e for e in registry.history(name) if e["event"].startswith("gate_")]  # a dry run is not a decision

    refused = registry.mlflow("POST", "/model-versions/transition-stage", name=name, version="1", stage="Production")
    assert refused.status_code == 403 and "stage 'Production'" in refused.json()["message"]
    moved = registry.http.post(f"/api/v1/registered-models/{name}/versions/2/stage", json={"stage": "production"})
    assert moved.status_code == 200 and moved.json()["gate"]["allowed"] is True
    version = registry.ok("GET", f"/model-versions/get?name={name}&version=2")["model_version"]
    assert version["current_stage"] == "Production"
    registry.ok("POST", "/model-versions/transition-stage", name=name, version="1", stage="Staging")  # ungated

    assert registry.http.delete(f"{gates}/Production").status_code == 200
    assert registry.http.delete(f"{gates}/Production").status_code == 404
    registry.ok("POST", "/model-versions/transition-stage", name=name, version="1", stage="Production")
    invalid = registry.mlflow("POST", "/registered-models/set-tag", name=name, key="runstream.gate.x", value="a ==")
    assert invalid.status_code == 400 and invalid.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_concurrent_promotions_cannot_both_pass_a_gate_that_compares_with_the_current_version(
    registry: Registry,
) -> None:
    """Writers race to point the alias at versions of different accuracy through a gate that only lets
    it move up. Checked against a stale current version, a lower one could land after a higher one;
    checked one after the other, each allowed move starts where the previous one left the alias."""
    accuracies = [0.5 + 0.05 * i for i in range(6)]
    name = registry.model_with_versions(accuracies)
    registry.ok(
        "POST",
        "/registered-models/set-tag",
        name=name,
        key="runstream.gate.champion",
        value="metrics.accuracy >= current.metrics.accuracy",
    )
    codes: list[int] = []

    def promote(seed: int) -> None:
        order = list(range(1, len(accuracies) + 1))
        random.Random(seed).shuffle(order)
        with httpx.Client(base_url=str(registry.http.base_url), timeout=60) as http:
            for version in order:
                response = http.post(
                    f"{API}/registered-models/alias", json={"name": name, "alias": "champion", "version": str(version)}
                )
                codes.append(response.status_code)

    writers = [threading.Thread(target=promote, args=(seed,)) for seed in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert set(codes) <= {200, 403} and 403 in codes
    assert registry.alias(name, "champion") == str(len(accuracies))
    allowed = [e for e in registry.history(name) if e["event"] == "gate_allowed"]
    for before, after in itertools.pairwise(allowed):
        assert after["current_version"] == before["version"]  # each check saw the move before it
        assert accuracies[int(after["version"]) - 1] >= accuracies[int(before["version"]) - 1]
    assert len(allowed) + sum(e["event"] == "gate_refused" for e in registry.history(name)) == len(codes)
