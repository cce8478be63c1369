"""`runstream import mlflow` from real MLflow stores (its own venv, MLflow 3.17.2), filled by MLflow's
client: a sqlite database imported straight, and a mlruns file store imported through MLflow's
tracking server; then every entity read back through MLflow's client from runstream equals what the
source answers. An interrupted import carries on; bad sources are refused with the reason."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.roles import REPO, Role
from tests.services.ports import free_port
from tests.services.process import ManagedProcess, spawn, wait_until
from tests.venvs import cached_python, layered_python

HERE = REPO / "tests" / "mlflow_import"
MLFLOW_REQUIREMENTS = REPO / "bench" / "requirements-mlflow.txt"  # mlflow 3.17.2, the server too
CACHED_VENVS = [MLFLOW_REQUIREMENTS]  # built ahead (tests/conftest.py)
FILE_STORE_ALLOWED = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}  # MLflow 3 refuses mlruns unless told


@dataclass(frozen=True)
class MlflowEnv:
    python: Path  # MLflow's venv with this checkout's client over it
    store: str  # an MLflow sqlite store filled by MLflow's client, with a 100,000-point metric
    server: str  # MLflow's server on a mlruns folder filled the same way with 1,000 points (it pages slowly)


@pytest.fixture(scope="module")
def mlflow_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowEnv]:
    """The two stores filled by MLflow's client and the venv (pyarrow and numpy as MLflow's), made at
    once; then MLflow's server on the file store."""
    base = cached_python(MLFLOW_REQUIREMENTS)
    workdir = tmp_path_factory.mktemp("mlflow-store")
    sqlite, mlruns = f"sqlite:///{workdir / 'big.db'}", (workdir / "mlruns").as_uri()
    fills = [
        subprocess.Popen([str(base), str(HERE / "fill.py"), uri, str(workdir / name), str(points)], env=env)
        for uri, name, points, env in ((sqlite, "big", 100_000, None), (mlruns, "small", 1_000, FILE_STORE_ALLOWED))
    ]
    server: MlflowServer | None = None
    try:
        python = layered_python(workdir / "venv", base, str(wheel), "pyarrow==25.0.1", "numpy==2.4.6")
        assert fills[1].wait(timeout=600) == 0
        server = MlflowServer(base, mlruns, workdir)
        assert fills[0].wait(timeout=600) == 0
        server.wait_ready(300)
        yield MlflowEnv(python, sqlite, server.url)
    finally:
        for fill in fills:
            fill.kill()
        if server is not None:
            server.stop()


class MlflowServer(ManagedProcess):
    """MLflow's own tracking server on the store (its REST API is the import's other source)."""

    def __init__(self, python: Path, store: str, workdir: Path) -> None:
        super().__init__()
        self.log_file = workdir / "mlflow-server.log"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [str(python), "-m", "mlflow", "server", "--backend-store-uri", store]
        command += ["--port", str(port), "--workers", "1"]
        self._proc = spawn(command, cwd=workdir, log_path=self.log_file, env=FILE_STORE_ALLOWED)

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert self._proc is not None
        wait_until(ready, proc=self._proc, what="mlflow server", timeout=timeout, logs=[self.log_file])


def _serve(workdir: Path) -> tuple[Role, str]:
    port = free_port()
    return Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data")), f"http://127.0.0.1:{port}"


def _import(python: Path, source: str, target: str, workdir: Path, *extra: str) -> subprocess.Popen[str]:
    command = [str(python), "-m", "runstream", "import", "mlflow", source, "--to", target, *extra]
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


@dataclass
class Reading:
    """MLflow's client reading each tracking URI into its JSON file (one process: mlflow loads once)."""

    process: subprocess.Popen[bytes]
    outs: list[Path]

    @classmethod
    def start(cls, python: Path, *uris: str, workdir: Path) -> Reading:
        outs = [workdir / f"read-{i}.json" for i in range(len(uris))]
        pairs = [str(x) for pair in zip(uris, outs, strict=True) for x in pair]
        return cls(subprocess.Popen([str(python), str(HERE / "read.py"), *pairs], cwd=workdir), outs)

    def result(self) -> list[dict[str, Any]]:
        assert self.process.wait(timeout=600) == 0
        return [json.loads(out.read_text()) for out in self.outs]


