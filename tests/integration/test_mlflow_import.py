"""`runstream import mlflow` from a real MLflow store (its own venv, MLflow 3.17.2): filled by MLflow's
client, imported straight from its sqlite database and through its tracking server, then every entity
read back through MLflow's client from runstream equals what the source answers. An interrupted
import carries on; bad sources are refused with the reason."""

from __future__ import annotations

import json
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


@dataclass(frozen=True)
class MlflowEnv:
    python: Path  # MLflow's venv with this checkout's client over it
    store: str  # an MLflow sqlite store filled by MLflow's client, with a 100,000-point metric
    small: str  # one filled the same way with a 1,000-point metric (MLflow's server pages 100,000 slowly)
    server: str  # MLflow's own tracking server on the small one


@pytest.fixture(scope="module")
def mlflow_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowEnv]:
    """Two stores filled by MLflow's client, MLflow's server on one, and the venv (pyarrow and numpy
    as MLflow's), all made at once."""
    base = cached_python(MLFLOW_REQUIREMENTS)
    workdir = tmp_path_factory.mktemp("mlflow-store")
    stores = {name: f"sqlite:///{workdir / name}.db" for name in ("big", "small")}
    create = "; ".join(f"MlflowClient({uri!r}).search_experiments()" for uri in stores.values())
    subprocess.run([str(base), "-c", f"from mlflow import MlflowClient; {create}"], check=True, timeout=300)
    server = MlflowServer(base, stores["small"], workdir)
    try:
        fills = [
            subprocess.Popen([str(base), str(HERE / "fill.py"), uri, str(workdir / f"{name}-artifacts"), str(points)])
            for (name, uri), points in zip(stores.items(), (100_000, 1_000), strict=True)
        ]
        try:
            python = layered_python(workdir / "venv", base, str(wheel), "pyarrow==25.0.1", "numpy==2.4.6")
        finally:
            assert [fill.wait(timeout=600) for fill in fills] == [0, 0]
        server.wait_ready(300)
        yield MlflowEnv(python, stores["big"], stores["small"], server.url)
    finally:
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
        self._proc = spawn(command, cwd=workdir, log_path=self.log_file)

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


def _import(python: Path, source: str, target: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(python), "-m", "runstream", "import", "mlflow", source, "--to", target, *extra]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)


def _read(python: Path, *uris: str, workdir: Path) -> list[dict[str, Any]]:
    """What MLflow's client reads from each tracking URI."""
    outs = [workdir / f"read-{i}.json" for i in range(len(uris))]
    pairs = [str(x) for pair in zip(uris, outs, strict=True) for x in pair]
    subprocess.run([str(python), str(HERE / "read.py"), *pairs], check=True, timeout=600)
    return [json.loads(out.read_text()) for out in outs]


def test_import_from_sqlite_and_through_mlflows_server_reads_back_as_mlflow(
    mlflow_env: MlflowEnv, tmp_path: Path
) -> None:
    """Imported straight from a sqlite store (interrupted with Ctrl-C, resumed, then run again:
    nothing changes), and another through MLflow's own server: MLflow's client reads from runstream
    what it reads from each source."""
    python, store = mlflow_env.python, mlflow_env.store
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "rest").mkdir()
    serve, from_sqlite = _serve(tmp_path / "sqlite")
    other, from_server = _serve(tmp_path / "rest")
    try:
        command = [str(python), "-m", "runstream", "import", "mlflow", store, "--to", from_sqlite]
        command += ["--runs-per-send", "1"]  # each run recorded once it is in: the first before Ctrl-C
        first = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        assert first.stderr is not None
        seen = ""
        while "import: 1/" not in seen:
            chunk = first.stderr.read(1)
            assert chunk, f"the import ended before its first run: {seen}"
            seen += chunk
        first.send_signal(signal.SIGINT)
        first.wait(timeout=120)
        said = seen + first.stderr.read()
        assert first.returncode == 130 and "the same command carries on" in said
        done_before = int(said.split("interrupted: ")[1].split(" runs")[0])
        assert 1 <= done_before < 3
        resumed = _import(python, store, from_sqlite, tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"imported {3 - done_before} runs" in resumed.stdout and "≠" not in resumed.stdout
        again = _import(python, store, from_sqlite, tmp_path)  # counted again against the source: no doubles
        assert again.returncode == 0 and "imported 0 runs" in again.stdout and "≠" not in again.stdout

        done = _import(python, mlflow_env.server, from_server, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "imported 3 runs" in done.stdout and "≠" not in done.stdout

        uris = (store, from_sqlite, mlflow_env.server, from_server)
        source, imported, small, imported_through_server = _read(python, *uris, workdir=tmp_path)
    finally:
        serve.stop()
        other.stop()
    assert len(source["runs"]) == 3  # the parent with 100,000 points, its child, a deleted run
    assert sorted(len(r["history"].get("loss", [])) for r in source["runs"].values()) == [0, 1, 100_000]
    assert imported == source
    assert sorted(len(r["history"].get("loss", [])) for r in small["runs"].values()) == [0, 1, 1_000]
    assert imported_through_server == small


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (f"http://127.0.0.1:{free_port()}", "cannot reach the MLflow server"),
        ("sqlite:////nonexistent/mlflow.db", "no MLflow database at /nonexistent/mlflow.db"),
    ],
)
def test_a_source_that_is_not_there_is_refused_with_the_reason(
    mlflow_env: MlflowEnv, tmp_path: Path, serve: str, source: str, says: str
) -> None:
    done = _import(mlflow_env.python, source, serve, tmp_path)
    assert done.returncode == 1 and says in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("runstream-import-*.json"))  # nothing recorded as imported
