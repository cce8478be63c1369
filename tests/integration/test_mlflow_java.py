"""MLflow's Java client (org.mlflow:mlflow-client from Maven Central, unchanged) against `runstream
serve`: tests/mlflow_java/Scenarios.java drives it (experiments, runs, batch logging, history, search
and paging, artifacts through the client's artifact CLI, registry reads incl. get-latest-versions,
which it sends as a GET, and stage transitions), and its JSON results are asserted here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.services.maven import maven_lib_dir
from tests.venvs import REPO_TESTS, cached_python

JAVA = REPO_TESTS / "mlflow_java"


@pytest.fixture(scope="module")
def java_results(serve: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    java = shutil.which("java")
    assert java is not None, "the Java client needs java (17+) on PATH"
    lib = maven_lib_dir(JAVA / "pom.xml", "mlflow-java-lib", "mlflow-client-*.jar")
    out = tmp_path_factory.mktemp("mlflow-java") / "results.json"
    # The Java client moves artifacts with MLflow's Python CLI: the same client venv the Python scenarios use.
    python = cached_python(REPO_TESTS / "mlflow_client" / "requirements-3.txt")
    env = {**os.environ, "MLFLOW_PYTHON_EXECUTABLE": str(python)}
    done = subprocess.run(
        [java, "-cp", f"{lib}/*", str(JAVA / "Scenarios.java"), serve, str(out), "j-"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def test_experiments_and_runs_through_the_java_client(java_results: dict[str, Any]) -> None:
    got = java_results
    assert got["experiment_name"] == "j-java-renamed" and got["experiment_tag"] == "jvm"
    assert got["by_name"] and got["searched_experiments"] == ["j-java-renamed"]
    assert got["status"] == "FINISHED"
    assert got["params"] == {"r": "0", "opt": "sgd"}
    assert got["tags"] == {"lang": "java", "batch": "yes"}
    assert got["latest"] == {"acc": 0.5, "loss": 1 / 998}
    assert got["history"] == [998, 997, 1 / 998]
    assert got["searched"] == [1, 2]  # acc 0.6 and 0.7
    assert got["pages"] == [[0, 1], [2]]
    assert got["after_delete"] == 2


def test_artifacts_through_the_java_client(java_results: dict[str, Any]) -> None:
    assert java_results["artifacts"] == [["docs/notes.txt", len("hello from java")]]
    assert java_results["downloaded"] == "hello from java"


def test_registry_through_the_java_client(java_results: dict[str, Any]) -> None:
    got = java_results
    assert got["latest_versions"] == [["1", "Staging"], ["2", "Production"]]  # MLflow's order: by lowest version
    assert got["version"] == ["2", "Production", True]
    assert got["registered_latest"] == ["1", "2"]
    assert got["download_uri"] == f"runs:/{got['run_ids'][1]}/model"
    assert got["searched_versions"] == ["1", "2"]