def test_import_from_sqlite_and_through_mlflows_server_reads_back_as_mlflow(
    mlflow_env: MlflowEnv, tmp_path: Path
) -> None:
    """Imported straight from a sqlite store (interrupted with Ctrl-C, resumed, then run again:
    nothing changes) and, meanwhile, a mlruns store through MLflow's own server: MLflow's client reads
    from runstream what it reads from each source."""
    python, store = mlflow_env.python, mlflow_env.store
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "rest").mkdir()
    serve, from_sqlite = _serve(tmp_path / "sqlite")
    other, from_server = _serve(tmp_path / "rest")
    try:
        through_server = _import(python, mlflow_env.server, from_server, tmp_path / "rest")
        first = _import(python, store, from_sqlite, tmp_path, "--runs-per-send", "1")  # each run recorded once in
        assert first.stderr is not None
        seen = ""
        while "import: 1/" not in seen:
            chunk = first.stderr.read(1)
            assert chunk, f"the import ended before its first run: {seen}"
            seen += chunk
        first.send_signal(signal.SIGINT)
        code, _, said = _done(first)
        said = seen + said
        assert code == 130 and "the same command carries on" in said
        done_before = int(said.split("interrupted: ")[1].split(" runs")[0])
        assert 1 <= done_before < 3
        code, out, err = _done(_import(python, store, from_sqlite, tmp_path))
        assert code == 0, err[-3000:]
        assert f"imported {3 - done_before} runs" in out and "≠" not in out
        code, out, err = _done(through_server)
        assert code == 0, err[-3000:]
        assert "imported 3 runs" in out and "≠" not in out
        reading = Reading.start(python, mlflow_env.server, from_server, workdir=tmp_path / "rest")
        code, out, err = _done(_import(python, store, from_sqlite, tmp_path))  # counted again: no doubles
        assert code == 0 and "imported 0 runs" in out and "≠" not in out, out + err[-3000:]
        source, imported = Reading.start(python, store, from_sqlite, workdir=tmp_path / "sqlite").result()
        small, imported_through_server = reading.result()
    finally:
        serve.stop()
        other.stop()
    assert len(source["runs"]) == 3  # the parent with 100,000 points, its child, a deleted run
    assert sorted(len(r["history"].get("loss", [])) for r in source["runs"].values()) == [0, 1, 100_000]
    assert sorted(source["logged_models"]) == ["classifier", "draft"]
    assert len(source["logged_models"]["classifier"]["files"]) == 2
    assert [r["outputs"] for r in source["runs"].values() if r["outputs"]] == [
        [[source["logged_models"]["classifier"]["id"], 3]]
    ]
    assert imported == source
    assert sorted(len(r["history"].get("loss", [])) for r in small["runs"].values()) == [0, 1, 1_000]
    assert imported_through_server == small


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (f"http://127.0.0.1:{free_port()}", "cannot reach the MLflow server"),
        ("sqlite:////nonexistent/mlflow.db", "no MLflow database at /nonexistent/mlflow.db"),
        ("file:///nonexistent/mlruns", "no mlruns folder at /nonexistent/mlruns"),
    ],
)
def test_a_source_that_is_not_there_is_refused_with_the_reason(
    mlflow_env: MlflowEnv, tmp_path: Path, serve: str, source: str, says: str
) -> None:
    code, _, err = _done(_import(mlflow_env.python, source, serve, tmp_path))
    assert code == 1 and says in err and "Traceback" not in err
    assert not list(tmp_path.glob("runstream-import-*.json"))  # nothing recorded as imported
