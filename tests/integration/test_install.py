"""runstream as users install it: one top-level package; a client-only install (no server library)
that resolves beside mlflow and the training libraries and runs the SDK there; the tested floors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SDK_CHECK = Path(__file__).resolve().parent / "sdk_check.py"
SERVER_LIBRARIES = {"fastapi", "uvicorn", "chdb-core", "clickhouse-connect", "confluent-kafka", "boto3", "click"}
TRAINING = ["torch", "transformers", "lightning"]
MLFLOW = ["3.17.2", "2.22.1"]


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


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
    for stage in ("ingest", "projector", "api", "schemas", "artifacts"):
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


@pytest.mark.parametrize("mlflow", MLFLOW)
def test_the_client_resolves_beside_mlflow_and_the_training_libraries(wheel: Path, mlflow: str) -> None:
    # Resolved, not installed: PyPI's torch wheels bring CUDA libraries of several GB; the resolver
    # reads only the wheels' metadata.
    report = json.loads(
        _pip(
            Path(sys.executable),
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
            str(wheel),
            f"mlflow=={mlflow}",
            *TRAINING,
        )
    )
    resolved = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}
    assert resolved["mlflow"] == mlflow and resolved["runstream"] == "0.1.0"
    assert set(TRAINING) <= set(resolved)


@pytest.mark.parametrize("mlflow", MLFLOW)
def test_the_client_installs_and_runs_beside_mlflow(wheel: Path, mlflow: str, serve: str, tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    _pip(python, "install", "-q", str(wheel), f"mlflow-skinny=={mlflow}")
    _pip(python, "check")
    installed = {line.split("==")[0] for line in _pip(python, "list", "--format=freeze").lower().splitlines()}
    assert not installed & {"chdb-core", "clickhouse-connect", "confluent-kafka"}  # mlflow brings its own web libraries
    out = _sdk_check(python, serve, "--with-mlflow")
    _assert_logged(out)
    assert out["mlflow"] == mlflow and out["mlflow_sees"] == {"lr": "0.1", "layers": "4"}


def test_the_lowest_versions_the_client_allows_run_the_sdk(wheel: Path, serve: str, tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    uv = Path(sys.executable).parent / "uv"
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(python), "--resolution", "lowest-direct", str(wheel)],
        check=True,
        timeout=600,
    )
    _assert_logged(_sdk_check(python, serve))
