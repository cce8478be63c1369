"""Creating many small runs (a sweep): runs/s through the SDK and through MLflow's client, in one run.

    .venv/bin/python -m bench.run_creation [--runs 2000] [--seconds 20] [--backends sqlite,postgres]

Each run has 5 params, 3 tags and 3 metrics. runstream: `runstream serve` (embedded: gateway, projector and
API in one process); the SDK does `with runstream.start_run(...)` per run, sequentially in one process,
from `--threads` threads of one process, and from `--processes` processes; every run's events are
durable when its `with` block ends. Then sequentially with `wait_on_end=False` (a sweep that does not
wait at each run's end) and one `runstream.flush()` after the last run, timed until it returns.
MLflow's client (MLflow 3.17.2, its venv from
bench/requirements-mlflow.txt; bench/mlflow_client_calls.py `create-runs`: create_run, one log_batch,
set_terminated) from 1 and 8 writer processes for `--seconds`, against runstream and against `mlflow
server --workers 1` on sqlite and PostgreSQL, and against a server that answers at once without
storing anything (bench/instant_mlflow.py): the client's own ceiling here, which no server passes.
Then a check that every SDK run reads back FINISHED.
Results: bench/results/run_creation.json, with the ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import runstream
from bench import mlflow_side
from bench.instant_mlflow import instant_mlflow
from bench.mlflow_client import mlflow_call
from bench.report import run_and_save
from tests.integration.roles import Role
from tests.services.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "run_creation.json"
EXPERIMENT = "run-creation"


def sdk_runs(uri: str, first: int, count: int, wait_on_end: bool = True) -> list[str]:
    """`count` runs, one after another, as a sweep's loop makes them; their ids. Without `wait_on_end`,
    `runstream.flush()` after the last: every run is durable when this returns, either way."""
    ids = []
    for i in range(first, first + count):
        tags = {f"t{j}": i for j in range(3)}
        with runstream.start_run(
            experiment=EXPERIMENT, run_name=f"r{i}", tags=tags, tracking_uri=uri, wait_on_end=wait_on_end
        ) as run:
            run.log_params({f"p{j}": i + j for j in range(5)})
            run.log_metrics({f"m{j}": float(i) for j in range(3)})
        ids.append(run.run_id)
    runstream.flush()
    return ids


def _timed(make: Any) -> tuple[float, list[str]]:
    start = time.perf_counter()
    ids = make()
    return time.perf_counter() - start, ids


def measure_sdk(uri: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    n, figures = args.runs, {}
    ids: list[str] = []
    sdk_runs(uri, 0, 20)  # warm: the sender's connection, the server's first requests
    seconds, done = _timed(lambda: sdk_runs(uri, 0, n))
    figures["sequential_runs_per_s"], ids = round(n / seconds), ids + done
    seconds, done = _timed(lambda: sdk_runs(uri, 3 * n, n, wait_on_end=False))
    figures["sequential_unwaited_runs_per_s"], ids = round(n / seconds), ids + done
    share = n // args.threads
    with ThreadPoolExecutor(args.threads) as pool:
        seconds, done = _timed(
            lambda: [
                i for ids in pool.map(lambda t: sdk_runs(uri, n + t * share, share), range(args.threads)) for i in ids
            ]
        )
    figures[f"{args.threads}_threads_runs_per_s"], ids = round(len(done) / seconds), ids + done
    share = n // args.processes
    with ProcessPoolExecutor(args.processes, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(sdk_runs, [uri] * args.processes, [0] * args.processes, [1] * args.processes))  # started
        first = 2 * n
        seconds, done = _timed(
            lambda: [
                i
                for ids in pool.map(
                    sdk_runs,
                    [uri] * args.processes,
                    [first + p * share for p in range(args.processes)],
                    [share] * args.processes,
                )
                for i in ids
            ]
        )
    figures[f"{args.processes}_processes_runs_per_s"], ids = round(len(done) / seconds), ids + done
    return figures, ids


def measure_mlflow_client(venv: Path, uri: str, seconds: float) -> dict[str, Any]:
    figures = {}
    for writers in (1, 8):
        with ThreadPoolExecutor(writers) as pool:
            runs = list(pool.map(lambda _: mlflow_call(venv, "create-runs", uri, str(seconds)), range(writers)))
        figures[f"mlflow_client_{writers}_writers_runs_per_s"] = round(
            sum(r["runs"] for r in runs) / max(r["seconds"] for r in runs), 1
        )
    return figures


def check_finished(uri: str, ids: list[str]) -> int:
    """Every SDK run reads back FINISHED with its params (read-your-writes in this process)."""
    client = runstream.Client(uri)
    for run_id in ids[:: max(1, len(ids) // 200)]:
        got = client.get_run(run_id)
        assert got["status"] == "FINISHED" and len(got["params"]) == 5 and len(got["metrics"]) == 3, got
    return len(ids)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    venv = mlflow_side.mlflow_venv()
    results: dict[str, Any] = {"settings": {**vars(args), "cores": os.cpu_count()}, "uptime_before": uptime()}
    with ExitStack() as stack:
        port = free_port()
        serve = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "serve"))
        stack.callback(serve.stop)
        uri = f"http://127.0.0.1:{port}"
        print("runstream serve: SDK ...", flush=True)
        mine, ids = measure_sdk(uri, args)
        print(f"  {mine}", flush=True)
        print("runstream serve: MLflow's client ...", flush=True)
        mine |= measure_mlflow_client(venv, uri, args.seconds)
        mine["sdk_runs_read_back_finished"] = check_finished(uri, ids)
        results["runstream"] = mine
        print(f"  {mine}", flush=True)
    for backend in filter(None, args.backends.split(",")):
        with ExitStack() as stack:
            started = mlflow_side.start_server(backend, venv, workdir / f"mlflow-{backend}", stack)
            if started is None:
                results[f"mlflow-{backend}"] = {"skipped": "no PostgreSQL server binaries"}
                continue
            print(f"mlflow-{backend}: MLflow's client ...", flush=True)
            figures = measure_mlflow_client(venv, started[0].url, args.seconds)
            figures["runstream_faster_by"] = {k: round(mine[k] / v, 1) for k, v in list(figures.items())}
            mlflow_8 = figures["mlflow_client_8_writers_runs_per_s"]
            sdk = {k: v for k, v in mine.items() if k.endswith("_runs_per_s") and not k.startswith("mlflow")}
            figures["runstream_sdk_over_mlflow_client_8_writers"] = {k: round(v / mlflow_8, 1) for k, v in sdk.items()}
            results[f"mlflow-{backend}"] = figures
            print(f"  {figures}", flush=True)
    print("a server answering at once (bench/instant_mlflow.py): MLflow's client ...", flush=True)
    with instant_mlflow() as uri:
        ceiling = measure_mlflow_client(venv, uri, args.seconds)
    ceiling["runstream_share"] = {k: round(mine[k] / v, 2) for k, v in list(ceiling.items())}
    results["client_ceiling"] = ceiling
    print(f"  {ceiling}", flush=True)
    results["uptime_after"] = uptime()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="SDK runs per mode (sequential, threads, processes)")
    parser.add_argument("--threads", type=int, default=8, help="SDK threads in one process")
    parser.add_argument("--processes", type=int, default=4, help="SDK processes")
    parser.add_argument("--seconds", type=float, default=20.0, help="MLflow client loop length per writer")
    parser.add_argument("--backends", default="sqlite,postgres", help="MLflow backends ('' for none)")
    args = parser.parse_args()
    run_and_save("runstream-bench-run-creation-", RESULTS, lambda workdir: run_bench(args, workdir))


if __name__ == "__main__":
    main()
