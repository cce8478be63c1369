"""The official MLflow client, unchanged, against `runstream serve` and the distributed setup
(gateway → Kafka → projector → a 2-shard ClickHouse cluster, artifacts in S3): it runs in its own venv
(tests/mlflow_client/) through tests/mlflow_client/scenarios.py, whose JSON results are asserted
here; the limits the client never lets through are checked over plain HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import runstream
from runstream.schemas.artifact_paths import run_prefix
from tests.integration.conftest import Stack
from tests.services.clickhouse_cluster import ClickHouseCluster
from tests.services.kafka_broker import KafkaBroker
from tests.services.ports import free_port
from tests.services.process import spawn, terminate, wait_until
from tests.services.s3_server import S3Server
from tests.venvs import REPO_TESTS, cached_python

MLFLOW_CLIENT = REPO_TESTS / "mlflow_client"
CACHED_VENVS = [MLFLOW_CLIENT / f"requirements-{major}.txt" for major in ("3", "2")]  # built ahead (tests/conftest.py)
API = "/api/2.0/mlflow"
INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"


@dataclass
class Target:
    """Where the client points: its tracking URI, and the S3 bucket holding artifacts if any."""

    uri: str
    bucket: str | None = None


@pytest.fixture(scope="module")
def distributed(
    tmp_path_factory: pytest.TempPathFactory, kafka: KafkaBroker, clickhouse_cluster: ClickHouseCluster, s3: S3Server
) -> Iterator[Target]:
    """The distributed setup: a gateway (MLflow's API, proxied artifacts in S3) → Kafka → a projector
    → ClickHouse as a cluster of two shards (Distributed tables sharded by run, experiment or model:
    the widest setup, so every answer below is also one that crosses shards); the client is given
    only the gateway's URL."""
    stack = Stack(tmp_path_factory.mktemp("distributed"), kafka, clickhouse_cluster.nodes[0])
    bucket = s3.new_bucket()
    stack.env.update(
        {
            **s3.env(),
            "RUNSTREAM_ARTIFACT_ROOT": f"s3://{bucket}/mlruns",
            "RUNSTREAM_CLICKHOUSE_CLUSTER": clickhouse_cluster.name,
        }
    )
    try:
        port = free_port()
        stack.start_together(("projector",), ("webhooks",), ("gateway", "--port", str(port)))
        yield Target(f"http://127.0.0.1:{port}", bucket)
    finally:
        stack.close()


# Both majors of the client against serve, and the current one against the distributed setup: the
# server code a major's requests meet is the same on both targets, so these three cover the fourth.
CLIENTS = [("serve", "3"), ("serve", "2"), ("distributed", "3")]


@pytest.fixture(scope="module", params=CLIENTS, ids=[f"mlflow{major}-{target}" for target, major in CLIENTS])
def client(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(target, major version of the client)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def target(client: tuple[str, str], request: pytest.FixtureRequest) -> Target:
    if client[0] == "serve":
        return Target(request.getfixturevalue("serve"))
    distributed: Target = request.getfixturevalue("distributed")
    return distributed


@pytest.fixture(scope="module")
def scenario_runs(
    serve: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (target, major), what the scenarios read back through that client: all at once, as they
    mostly wait on the servers (their names carry the version, so serve's two share the server);
    serve's start while the distributed roles do. (Splitting the distributed target's scenarios over
    two processes was slower in a full run: the phase is bound by the two cores.)"""
    running = {}

    def start(name: str, uri: str) -> None:
        for target, major in CLIENTS:
            if target != name:
                continue
            python = cached_python(MLFLOW_CLIENT / f"requirements-{major}.txt")
            out = tmp_path_factory.mktemp("mlflow-client") / "results.json"
            command = [str(python), str(MLFLOW_CLIENT / "scenarios.py"), uri, str(out), f"v{major}-"]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            running[target, major] = (process, out)

    start("serve", serve)
    distributed: Target = request.getfixturevalue("distributed")
    start("distributed", distributed.uri)
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for (target, major), (process, out) in running.items():
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"mlflow {major}.x scenarios against {target}: {stderr}"
        results[target, major] = json.loads(out.read_text())["results"]
    return results


@pytest.fixture(scope="module")
def client_results(client: tuple[str, str], scenario_runs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """What the scenarios read back through one major version of the client, against one target."""
    return scenario_runs[client]


def result(results: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = results[name]
    assert "crashed" not in found, found["crashed"]
    return found


def test_fluent_logging_reads_back_through_the_client(client_results: dict[str, Any]) -> None:
    got = result(client_results, "fluent_tracking")
    parent, child = got["parent"], got["child"]
    assert (parent["run_name"], parent["status"], parent["end_time_set"]) == ("parent", "FINISHED", True)
    assert parent["params"] == {"lr": "0.01", "optimizer": "adam", "layers": "3"}
    assert parent["metrics"] == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    assert parent["tags"]["team"] == "ds" and parent["tags"]["stage"] == "dev"
    assert "doomed" not in parent["tags"]
    assert parent["tags"]["mlflow.runName"] == "parent"
    assert got["history"] == [[s, 1 / (s + 1)] for s in range(5)]
    assert child["tags"]["mlflow.parentRunId"] == parent["run_id"]
    assert child["metrics"] == {"child_metric": 1.5} and child["experiment_id"] == got["experiment_id"]
    assert got["children"] == ["child"]


def test_runs_start_in_the_default_experiment(client_results: dict[str, Any]) -> None:
    got = result(client_results, "default_experiment")
    assert got["default"] == ["0", "active"]
    assert (got["experiment_id"], got["status"]) == ("0", "RUNNING")
    assert got["run_name"]  # named for the user, as MLflow does


def test_search_runs_filters_orders_and_pages(client_results: dict[str, Any]) -> None:
    got = result(client_results, "search_runs")
    assert got["filtered"] == ["r4", "r2", "r0"]
    assert got["pages"] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert got["like"] == ["r4"]
    assert got["bad_filter"] == got["or_filter"] == INVALID
    assert got["trailing_and"] == ["r1"]  # a dangling AND is skipped, as MLflow does


def test_metric_history_pages_past_the_clients_page_size(client_results: dict[str, Any]) -> None:
    got = result(client_results, "history_paging")
    assert (got["count"], got["steps_in_order"]) == (30_000, True)
    assert got["last"] == [29_999, 14_999.5, 30_999]
    assert got["latest"] == {"m": 14_999.5}


def test_delete_restore_rename_and_experiment_search(client_results: dict[str, Any]) -> None:
    got = result(client_results, "lifecycle")
    assert (got["deleted"], got["restored"]) == ("deleted", "active")
    assert (got["deleted_only"], got["active_only"]) == ([got["run_id"]], [])
    assert got["log_to_deleted"] == INVALID
    assert got["updated"] == ["KILLED", "renamed-run", "renamed-run"]
    assert got["renamed"] == ["compat-lifecycle-renamed", {"owner": "me"}]
    assert (got["experiment_deleted"], got["by_name_stage"], got["restored_experiment"]) == (
        "deleted",
        "deleted",
        "active",
    )
    assert got["run_with_experiment"] == ["deleted", "active"]
    # MLflow's answers (its server, 3.17): a rename onto a taken name is BAD_REQUEST; restoring an
    # active or deleting a deleted experiment finds none; renaming a deleted one is INVALID_STATE
    # (MLflow answers that with a 500, runstream with a 400).
    assert got["refused"] == ["BAD_REQUEST", MISSING, MISSING, "INVALID_STATE", "INVALID_PARAMETER_VALUE"]
    assert "compat-lifecycle-renamed" in got["searched"]
    assert got["searched"] == sorted(got["searched"])


def test_dataset_inputs_are_logged_and_searchable(client_results: dict[str, Any]) -> None:
    got = result(client_results, "datasets")
    assert got["run"]["datasets"] == [{"name": "iris", "digest": "abc123", "tags": {"mlflow.data.context": "training"}}]
    assert got["searched"] == [got["run"]["run_id"]]


def test_refused_writes_raise_mlflow_errors(client_results: dict[str, Any]) -> None:
    got = result(client_results, "errors")
    assert got["same_param_again"] is None  # re-logging the same value is allowed
    assert got["changed_param"] == got["changed_param_in_batch"] == INVALID
    assert got["params"] == {"p": "1", "long": "x" * 6000, "long2": "z" * 6000}  # cut, as MLflow 3 stores them
    assert (got["tags"]["long"], got["tags"]["long2"]) == ("y" * 8000, "w" * 8000)
    assert got["duplicate_experiment"] == "RESOURCE_ALREADY_EXISTS"
    assert got["missing_run"] == got["missing_experiment"] == got["run_in_missing_experiment"] == MISSING
    assert got["missing_name"] is True
    assert got["bad_metric_name"] == INVALID
    assert got["long_values"] is None
    assert (got["nan_metric"], got["nan_read_back"]) == (None, "nan")


def test_artifacts_round_trip_through_the_client(client_results: dict[str, Any]) -> None:
    got = result(client_results, "artifacts")
    assert got["artifact_uri"].startswith("mlflow-artifacts:/") and got["artifact_uri"].endswith("/artifacts")
    assert got["root"] == [
        ["copies", True, None],
        ["parts", True, None],
        ["tree", True, None],
        ["weights.bin", False, 2_000_000],
    ]
    assert got["tree"] == [["tree/plots/a.bin", False], ["tree/plots/deep", True]]
    assert got["of_a_file"] == []
    assert got["downloaded"] == got["sent"]  # every file, byte for byte (sha256)
    assert got["one"] == got["sent"]["copies/weights.bin"]
    assert MISSING in got["missing"]  # 3.x raises the server's code; 2.x wraps the server's answer


def test_artifacts_deleted_through_the_clients_repository(client_results: dict[str, Any]) -> None:
    got = result(client_results, "artifacts")
    assert got["tree_after_delete"] == ["tree/empty.txt", "tree/notes.txt"]  # the folder's files are gone
    assert got["copies_after_delete"] == []
    assert MISSING in got["deleted_download"]
    assert got["kept_after_delete"] == got["sent"]["weights.bin"]  # another path of the same bytes stays


def test_distributed_artifacts_are_stored_in_s3(client_results: dict[str, Any], target: Target, s3: S3Server) -> None:
    if target.bucket is None:
        pytest.skip("serve keeps artifacts in its local folder (tests/artifacts covers it)")
    got = result(client_results, "artifacts")
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=target.bucket)
    stored = {o["Key"] for page in pages for o in page.get("Contents", [])}
    prefix = f"mlruns/{run_prefix(got['run_id'])}/"
    kept = set(got["sent"]) - set(got["deleted"])  # deleted files' bytes are gone too
    assert {key.removeprefix(prefix) for key in stored if key.startswith(prefix)} == kept
    # the large file went up in two parts straight to S3 (MLflow's proxied multipart): a multipart ETag
    etag = s3.client().head_object(Bucket=target.bucket, Key=f"{prefix}parts/large.bin")["ETag"]
    assert etag.strip('"').endswith("-2")
    info = httpx.get(f"{target.uri}/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is True  # as MLflow's server says for a store that takes them


def test_sklearn_model_is_logged_loaded_and_predicts(client_results: dict[str, Any]) -> None:
    got = result(client_results, "sklearn_model")
    assert got["from_run"] == got["expected"] and got["proba_equal"] is True
    if "model_id" in got:  # 3.x: a logged model, loadable by its id too
        assert got["from_model_id"] == got["expected"]
        logged = got["logged"]
        assert (logged["status"], logged["name"], logged["source_run_id"]) == ("READY", "model", True)
        assert logged["params"] == {"C": "1.0"}  # the run's params, as MLflow copies them
        assert logged["artifact_location"].endswith(f"/models/{got['model_id']}/artifacts")
        assert got["searched"] is True and got["run_outputs"] == [got["model_id"]]
    else:  # 2.x: files under the run, and the run's model history tag
        assert got["history"] == [["model", ["python_function", "sklearn"]]]


def test_autologged_model_registered_aliased_and_loaded_by_alias(client_results: dict[str, Any]) -> None:
    got = result(client_results, "registered_sklearn")
    assert got["by_alias"] == got["expected"]  # models:/Name@alias through the registry to the files
    assert got["autolog_C"] == "0.5" and "training_accuracy_score" in got["autolog_metrics"]
    assert got["version_run"][0] == got["version_run"][1]  # the version knows its run
    assert got["download_uri"][0] == got["download_uri"][1]  # where the version's files are


def _post(serve: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{serve}{API}{path}", json=body)


def _new_run(serve: str) -> str:
    run = _post(serve, "/runs/create", {"experiment_id": "0"})
    assert run.status_code == 200, run.text
    run_id: str = run.json()["run"]["info"]["run_id"]
    return run_id


@pytest.mark.parametrize(
    ("field", "items"),
    [
        ("metrics", [{"key": "m", "value": 1.0, "timestamp": 0, "step": s} for s in range(1001)]),
        ("params", [{"key": f"p{i}", "value": "v"} for i in range(101)]),
        ("tags", [{"key": f"t{i}", "value": "v"} for i in range(101)]),
    ],
)
def test_log_batch_limits(serve: str, field: str, items: list[dict[str, Any]]) -> None:
    run_id = _new_run(serve)
    response = _post(serve, "/runs/log-batch", {"run_id": run_id, field: items})
    assert response.status_code == 400
    assert response.json()["error_code"] == INVALID and "at most" in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/runs/log-metric", {"key": "m", "value": "high", "timestamp": 0}),
        ("/runs/log-metric", {"key": "m", "value": 1.0}),  # timestamp is required
        ("/runs/log-metric", {"key": "m", "value": 1.0, "timestamp": 0, "step": 2**64}),
        ("/runs/log-metric", {"key": "m", "value": 1.0, "timestamp": -5}),
        ("/runs/update", {"status": "SLEEPING"}),
        ("/runs/log-batch", {"params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
        ("/runs/set-tag", {"key": "", "value": "v"}),
        ("/runs/log-parameter", {"key": "p", "value": ["not", "a", "string"]}),
    ],
)
def test_bad_writes_are_400s(serve: str, path: str, body: dict[str, Any]) -> None:
    response = _post(serve, path, {"run_id": _new_run(serve), **body})
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == INVALID


def test_update_run_answers_the_run_as_updated_and_reads_agree(serve: str) -> None:
    """update_run answers from what this process knows of the run (no wait for the projector);
    the answer is what a read returns once applied, also after a rename by tag."""
    run_id = _new_run(serve)
    created = _post(serve, "/runs/update", {"run_id": run_id, "status": "RUNNING", "run_name": "first"}).json()
    assert (created["run_info"]["status"], created["run_info"]["run_name"]) == ("RUNNING", "first")
    assert _post(serve, "/runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "renamed"}).is_success
    ended = _post(serve, "/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 1234})
    info = ended.json()["run_info"]
    assert (info["status"], info["end_time"], info["run_name"]) == ("FINISHED", 1234, "renamed")
    read = httpx.get(f"{serve}{API}/runs/get", params={"run_id": run_id}).json()["run"]["info"]
    assert read == info


def test_batch_bodies_over_one_megabyte_are_refused(serve: str) -> None:
    run_id = _new_run(serve)
    tags = [{"key": f"t{i}", "value": "x" * 8000} for i in range(100)]
    params = [{"key": f"p{i}", "value": "x" * 6000} for i in range(100)]
    response = _post(serve, "/runs/log-batch", {"run_id": run_id, "tags": tags, "params": params})
    assert response.status_code == 400 and "1000000 bytes" in response.json()["message"]


def _mlflow_sample(steps: list[int], k: int) -> list[int]:
    """MLflow 3.17's choice (SqlAlchemyStore._sample_rows_with_window_functions), transcribed: NTILE(k)
    buckets over the run's points in order, the first of each, the run's last point in place of the
    last bucket's."""
    n = len(steps)
    if n <= k:
        return steps
    q, r = divmod(n, k)
    chosen = [steps[b * (q + 1) if b < r else r * (q + 1) + (b - r) * q] for b in range(k)]
    chosen[-1] = steps[-1]
    return chosen


def test_history_bulk_interval_samples_each_run_as_mlflow_does(serve: str) -> None:
    lengths = [100, 50, 23, 7, 1]
    runs = [_new_run(serve) for _ in lengths]
    for run_id, n in zip(runs, lengths, strict=True):
        metrics = [{"key": "loss", "value": float(s), "timestamp": s, "step": s} for s in range(n)]
        assert _post(serve, "/runs/log-batch", {"run_id": run_id, "metrics": metrics}).status_code == 200
    for k, window in [(10, None), (5, None), (1, None), (7, (10, 60)), (2500, None)]:
        params: dict[str, Any] = {"run_ids": runs, "metric_key": "loss", "max_results": k}
        if window:
            params.update(start_step=window[0], end_step=window[1])
        response = httpx.get(f"{serve}{API}/metrics/get-history-bulk-interval", params=params)
        assert response.status_code == 200, response.text
        points = response.json()["metrics"]
        assert [p["run_id"] for p in points] == sorted((p["run_id"] for p in points), key=runs.index)
        for run_id, n in zip(runs, lengths, strict=True):
            lo, hi = window or (0, n - 1)
            expected = _mlflow_sample([s for s in range(n) if lo <= s <= hi], k)
            assert [p["step"] for p in points if p["run_id"] == run_id] == expected, (k, window, n)
    ranged = httpx.get(
        f"{serve}{API}/metrics/get-history-bulk-interval",
        params={"run_ids": runs[0], "metric_key": "loss", "start_step": 10, "end_step": 5},
    )
    assert ranged.status_code == 400


def test_ajax_api_alias_and_get_search(serve: str) -> None:
    refused = httpx.get(
        f"{serve}/ajax-api/2.0/mlflow/experiments/search", params={"filter": "name = 'Default' OR name = 'x'"}
    )
    assert (refused.status_code, refused.json()["error_code"]) == (400, INVALID)
    for name in ("a-1", "a-2", "a-3"):
        assert _post(serve, "/experiments/create", {"name": name}).status_code == 200
    query: dict[str, Any] = {"filter": "name LIKE 'a-%'", "order_by": ["name DESC"], "max_results": 2}
    response = httpx.get(f"{serve}/ajax-api/2.0/mlflow/experiments/search", params=query)
    assert response.status_code == 200, response.text
    assert [e["name"] for e in response.json()["experiments"]] == ["a-3", "a-2"]
    assert response.json()["next_page_token"]
    missing = httpx.get(f"{serve}{API}/runs/get", params={"run_id": "nope"})
    assert (missing.status_code, missing.json()["error_code"]) == (404, MISSING)


def test_model_registry_through_the_client(client_results: dict[str, Any]) -> None:
    got = result(client_results, "registry")
    assert got["created"] == ["reg-model", "first", {"team": "ds"}]
    assert got["numbers"] == ["1", "2", "3", "4", "1"]  # per model, never reused; a new model starts again
    assert got["first_champion"] == "1"
    assert got["updated_by_versions"] is True  # a new version updates its model; aliases do not
    assert got["aliases"] == {"champion": "2", "challenger": "3"}
    # archive_existing_versions moved 2; the order is MLflow's (a stage keeps its lowest version's place)
    assert got["latest"] == [["2", "Archived"], ["3", "Production"]]
    assert got["model"] == {
        "description": "second",
        "tags": {"x": "y"},
        "aliases": {"champion": "2"},
        "latest": [["1", "Staging"], ["2", "Archived"], ["3", "Production"]],
    }
    run_source = f"runs:/{got['run_id']}/model"
    assert got["v1"] == {
        "version": "1",
        "stage": "Staging",
        "source": run_source,
        "run_id": got["run_id"],
        "description": "v1 again",
        "tags": {},
        "aliases": [],
        "user_id": "",  # auth off: MLflow's server leaves it empty
    }
    assert [v["version"] for v in got["versions"]] == ["1", "2", "3"]
    assert got["versions"][1]["tags"] == {"k2": "v2"} and got["versions"][1]["aliases"] == ["champion"]
    assert got["searched"] == got["by_tag"] == ["reg-model"]
    assert got["by_run"] == ["1"]
    assert got["download_uri"] == run_source  # where models:/name@alias loads from
    assert got["after_rename"] == ["reg-renamed", "Production"]
    assert got["old_name"] == got["deleted_version"] == got["deleted_model"] == MISSING
    assert got["dropped_alias"] == INVALID  # MLflow's code for an alias it does not find
    assert got["left"] == ["1", "3", "4"]


def test_promotion_gates_set_and_met_through_the_client(client_results: dict[str, Any]) -> None:
    got = result(client_results, "promotion_gates")
    assert got["bad_gate"] == INVALID
    assert got["low"].startswith("PERMISSION_DENIED")
    assert "metrics.accuracy >= 0.9 failed (the candidate has 0.8)" in got["low"]
    assert "tags.validation_status = 'passed' failed (the candidate has pending)" in got["unvalidated"]
    assert (got["met"], got["prod"]) == (None, "1")
    assert got["to_production"] is None
    moved_down = "current.metrics.accuracy failed (the candidate has 0.8, the current version 0.95)"
    assert moved_down in got["down_from_production"]
    assert got["stages"] == ["Production", "None"]


def test_model_registry_errors_are_mlflows(client_results: dict[str, Any]) -> None:
    got = result(client_results, "registry_errors")
    exists = "RESOURCE_ALREADY_EXISTS"
    assert got == {
        "missing_model": MISSING,
        "duplicate_model": exists,
        "missing_version": MISSING,
        "version_of_missing_model": MISSING,
        "alias_to_missing_version": MISSING,
        "missing_alias": INVALID,  # as MLflow's server answers it
        "reserved_alias": INVALID,
        "bad_stage": INVALID,
        "rename_onto_existing": exists,
        "bad_search": INVALID,
    }


def test_alias_and_stage_history_answers_what_mlflow_cannot(serve: str) -> None:
    """Every registry change is an event: which version an alias named at any time, and who moved
    it, through the native read API (MLflow keeps only the present)."""

    def write(method: str, path: str, body: dict[str, Any]) -> None:
        response = httpx.request(method, f"{serve}{API}{path}", json=body)
        assert response.status_code == 200, response.text
        time.sleep(0.01)  # each change in its own millisecond, so `at` can fall between them

    name = "history-model"
    write("POST", "/registered-models/create", {"name": name})
    for i in range(3):
        write("POST", "/model-versions/create", {"name": name, "source": f"s3://b/m{i}"})
    write("POST", "/registered-models/alias", {"name": name, "alias": "champion", "version": "1"})
    write("POST", "/registered-models/alias", {"name": name, "alias": "champion", "version": "2"})
    write("POST", "/model-versions/transition-stage", {"name": name, "version": "2", "stage": "Production"})
    stage = {"name": name, "version": "3", "stage": "Production", "archive_existing_versions": True}
    write("POST", "/model-versions/transition-stage", stage)
    write("DELETE", "/registered-models/alias", {"name": name, "alias": "champion"})
    write("POST", "/registered-models/alias", {"name": name, "alias": "champion", "version": "3"})
    write("POST", "/registered-models/rename", {"name": name, "new_name": "history-renamed"})

    # get-latest-versions as MLflow's Java client asks for it (GET, query string) and as Python's (POST)
    query = {"name": "history-renamed", "stages": ["Production", "Archived"]}
    by_get = httpx.get(f"{serve}{API}/registered-models/get-latest-versions", params=query)
    by_post = httpx.post(f"{serve}{API}/registered-models/get-latest-versions", json=query)
    assert by_get.status_code == 200 and by_get.json() == by_post.json()
    assert [(v["version"], v["current_stage"]) for v in by_get.json()["model_versions"]] == [
        ("2", "Archived"),
        ("3", "Production"),
    ]

    client = runstream.Client(serve)
    history = client.get_model_history("history-renamed")
    assert all(e["user"] == "" for e in history)  # auth is off: nobody to name, as MLflow's user_id
    aliases = [(e["event"], e["version"], e["previous_version"]) for e in history if e["event"].startswith("alias")]
    assert aliases == [
        ("alias_set", "1", None),
        ("alias_set", "2", "1"),
        ("alias_deleted", None, "2"),
        ("alias_set", "3", None),
    ]
    stages = [(e["version"], e["previous_stage"], e["stage"]) for e in history if e["event"] == "stage_transitioned"]
    assert stages == [("2", "None", "Production"), ("3", "None", "Production"), ("2", "Production", "Archived")]
    assert [e["event"] for e in history][:4] == [
        "model_created",
        "version_created",
        "version_created",
        "version_created",
    ]
    assert history[-1] == {**history[-1], "event": "model_renamed", "name": "history-renamed"}

    set_1, set_2, deleted, set_3 = (e["time"] for e in history if e["event"].startswith("alias"))
    with pytest.raises(runstream.NotFound):
        client.get_alias_at("history-renamed", "champion", at=set_1 - 1)  # not created yet
    expected = {set_1: "1", set_2 - 1: "1", set_2: "2", deleted - 1: "2", deleted: None, set_3: "3"}
    for at, version in expected.items():
        found = client.get_alias_at("history-renamed", "champion", at=at)
        assert found["version"] == version, (at, found)
        assert found["changed_by"] == "" and found["changed_at"] <= at
    assert client.get_alias_at("history-renamed", "champion")["version"] == "3"  # now
    with pytest.raises(runstream.NotFound):
        client.get_model_history("no-such-model")


ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.mark.parametrize(
    "path",
    [
        "{exp}/{run}/artifacts/%2E%2E/%2E%2E/escape.txt",
        "{exp}/{run}/artifacts/a/%2E/b.txt",
        "{exp}/{run}/artifacts/a//b.txt",
        "{exp}/{run}/artifacts/a%5Cb.txt",
        "{exp}/{run}/artifacts/nul%00.txt",
        "{exp}/not-a-run/artifacts/x.txt",
        "{exp}/{run}/elsewhere/x.txt",
        "{exp}/models/m-nothex/artifacts/x.txt",
        "{exp}/{run}/artifacts",  # a folder, not a file
    ],
)
def test_bad_artifact_paths_are_400s(serve: str, path: str) -> None:
    run_id = _new_run(serve)
    url = f"{serve}{ARTIFACTS}/{path.format(exp='0', run=run_id)}"
    put = httpx.put(url, content=b"x")
    assert put.status_code == 400, put.text
    assert put.json()["error_code"] == INVALID
    if not path.endswith("/artifacts"):
        assert httpx.get(url).status_code == 400
    listed = httpx.get(f"{serve}{ARTIFACTS}", params={"path": f"0/{run_id}/../../other"})
    assert (listed.status_code, listed.json()["error_code"]) == (400, INVALID)


def test_missing_artifacts_runs_and_models_are_404s(serve: str) -> None:
    run_id = _new_run(serve)
    base = f"{serve}{ARTIFACTS}/0/{run_id}/artifacts"
    assert httpx.put(f"{base}/kept.txt", content=b"kept").status_code == 200
    assert httpx.get(f"{base}/kept.txt").content == b"kept"
    for url in (
        f"{base}/absent.txt",  # never uploaded
        f"{serve}{ARTIFACTS}/0/{'0' * 32}/artifacts/kept.txt",  # no such run
        f"{serve}{ARTIFACTS}/424242/{run_id}/artifacts/kept.txt",  # the run is in another experiment
        f"{serve}{ARTIFACTS}/0/models/m-{'0' * 32}/artifacts/MLmodel",  # no such logged model
    ):
        response = httpx.get(url)
        assert (response.status_code, response.json()["error_code"]) == (404, MISSING), url
    put = httpx.put(f"{serve}{ARTIFACTS}/0/{'0' * 32}/artifacts/x.txt", content=b"x")
    assert (put.status_code, put.json()["error_code"]) == (404, MISSING)
    listing = httpx.get(f"{serve}{ARTIFACTS}", params={"path": f"0/{run_id}/artifacts"})
    assert listing.json() == {"files": [{"path": "kept.txt", "is_dir": False, "file_size": 4}]}
    missing_model = httpx.get(f"{serve}{API}/logged-models/m-{'0' * 32}")
    assert (missing_model.status_code, missing_model.json()["error_code"]) == (404, MISSING)


def test_logged_model_metrics_filters_orders_and_run_inputs(client_results: dict[str, Any]) -> None:
    got = result(client_results, "logged_model_metrics")
    if not got:
        return  # MLflow 2's client has no logged models
    assert got["metrics_a"] == [["acc", 0.2, 2, True], ["acc", 0.5, 1, True]]
    assert got["metric_c"] == [["val", "d1", True]]
    assert got["filtered"] == ["b", "c"]  # any of the model's points of the metric
    assert got["on_val"] == got["any_on_val"] == ["c"]
    assert got["descending"] == ["b", "c", "a", "d"]  # each model's latest point; none last
    assert got["ascending"] == ["a", "c", "b", "d"]
    assert got["inputs"] is True
    assert got["run_metrics"] == {"acc": 0.7}  # the run's own history has every point too


def test_system_metrics_are_sampled_into_the_run(client_results: dict[str, Any]) -> None:
    got = result(client_results, "system_metrics")
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(got["keys"])
    assert got["cpu"] and got["cpu"] == [[step, True] for step in range(len(got["cpu"]))]  # a sample per step


def test_webhooks_through_the_client_deliver_registry_changes_signed(
    client: tuple[str, str], client_results: dict[str, Any]
) -> None:
    """MLflow 3's client (the 2.x one has no webhooks API) against both targets: the distributed one
    delivers from its `runstream webhooks` role, serve from its own thread."""
    got = result(client_results, "webhooks")
    if client[1] == "2":
        assert "skipped" in got
        return
    name = "v3-hooked"
    assert got["created"] == {
        "name": "compat-hook",
        "url": True,
        "events": ["model_version_alias.created", "registered_model.created"],
    }
    assert (got["status"], got["tested"]) == ("ACTIVE", [True, 200])
    test, *changes = got["deliveries"]  # the test: the first of the webhook's events in MLflow's order
    assert test == [
        "model_version_alias",
        "created",
        {"name": "example_model", "alias": "example_alias", "version": "1"},
    ]
    assert changes == [
        ["registered_model", "created", {"name": name, "tags": {"team": "ml"}, "description": ""}],
        ["model_version_alias", "created", {"name": name, "alias": "prod", "version": "1"}],
    ]
    assert got["signed"] == [True, True, True]
    assert got["updated"] == ["DISABLED", "e", "compat-hook"]
    assert got["listed"] and got["deleted"] == "RESOURCE_DOES_NOT_EXIST"


def test_logged_model_writes_and_search_over_http(serve: str) -> None:
    run_id = _new_run(serve)
    created = _post(
        serve,
        "/logged-models",
        {
            "experiment_id": "0",
            "name": "m1",
            "source_run_id": run_id,
            "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "t", "value": "1"}],
        },
    )
    assert created.status_code == 200, created.text
    info = created.json()["model"]["info"]
    model_id = info["model_id"]
    assert (info["status"], info["name"], info["source_run_id"]) == ("LOGGED_MODEL_PENDING", "m1", run_id)
    url = f"{serve}{API}/logged-models/{model_id}"
    assert httpx.patch(url, json={"status": "LOGGED_MODEL_READY"}).json()["model"]["info"]["status"] == (
        "LOGGED_MODEL_READY"
    )
    assert httpx.patch(url, json={"status": "SLEEPING"}).status_code == 400
    assert httpx.patch(f"{url}/tags", json={"tags": [{"key": "u", "value": "2"}]}).status_code == 200
    assert httpx.delete(f"{url}/tags/t").status_code == 200
    assert httpx.delete(f"{url}/tags/t").status_code == 404
    assert (
        _post(serve, f"/logged-models/{model_id}/params", {"params": [{"key": "k", "value": "v"}]}).status_code == 200
    )
    got = httpx.get(url).json()["model"]
    assert got["info"]["tags"] == [{"key": "u", "value": "2"}]
    assert sorted(p["key"] for p in got["data"]["params"]) == ["k", "lr"]

    def search(filter_string: str) -> list[str]:
        response = _post(serve, "/logged-models/search", {"experiment_ids": ["0"], "filter": filter_string})
        assert response.status_code == 200, response.text
        return [m["info"]["model_id"] for m in response.json().get("models", [])]

    assert search("name = 'm1' AND status = 'READY' AND tags.u = '2' AND params.lr = '0.1'") == [model_id]
    assert search(f"source_run_id = '{run_id}' AND tags.t IS NULL") == [model_id]
    assert search("name = 'other'") == []
    bad = _post(serve, "/logged-models/search", {"experiment_ids": ["0"], "filter": "name = 'm1' OR name = 'x'"})
    assert (bad.status_code, bad.json()["error_code"]) == (400, INVALID)
    assert httpx.delete(url).status_code == 200
    assert httpx.get(url).status_code == 404 and search("name = 'm1'") == []
    assert httpx.get(url, params={"allow_deleted": "true"}).status_code == 200
    missing_run = _post(serve, "/logged-models", {"experiment_id": "0", "source_run_id": "f" * 32})
    assert (missing_run.status_code, missing_run.json()["error_code"]) == (404, MISSING)
    bad_model_json = _post(serve, "/runs/log-model", {"run_id": run_id, "model_json": "{not json"})
    assert (bad_model_json.status_code, bad_model_json.json()["error_code"]) == (400, INVALID)
    model_json = json.dumps({"artifact_path": "m", "flavors": {}, "utc_time_created": "now", "run_id": run_id})
    history_tag = {"run_id": run_id, "key": "mlflow.log-model.history", "value": "oops"}
    assert _post(serve, "/runs/set-tag", history_tag).status_code == 200
    broken_history = _post(serve, "/runs/log-model", {"run_id": run_id, "model_json": model_json})
    assert (broken_history.status_code, broken_history.json()["error_code"]) == (400, INVALID)


def test_mlflow_run_of_a_project_then_models_serve_by_alias(serve: str, tmp_path: Path) -> None:
    """The seed's lifecycle with MLflow's own CLI (3.x): `mlflow run` of a local MLproject logs into
    runstream and registers its model with the alias `prod`; `mlflow models serve -m
    models:/lifecycle-ridge@prod` loads that model from runstream and answers predictions over HTTP."""
    python = cached_python(MLFLOW_CLIENT / "requirements-3.txt")
    cli = str(python.parent / "mlflow")
    # The project's `python` is the client venv's (--env-manager local runs it in this environment).
    env = {**os.environ, "MLFLOW_TRACKING_URI": serve, "PATH": f"{python.parent}:{os.environ['PATH']}"}
    project = [cli, "run", str(MLFLOW_CLIENT / "project"), "--env-manager", "local", "--experiment-name", "lifecycle"]
    ran = subprocess.run([*project, "-P", "alpha=0.25"], env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    experiment = httpx.get(f"{serve}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "lifecycle"})
    found = httpx.post(
        f"{serve}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [experiment.json()["experiment"]["experiment_id"]]},
    ).json()["runs"]
    assert len(found) == 1
    run = found[0]
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert params == {"alpha": "0.25", "model_name": "lifecycle-ridge"}  # the project's parameters
    assert tags["mlflow.source.type"] == "PROJECT" and tags["mlflow.project.entryPoint"] == "main"
    assert run["info"]["status"] == "FINISHED" and [m["key"] for m in run["data"]["metrics"]] == ["rmse"]

    port = free_port()
    model = "models:/lifecycle-ridge@prod"
    serving = [cli, "models", "serve", "-m", model, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "models-serve.log"
    proc = spawn(serving, cwd=tmp_path, log_path=log, env=env)
    try:

        def pings() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(pings, proc=proc, what="mlflow models serve", timeout=180, logs=[log])
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"inputs": [[1.0, 2.0]]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0] == pytest.approx(float(tags["expected_prediction"]))
    finally:
        terminate(proc, 20)
