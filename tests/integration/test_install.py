"""runstream as users install it: one top-level package; a client-only install (no server library)
that installs beside mlflow and the training libraries and runs the SDK there; the tested floors."""

from __future__ import annotations

import json
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.venvs import install, new_venv

SDK_CHECK = Path(__file__).resolve().parent / "sdk_check.py"
SERVER_LIBRARIES = {"fastapi", "uvicorn", "chdb-core", "clickhouse-connect", "confluent-kafka", "boto3", "click"}
TRAINING = ["torch", "transformers", "lightning"]
MLFLOW = ["3.17.2", "2.22.1"]


def _pip(python: Path, *args: str) -> str:
    result = subprocess.run(
        [str(python), "-m", "pip", *args, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _sdk_check(python: Path, serve: str, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [str(python), str(SDK_CHECK), serve, *args], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return out


def _assert_logged(out: dict[str, object]) -> None:
    assert out["server_modules_loaded_by_sdk"] == []
    assert out["params"] == {"lr": "0.1", "layers": "4"}
    assert out["points"] == 1000 and out["last"] == 0.0


def test_the_wheel_holds_only_the_runstream_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"runstream"}
    for stage in ("ingest", "projector", "api", "schemas", "artifacts", "webhooks"):
        assert f"runstream/{stage}/__init__.py" in names
    assert "runstream/projector/migrations/001_initial.sql" in names
    assert "runstream/api/dashboard/vendor/uplot/uPlot.esm.js" in names
    assert "runstream/api/dashboard/vendor/swagger-ui/swagger-ui-bundle.js" in names  # /docs with no internet
    required = {
        line.removeprefix("Requires-Dist: ").split(">")[0].split("[")[0].split(";")[0].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert required and not required & SERVER_LIBRARIES, required


def _training_env(wheel: Path, mlflow: str, serve: str, venv: Path) -> tuple[set[str], dict[str, object]]:
    """One fresh venv as a training environment holds it: the client, MLflow's whole package, torch,
    transformers and lightning; what it holds, and what the SDK did there. uv takes torch's CUDA
    wheels (GBs) from its cache, which the frameworks' venv (tests/frameworks) fills: only a
    machine's first build downloads them."""
    python = new_venv(venv)
    install(python, str(wheel), f"mlflow=={mlflow}", *TRAINING)
    _pip(python, "check")
    installed = {line.split("==")[0] for line in _pip(python, "list", "--format=freeze").lower().splitlines()}
    return installed, _sdk_check(python, serve, "--with-mlflow", "--with-training")


@pytest.fixture(scope="module")
def training_envs(
    wheel: Path, serve: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[set[str], dict[str, object]]]:
    """Per MLflow version, its training environment, all built at once (they mostly wait on uv and on
    imports)."""
    with ThreadPoolExecutor(len(MLFLOW)) as pool:
        built = {m: pool.submit(_training_env, wheel, m, serve, tmp_path_factory.mktemp("venv")) for m in MLFLOW}
        return {m: b.result() for m, b in built.items()}


@pytest.mark.parametrize("mlflow", MLFLOW)
def test_the_client_installs_and_runs_beside_mlflow_and_the_training_libraries(
    training_envs: dict[str, tuple[set[str], dict[str, object]]], mlflow: str
) -> None:
    installed, out = training_envs[mlflow]
    assert set(TRAINING) <= installed
    assert not installed & {"chdb-core", "clickhouse-connect", "confluent-kafka"}  # mlflow brings its own web libraries
    _assert_logged(out)
    assert out["mlflow"] == mlflow and out["mlflow_sees"] == {"lr": "0.1", "layers": "4"}
    assert out["torch_sum"] == 3.0


def test_the_lowest_versions_the_client_allows_run_the_sdk(wheel: Path, serve: str, tmp_path: Path) -> None:
    python = new_venv(tmp_path / "venv")
    install(python, "--resolution", "lowest-direct", str(wheel))
    _assert_logged(_sdk_check(python, serve))
