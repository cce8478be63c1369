"""The MLflow client against runstream and against MLflow's own server, in one run.

    .venv/bin/python -m bench.mlflow_client [--seconds 20] [--history-points 1000000] [--backends sqlite,postgres]

The same official client (MLflow 3.17.2, its venv from bench/requirements-mlflow.txt) calls, in
bench/mlflow_client_calls.py: log_batch of 1,000 metrics in a loop, from 1 and from 8 writer processes
at once (metrics/s over `--seconds`), then get_metric_history of a run of `--history-points` points
(logged by log_batch; p50 of `--history-reps` calls). runstream: `runstream serve` (embedded: gateway, projector and
API in one process, as a user starts it); MLflow: `mlflow server --workers 1` on sqlite and on
PostgreSQL. Results: bench/results/mlflow_client.json, with runstream/MLflow ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import mlflow_side
from bench.report import run_and_save
from tests.integration.roles import Role
from tests.services.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "mlflow_client.json"
CALLS = Path(__file__).resolve().parent / "mlflow_client_calls.py"


def mlflow_call(venv: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(CALLS), *args], capture_output=True, text=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(venv: Path, uri: str, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for writers in (1, 8):
        with ThreadPoolExecutor(writers) as pool:
            runs = list(pool.map(lambda _: mlflow_call(venv, "log-batch", uri, str(args.seconds)), range(writers)))
        figures[f"log_batch_{writers}_writers_metrics_per_s"] = round(
            sum(r["metrics"] for r in runs) / max(r["seconds"] for r in runs)
        )
    loaded = mlflow_call(venv, "load", uri, str(args.history_points))
    history = mlflow_call(venv, "history", uri, loaded["run_id"], str(args.history_reps))
    assert history["points"] == args.history_points, history
    figures["history_load_s"] = round(loaded["seconds"], 1)
    figures["history_p50_s"] = round(statistics.median(history["seconds"]), 3)
    return figures


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    venv = mlflow_side.mlflow_venv()
    results: dict[str, Any] = {"settings": {**vars(args), "cores": os.cpu_count()}, "load_average": os.getloadavg()}
    with ExitStack() as stack:
        port = free_port()
        serve = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "serve"))
        stack.callback(serve.stop)
        print("runstream serve ...", flush=True)
        results["runstream"] = measure(venv, f"http://127.0.0.1:{port}", args)
        print(f"  {results['runstream']}", flush=True)
    for backend in filter(None, args.backends.split(",")):
        with ExitStack() as stack:
            started = mlflow_side.start_server(backend, venv, workdir / f"mlflow-{backend}", stack)
            if started is None:
                results[f"mlflow-{backend}"] = {"skipped": "no PostgreSQL server binaries"}
                continue
            server, _ = started
            print(f"mlflow-{backend} ...", flush=True)
            figures = measure(venv, server.url, args)
            mine = results["runstream"]
            rate = "log_batch_{}_writers_metrics_per_s".format
            figures["runstream_faster_by"] = {
                f"log_batch_{n}_writers": round(mine[rate(n)] / figures[rate(n)], 1) for n in (1, 8)
            } | {"history": round(figures["history_p50_s"] / mine["history_p50_s"], 1)}
            results[f"mlflow-{backend}"] = figures
            print(f"  {figures}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="log_batch loop length per writer")
    parser.add_argument("--history-points", type=int, default=1_000_000, help="points of the history run")
    parser.add_argument("--history-reps", type=int, default=2, help="timed get_metric_history calls (p50)")
    parser.add_argument("--backends", default="sqlite,postgres", help="MLflow backends ('' for none)")
    args = parser.parse_args()
    run_and_save("runstream-bench-mlflow-client-", RESULTS, lambda workdir: run_bench(args, workdir))


if __name__ == "__main__":
    main()
