"""MLflow's own web app (mlflow 3.17.2, its installed build) served by `runstream serve --mlflow-ui`
at /mlflow/, on data MLflow's client logged: what its pages show, and that every call it makes is
answered, in Chromium. MLflow's GenAI features (traces, its assistant) are not runstream's: their
calls are the only ones answered 404 (README: MLflow's web UI)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, Response, expect

from runstream.server.cli import main
from tests.browser.conftest import VIEWPORT
from tests.integration.roles import Role
from tests.services.ports import free_port
from tests.venvs import cached_python, joined_python

REPO = Path(__file__).resolve().parents[2]
MLFLOW_REQUIREMENTS = REPO / "bench" / "requirements-mlflow.txt"  # mlflow 3.17.2 with its web app
CACHED_VENVS = [MLFLOW_REQUIREMENTS]  # built ahead (tests/conftest.py)
SEED = Path(__file__).with_name("mlflow_ui_seed.py")
# What runstream does not serve: MLflow's GenAI features, and the user endpoint of its auth app (MLflow
# without auth answers 404 there too).
NOT_SERVED = re.compile(r"/ajax-api/(2\.0/mlflow/users/current|[34]\.0/mlflow/(assistant|traces)/)")
WIDE = {**VIEWPORT, "width": 1920}  # room for the runs table's metric columns
# A returning user's browser: MLflow's assistant panel closed.
RETURNING_USER = """
localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");
localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
"""


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """runstream serve --mlflow-ui in an environment holding runstream and mlflow side by side, and
    the ids of what MLflow's client logged there."""
    workdir = tmp_path_factory.mktemp("mlflow-ui")
    mlflow_python = cached_python(MLFLOW_REQUIREMENTS)
    # mlflow's venv first: its versions of what both need (fastapi, starlette, graphql-core 3.2 for
    # graphene) are what `pip install 'runstream[mlflow-ui]'` resolves to; the rest from the project's.
    python = joined_python(workdir / "venv", mlflow_python, Path(sys.executable))
    port = free_port()
    data = str(workdir / "data")
    role = Role(workdir, "serve", "--port", str(port), "--data-dir", data, "--mlflow-ui", python=python)
    base = f"http://127.0.0.1:{port}"
    try:
        seeded = subprocess.run([str(mlflow_python), str(SEED), base], capture_output=True, text=True, timeout=300)
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        yield base, json.loads(seeded.stdout.strip().splitlines()[-1])
    finally:
        role.stop()


@pytest.fixture
def ui(browser: Browser, mlflow_ui: tuple[str, dict[str, str]]) -> Iterator[Page]:
    """A page of a fresh context; every call the app makes that fails (but those of NOT_SERVED) fails the test."""
    context = browser.new_context(viewport=WIDE)  # type: ignore[arg-type]
    context.add_init_script(RETURNING_USER)
    page = context.new_page()
    failed: list[str] = []

    def check(response: Response) -> None:
        if response.status >= 400 and not NOT_SERVED.search(response.url):
            failed.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", check)
    page.on("pageerror", lambda exc: failed.append(f"page error: {exc}"))
    yield page
    context.close()
    assert not failed, failed


def open_app(page: Page, base: str, route: str) -> None:
    page.goto(f"{base}/mlflow/#/{route}")


def test_experiments_and_the_runs_table_with_a_metric_column(ui: Page, mlflow_ui: tuple[str, dict[str, str]]) -> None:
    base, ids = mlflow_ui
    open_app(ui, base, "experiments")
    ui.get_by_role("link", name="mlflow-ui-check").click()
    ui.get_by_role("link", name="Training runs").click()
    expect(ui.get_by_role("link", name="sweep-lr-0.01")).to_be_visible()
    expect(ui.get_by_text("2 matching runs")).to_be_visible()
    ui.get_by_role("button", name="Columns").click()
    ui.get_by_role("dialog").get_by_text("accuracy", exact=True).click()
    ui.keyboard.press("Escape")
    expect(ui.get_by_role("columnheader", name="accuracy").first).to_be_visible()
    # each run's row (its scrolling part: source, models, metrics) ends with its accuracy
    cells = ui.get_by_role("row").filter(has_text="mlflow_ui_seed.py")
    expect(cells).to_have_count(2)
    assert sorted(text.split()[-1] for text in cells.all_inner_texts()) == ["0.8", "0.9"]
    expect(cells.filter(has_text="ui-classifier")).to_contain_text("0.9")  # the run that logged the model
    assert ids["experiment_id"] in ui.url


def test_a_run_page_its_metric_chart_and_artifacts(ui: Page, mlflow_ui: tuple[str, dict[str, str]]) -> None:
    base, ids = mlflow_ui
    run = f"experiments/{ids['experiment_id']}/runs/{ids['sweep-lr-0.1']}"
    open_app(ui, base, run)
    expect(ui.get_by_role("heading", name="sweep-lr-0.1")).to_be_visible()
    expect(ui.get_by_role("row").filter(has=ui.get_by_text("lr", exact=True))).to_contain_text("0.1")  # a param
    ui.get_by_role("tab", name="Model metrics").click()
    card = ui.get_by_test_id("experiment-view-compare-runs-card").filter(has_text="loss")
    expect(card.locator(".js-plotly-plot")).to_be_visible()  # drawn from get-history-bulk-interval
    expect(card).to_contain_text("Step")
    ui.get_by_role("tab", name="Artifacts").click()
    ui.get_by_text("notes.txt", exact=True).click()
    expect(ui.get_by_text("trained on the ui-check split")).to_be_visible()  # its preview, from get-artifact
    ui.get_by_text("plots", exact=True).click()
    ui.get_by_text("curve.png", exact=True).click()
    expect(ui.locator("img[src^='blob:']").first).to_be_visible()  # its bytes, from get-artifact


