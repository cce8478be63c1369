"""MLflow's own tracking server for bench/queries.py: its venv (from bench/requirements-mlflow.txt,
made on first use under ~/.cache/runstream-bench/; MLflow is no dependency of runstream), a throwaway
PostgreSQL (Debian's package) on 127.0.0.1, `mlflow server --workers 1`, a bulk loader that writes the
bench data straight into MLflow's own tables (its REST API would take hours at these sizes; only reads
are timed), and the REST reads a user makes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from bench.dataset import HISTORY_EXPERIMENT, KEY, SEARCH_EXPERIMENT, SearchRun, Sizes, history_runs
from tests.services.ports import free_port, port_is_open
from tests.services.process import spawn, terminate, wait_until

REQUIREMENTS = Path(__file__).resolve().parent / "requirements-mlflow.txt"
CACHE = Path.home() / ".cache" / "runstream-bench"
HISTORY_PAGE = 25_000  # what MLflow's client asks per get-history page
CHUNK = 1_000_000  # metric rows per bulk insert
MAX_BULK_RUNS = 100  # run_ids per get-history-bulk-interval call


def mlflow_venv() -> Path:
    """The venv with the pinned MLflow, made once per requirements file (keyed by its hash)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = CACHE / f"mlflow-{digest}"
    done = venv / ".installed"
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)
        print(f"creating the MLflow venv {venv} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        done.write_text(REQUIREMENTS.read_text())
    return venv


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class Postgres:
    """A PostgreSQL cluster in a temp dir of its own, run as user postgres when we are root (initdb refuses
    root). fsync and full page writes are off to load fast; they change nothing for reads."""

    def __init__(self, bindir: Path, log_dir: Path, stack: ExitStack) -> None:
        self.port = free_port()
        user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.user = user.pw_name if user else None
        home = Path(tempfile.mkdtemp(prefix="runstream-bench-pg-"))
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        if user:
            os.chown(home, user.pw_uid, user.pw_gid)
        data = home / "data"
        initdb = [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run([str(c) for c in initdb], check=True, user=self.user, stdout=subprocess.DEVNULL)
        settings = ["listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        settings += ["max_wal_size=8GB", f"unix_socket_directories={home}"]
        cmd = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port)]
        cmd += [arg for s in settings for arg in ("-c", s)]
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "postgres.log"
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, user=self.user, start_new_session=True
            )
        stack.callback(self.stop)
        wait_until(self._ok, proc=self.proc, what="postgres", timeout=60, logs=[log_path])

    def _ok(self) -> bool:
        return port_is_open(self.port) and self.psql("postgres", "SELECT 1", check=False).returncode == 0

    def psql(self, db: str, sql: str, stdin: Any = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            db,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        return subprocess.run([*cmd, "-c", sql], input=stdin, capture_output=True, check=check)

    def uri(self, db: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Fast shutdown (SIGINT) by PID; SIGKILL if it does not end."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                terminate(self.proc, 5)


class Server:
    """`mlflow server --workers 1` (MLflow's best configuration for latency) on a free loopback port."""

    def __init__(self, venv: Path, backend_uri: str, workdir: Path, stack: ExitStack) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.artifact_root = str(workdir / "artifacts")
        cmd = [str(venv / "bin" / "mlflow"), "server", "--backend-store-uri", backend_uri, "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--workers", "1", "--default-artifact-root", self.artifact_root]
        log = workdir / "mlflow-server.log"
        self.proc = spawn(cmd, cwd=workdir, log_path=log)
        stack.callback(terminate, self.proc, 30)
        wait_until(self._healthy, proc=self.proc, what="mlflow server", timeout=300, logs=[log], interval=0.5)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def start_server(backend: str, venv: Path, workdir: Path, stack: ExitStack) -> tuple[Server, Postgres | None] | None:
    """MLflow's server on `sqlite` (a file in workdir) or `postgres` (a throwaway cluster, database
    mlflow); None when PostgreSQL's binaries are not installed."""
    if backend == "sqlite":
        return Server(venv, f"sqlite:///{workdir / 'mlflow.sqlite'}", workdir, stack), None
    bindir = postgres_bin()
    if bindir is None:
        return None
    postgres = Postgres(bindir, workdir, stack)
    postgres.psql("postgres", "CREATE DATABASE mlflow")
    return Server(venv, postgres.uri("mlflow"), workdir, stack), postgres


class Bulk:
    """Column-wise inserts into one of MLflow's databases: sqlite3 (stdlib) or psql's COPY."""

    def __init__(self, sqlite_path: Path | None = None, postgres: Postgres | None = None, db: str = "") -> None:
        self.sqlite = sqlite3.connect(sqlite_path) if sqlite_path else None
        if self.sqlite:
            self.sqlite.execute("PRAGMA synchronous = OFF")
        self.postgres, self.db = postgres, db

    def insert(self, table: str, columns: dict[str, Any]) -> None:
        names = list(columns)
        if self.sqlite:
            values = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns.values()]
            marks = ", ".join("?" * len(names))
            with self.sqlite:
                self.sqlite.executemany(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", zip(*values, strict=True)
                )
        else:
            assert self.postgres is not None
            out = io.BytesIO()
            pa_csv.write_csv(pa.table(columns), out, pa_csv.WriteOptions(include_header=False))
            sql = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)"
            self.postgres.psql(self.db, sql, stdin=out.getvalue())

    def analyze(self) -> None:
        """What a database owner runs after a bulk load (autovacuum would get there on its own)."""
        if self.sqlite:
            self.sqlite.execute("ANALYZE")
            self.sqlite.commit()
        else:
            assert self.postgres is not None
            self.postgres.psql(self.db, "VACUUM ANALYZE")

    def close(self) -> None:
        if self.sqlite:
            self.sqlite.close()


