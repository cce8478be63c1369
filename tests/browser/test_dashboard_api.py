"""What the read API gained for the dashboard, on the same seeded server: experiments with run
counts, an experiment's keys, the read position, and searches by offset with a total count."""

from __future__ import annotations

import httpx
import pytest

import runstream
from runstream.eventlog.base import parse_token
from tests.browser.seed import LRS, TABLE_RUNS, final_acc, table_run


def test_experiments_carry_run_counts_when_asked(base: str, ids: dict[str, str]) -> None:
    plain = httpx.get(f"{base}/api/v1/experiments").json()["experiments"]
    assert all("run_count" not in e for e in plain)
    counted = httpx.get(f"{base}/api/v1/experiments", params={"run_counts": "true"}).json()["experiments"]
    counts = {e["experiment_id"]: e["run_count"] for e in counted}
    assert counts[ids["table"]] == TABLE_RUNS + 1 and counts[ids["distributed"]] == 2 and counts["0"] == 0
    deleted = httpx.get(f"{base}/api/v1/experiments", params={"run_counts": "true", "view": "deleted"}).json()
    assert deleted["experiments"] == []


def test_experiment_keys(base: str, ids: dict[str, str]) -> None:
    keys = httpx.get(f"{base}/api/v1/experiments/{ids['table']}/keys").json()
    assert keys == {
        "params": ["depth", "lr", "note", "seed"],
        "tags": sorted(["team", "<img src=x onerror=alert(1)>"]),
        "metrics": ["acc", "loss"],
    }
    assert httpx.get(f"{base}/api/v1/experiments/nope/keys").json() == {"params": [], "tags": [], "metrics": []}


def test_read_position_is_a_consistency_token_that_moves_with_writes(base: str) -> None:
    before = parse_token(httpx.get(f"{base}/api/v1/read-position").json()["token"])
    assert before and all(o >= 0 for o in before.values())
    written = httpx.post(f"{base}/api/2.0/mlflow/experiments/create", json={"name": "position-moves"})
    written.raise_for_status()
    # A read after the write (MLflow's read-your-writes) is answered only once it is applied.
    httpx.get(f"{base}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "position-moves"})
    after = parse_token(httpx.get(f"{base}/api/v1/read-position").json()["token"])
    assert sum(after.values()) > sum(before.values())


def test_search_by_offset_with_a_total_count(base: str, ids: dict[str, str]) -> None:
    body = {
        "experiment_ids": [ids["table"]],
        "filter": "params.lr = '0.001'",
        "order_by": ["metrics.acc ASC"],
        "max_results": 7,
    }
    matching = sorted((i for i in range(TABLE_RUNS) if LRS[i % 4] == "0.001"), key=final_acc)
    page = httpx.post(f"{base}/api/v1/runs/search", json={**body, "offset": 100, "count": True}).json()
    assert page["total_count"] == len(matching)
    assert [r["run_name"] for r in page["runs"]] == [table_run(i).name for i in matching[100:107]]
    assert "total_count" not in httpx.post(f"{base}/api/v1/runs/search", json=body).json()
    tail = httpx.post(f"{base}/api/v1/runs/search", json={**body, "offset": len(matching) - 2}).json()
    assert len(tail["runs"]) == 2 and tail["next_page_token"] is None


def test_the_client_reads_them_too(base: str, ids: dict[str, str]) -> None:
    client = runstream.Client(base)
    counted = {e["name"]: e["run_count"] for e in client.list_experiments(run_counts=True)}
    assert counted["table"] == TABLE_RUNS + 1
    assert client.get_experiment_keys(ids["distributed"])["metrics"] == ["eval_acc", "loss", "lr"]
    assert parse_token(client.get_read_position())
    assert client.count_runs([ids["table"]], "params.depth = '3'") == TABLE_RUNS // 10
    runs, _ = client.search_runs([ids["table"]], order_by=["attributes.run_name ASC"], max_results=2, offset=10)
    assert [r["run_name"] for r in runs] == ["run-0009", "run-0010"]  # after "<img ...", 0000 to 0008


@pytest.mark.parametrize(
    "change",
    [
        {"offset": -1},
        {"offset": 2**63},
        {"offset": 3, "page_token": "eyJvZmZzZXQiOiAzfQ=="},
        {"count": "maybe"},
        {"filter": "metrics.acc >> 1", "count": True},
    ],
)
def test_bad_searches_are_400(base: str, ids: dict[str, str], change: dict[str, object]) -> None:
    response = httpx.post(f"{base}/api/v1/runs/search", json={"experiment_ids": [ids["table"]], **change})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_page_files_are_served_and_nothing_else(base: str) -> None:
    page = httpx.get(base + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert httpx.get(f"{base}/static/main.js").headers["content-type"].startswith("text/javascript")
    uplot = httpx.get(f"{base}/vendor/uplot/uPlot.esm.js")
    assert uplot.status_code == 200 and "export" in uplot.text
    for path in ("/static/../routes.py", "/static/%2e%2e/routes.py", "/static/nope.js", "/vendor/uplot/package.json"):
        response = httpx.get(base + path)
        assert response.status_code == 404, path