def test_compare_runs(ui: Page, mlflow_ui: tuple[str, dict[str, str]]) -> None:
    base, ids = mlflow_ui
    runs = json.dumps([ids["sweep-lr-0.1"], ids["sweep-lr-0.01"]])
    open_app(ui, base, f"compare-runs?runs={runs}&experiments={json.dumps([ids['experiment_id']])}")
    expect(ui.get_by_text("Comparing 2 Runs from 1 Experiment")).to_be_visible()
    row = ui.get_by_role("row").filter(has_text="Run Name:")
    expect(row).to_contain_text("sweep-lr-0.1")
    expect(row).to_contain_text("sweep-lr-0.01")


def test_registered_model_and_version_pages(ui: Page, mlflow_ui: tuple[str, dict[str, str]]) -> None:
    base, _ = mlflow_ui
    open_app(ui, base, "models")
    ui.get_by_role("button", name="Try it now").click()  # MLflow's announcement of its newer registry UI
    ui.get_by_role("link", name="ui-classifier").click()
    expect(ui.get_by_role("link", name="Version 2")).to_be_visible()
    expect(ui.get_by_text("@ champion")).to_be_visible()
    ui.get_by_role("link", name="Version 1").click()
    expect(ui.get_by_text("Staging")).to_be_visible()
    expect(ui.get_by_role("link", name="sweep-lr-0.1")).to_be_visible()  # its source run


def _graphql(base: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base}/mlflow/graphql", json={"query": query, "variables": variables}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_graphql_answers_as_the_rest_routes(mlflow_ui: tuple[str, dict[str, str]]) -> None:
    base, ids = mlflow_ui
    run_id = ids["sweep-lr-0.1"]
    rest = httpx.get(f"{base}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=30).json()["run"]
    query = """query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
      mlflowGetRun(input: $data) {
        apiError { code message }
        run { __typename info { runName runUuid startTime status } data { params { key value } }
              experiment { name } modelVersions { name version } }
      }
    }"""
    got = _graphql(base, query, {"data": {"runId": run_id}})
    assert got["errors"] is None
    run = got["data"]["mlflowGetRun"]["run"]
    assert run["__typename"] == "MlflowRunExtension"
    assert run["info"] == {
        "runName": "sweep-lr-0.1",
        "runUuid": run_id,
        "startTime": str(rest["info"]["start_time"]),  # int64s as strings, as MLflow's server sends them
        "status": "FINISHED",
    }
    assert sorted(p["key"] for p in run["data"]["params"]) == ["layers", "lr"]
    assert run["experiment"] == {"name": "mlflow-ui-check"}
    assert sorted(v["version"] for v in run["modelVersions"]) == ["1", "2"]
    missing = _graphql(base, query, {"data": {"runId": "no-such-run"}})["data"]["mlflowGetRun"]
    assert missing["run"] is None and missing["apiError"]["code"] == "RESOURCE_DOES_NOT_EXIST"

    sampled = """query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!) {
      mlflowGetMetricHistoryBulkInterval(input: $data) { metrics { runId step value } apiError { code } }
    }"""
    points = _graphql(base, sampled, {"data": {"runIds": [run_id], "metricKey": "loss", "maxResults": 10}})
    metrics = points["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
    rest_points = httpx.get(
        f"{base}/api/2.0/mlflow/metrics/get-history-bulk-interval",
        params={"run_ids": run_id, "metric_key": "loss", "max_results": 10},
        timeout=30,
    ).json()["metrics"]
    assert [(m["step"], m["value"]) for m in metrics] == [(str(m["step"]), m["value"]) for m in rest_points]
    broken = httpx.post(f"{base}/graphql", json={"query": "{ mlflowGetRun(input: {runId: 1}) { run { nope } } }"})
    assert broken.status_code == 200 and broken.json()["errors"] and broken.json()["data"] is None
    assert httpx.post(f"{base}/graphql", json={"variables": {}}).status_code == 400


def test_the_server_answers_as_the_mlflow_beside_it(mlflow_ui: tuple[str, dict[str, str]]) -> None:
    base, _ = mlflow_ui
    assert httpx.get(f"{base}/mlflow/version").text == "3.17.2"  # bench/requirements-mlflow.txt's
    info = httpx.get(f"{base}/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False and info["workspaces_enabled"] is False


def test_serving_the_ui_without_mlflow_installed_says_what_to_install(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--mlflow-ui", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "pip install 'runstream[mlflow-ui]'" in result.output
    assert not any(tmp_path.iterdir())  # refused before anything started