def _run_rows(runs: list[tuple[str, str, int]], experiment_id: int, artifact_root: str) -> dict[str, Any]:
    n = len(runs)
    return {
        "run_uuid": [r[0] for r in runs],
        "name": [r[1] for r in runs],
        "source_type": ["LOCAL"] * n,
        "source_name": [""] * n,
        "entry_point_name": [""] * n,
        "user_id": ["bench"] * n,
        "status": ["FINISHED"] * n,
        "start_time": [r[2] for r in runs],
        "end_time": [r[2] + 1000 for r in runs],
        "source_version": [""] * n,
        "lifecycle_stage": ["active"] * n,
        "artifact_uri": [f"{artifact_root}/{experiment_id}/{r[0]}/artifacts" for r in runs],
        "experiment_id": [experiment_id] * n,
    }


def _key_values(rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {"run_uuid": [r[0] for r in rows], "key": [r[1] for r in rows], "value": [r[2] for r in rows]}


def _points(rows: list[tuple[str, str, float, int, int]]) -> dict[str, Any]:
    """(run_uuid, key, value, timestamp, step) rows as columns of MLflow's metrics tables."""
    return {
        "run_uuid": [r[0] for r in rows],
        "key": [r[1] for r in rows],
        "value": [r[2] for r in rows],
        "timestamp": [r[3] for r in rows],
        "step": [r[4] for r in rows],
        "is_nan": [False] * len(rows),
    }


def load(bulk: Bulk, server: Server, sizes: Sizes) -> dict[str, Any]:
    """The bench data into MLflow: experiments through its REST API, the rest by bulk SQL."""
    start = time.time()
    ids = {}
    for name in (HISTORY_EXPERIMENT, SEARCH_EXPERIMENT):
        response = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": name}, timeout=60)
        response.raise_for_status()
        ids[name] = int(response.json()["experiment_id"])
    history = history_runs(sizes)
    exp = ids[HISTORY_EXPERIMENT]
    bulk.insert("runs", _run_rows([(r.run_id, r.name, r.start_ms) for r in history], exp, server.artifact_root))
    bulk.insert("params", _key_values([(r.run_id, k, v) for r in history for k, v in r.params.items()]))
    latest = []
    for r in history:
        for first in range(0, r.points, CHUNK):
            values, steps, stamps = r.chunk(first, min(CHUNK, r.points - first))
            n = len(values)
            columns = {
                "run_uuid": [r.run_id] * n,
                "key": [KEY] * n,
                "value": values,
                "timestamp": stamps,
                "step": steps,
            }
            bulk.insert("metrics", {**columns, "is_nan": np.zeros(n, bool)})
        values, steps, stamps = r.chunk(r.points - 1, 1)
        latest.append((r.run_id, KEY, float(values[0]), int(stamps[0]), int(steps[0])))
    bulk.insert("latest_metrics", _points(latest))
    exp = ids[SEARCH_EXPERIMENT]
    for first in range(0, sizes.search_runs, 10_000):
        runs = [SearchRun(i, sizes.search_points) for i in range(first, min(first + 10_000, sizes.search_runs))]
        bulk.insert("runs", _run_rows([(r.run_id, r.name, r.start_ms) for r in runs], exp, server.artifact_root))
        bulk.insert("params", _key_values([(r.run_id, k, v) for r in runs for k, v in r.params.items()]))
        bulk.insert("tags", _key_values([(r.run_id, k, v) for r in runs for k, v in r.tags.items()]))
        points = [(r.run_id, k, v, t, s) for r in runs for s, t, m in r.metrics() for k, v in m.items()]
        bulk.insert("metrics", _points(points))
        bulk.insert("latest_metrics", _points([p for p in points if p[4] == sizes.search_points - 1]))
    loaded = time.time()
    bulk.analyze()
    return {
        "experiment_ids": {k: str(v) for k, v in ids.items()},
        "bulk_load_s": round(loaded - start, 1),
        "analyze_s": round(time.time() - loaded, 1),
    }


class Reads:
    """The REST calls a user of MLflow makes for each figure (JSON parsed, as any client must)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.http = httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=timeout)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return orjson.loads(response.content)

    def history(self, run_id: str, key: str) -> int:
        """Every point, paged as the client does (max_results 25,000); returns the number of points."""
        points, token = 0, None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
            page = self._get("metrics/get-history", {**params, **({"page_token": token} if token else {})})
            points += len(page.get("metrics", []))
            token = page.get("next_page_token")
            if not token:
                return points

    def sampled(self, run_ids: list[str], key: str, max_results: int) -> list[dict[str, Any]]:
        """get-history-bulk-interval: up to max_results points per run, one call per 100 runs (its limit)."""
        points: list[dict[str, Any]] = []
        for first in range(0, len(run_ids), MAX_BULK_RUNS):
            params = {"run_ids": run_ids[first : first + MAX_BULK_RUNS], "metric_key": key, "max_results": max_results}
            points += self._get("metrics/get-history-bulk-interval", params).get("metrics", [])
        return points

    def search(self, experiment_ids: list[str], filter: str, order_by: list[str], max_results: int) -> list[str]:
        body = {"experiment_ids": experiment_ids, "filter": filter, "order_by": order_by, "max_results": max_results}
        response = self.http.post("runs/search", json=body)
        response.raise_for_status()
        return [r["info"]["run_id"] for r in orjson.loads(response.content).get("runs", [])]

    def all_runs(self, experiment_ids: list[str], page: int) -> tuple[int, int, int, int]:
        """Every run, page after page as MLflow's client pages: how many, and the fewest params, tags
        and metrics a run had."""
        runs: list[dict[str, Any]] = []
        token = None
        while True:
            body = {"experiment_ids": experiment_ids, "max_results": page, **({"page_token": token} if token else {})}
            response = self.http.post("runs/search", json=body)
            response.raise_for_status()
            answer = orjson.loads(response.content)
            runs.extend(answer.get("runs", []))
            token = answer.get("next_page_token")
            if not token:
                break
        parts = ("params", "tags", "metrics")
        fewest = [min((len(r["data"].get(part, [])) for r in runs), default=0) for part in parts]
        return len(runs), fewest[0], fewest[1], fewest[2]

    def params_of(self, experiment_id: str, run_ids: list[str], key: str) -> dict[str, str]:
        quoted = ", ".join(f"'{r}'" for r in run_ids)
        body = {"experiment_ids": [experiment_id], "filter": f"attributes.run_id IN ({quoted})", "max_results": 1000}
        response = self.http.post("runs/search", json=body)
        response.raise_for_status()
        out = {}
        for run in orjson.loads(response.content).get("runs", []):
            params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
            out[run["info"]["run_id"]] = params.get(key, "")
        return out

    def aggregate(self, experiment_id: str, run_ids: list[str], key: str, param: str, buckets: int) -> dict[str, Any]:
        """No MLflow call aggregates across runs: fetch the runs' params and sampled histories, then
        mean/std across each group's runs per step bucket in numpy (what a user has to write)."""
        groups = self.params_of(experiment_id, run_ids, param)
        return group_mean_std(self.sampled(run_ids, key, buckets), run_ids, groups, buckets)

    def close(self) -> None:
        self.http.close()


def group_mean_std(
    points: list[dict[str, Any]], run_ids: list[str], groups: dict[str, str], buckets: int
) -> dict[str, Any]:
    """Per group: mean and sample std across its runs of each run's mean value per step bucket."""
    index = {r: i for i, r in enumerate(run_ids)}
    runs = np.array([index[p["run_id"]] for p in points])
    steps = np.array([int(p["step"]) for p in points])
    values = np.array([float(p["value"]) for p in points])
    lo, hi = int(steps.min()), int(steps.max())
    width = max(1, math.ceil((hi - lo + 1) / buckets))
    nb = (hi - lo) // width + 1
    cell = runs * nb + (steps - lo) // width
    sums = np.bincount(cell, values, minlength=len(run_ids) * nb)
    counts = np.bincount(cell, minlength=len(run_ids) * nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_run = (sums / counts).reshape(len(run_ids), nb)
    out = {}
    for value in sorted(set(groups.values())):
        rows = per_run[[index[r] for r in run_ids if groups.get(r) == value]]
        with warnings.catch_warnings():  # an empty bucket gives an all-NaN column: NaN is the right answer
            warnings.simplefilter("ignore", RuntimeWarning)
            out[value] = {"mean": np.nanmean(rows, axis=0), "std": np.nanstd(rows, axis=0, ddof=1)}
    return out
