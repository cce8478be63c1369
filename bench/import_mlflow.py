"""Importing from MLflow, beside MLflow's own export rate, in one run on this machine:

An MLflow 3 store (sqlite; bench/requirements-mlflow.txt, own venv) holding 10,000 runs (5 params,
3 tags, 3 metrics of 3 points each, as bench/queries' search experiment), one 1,000,000-point run and
a 1,000-point one, bulk-loaded into MLflow's own tables (bench/mlflow_side). Then:
- MLflow's export rate: its tracking server's REST read of all of it, as an exporting client reads
  (runs/search pages of 1,000; every metric's get-history, pages of 25,000);
- `runstream import mlflow sqlite:///...`: MLflow's store read by MLflow's client, written into a fresh
  `runstream serve` (the whole command: its start, the import, the final count against the source);
- `runstream import mlflow http://mlflow-server`: the same through MLflow's server.

    .venv/bin/python -m bench.import_mlflow [--runs 10000] [--big-points 1000000] [--no-rest]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench import mlflow_side
from bench.dataset import Sizes, history_runs
from bench.report import run_and_save
from tests.integration.roles import REPO, Role
from tests.services.ports import free_port
from tests.venvs import cached_python, layered_python

RESULTS = Path(__file__).resolve().parent / "results" / "import_mlflow.json"


def rest_read(url: str) -> dict[str, Any]:
    """Everything through MLflow's REST API as an exporting client reads it; runs and points read."""
    started = time.time()
    runs = points = 0
    with httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=600) as http:
        experiments = http.get("/experiments/search", params={"max_results": 1000}).json()["experiments"]
        for experiment in experiments:
            token = None
            while True:
                body = {"experiment_ids": [experiment["experiment_id"]], "max_results": 1000, "page_token": token}
                page = http.post("/runs/search", json=body).json()
                for run in page.get("runs", []):
                    runs += 1
                    for metric in run["data"].get("metrics", []):
                        points += _history(http, run["info"]["run_id"], metric["key"])
                token = page.get("next_page_token")
                if not token:
                    break
    seconds = time.time() - started
    return _figures(runs, points, seconds)


def _history(http: httpx.Client, run_id: str, key: str) -> int:
    n, token = 0, None
    while True:
        params: dict[str, str | int] = {"run_id": run_id, "metric_key": key, "max_results": mlflow_side.HISTORY_PAGE}
        if token:
            params["page_token"] = token
        page = http.get("/metrics/get-history", params=params).json()
        n += len(page.get("metrics", []))
        token = page.get("next_page_token")
        if not token:
            return n


def _figures(runs: int, points: int, seconds: float) -> dict[str, Any]:
    return {
        "runs": runs,
        "points": points,
        "seconds": round(seconds, 1),
        "runs_per_s": round(runs / seconds, 1),
        "points_per_s": round(points / seconds),
    }


def run_import(python: Path, source: str, workdir: Path, stack: ExitStack) -> dict[str, Any]:
    """`runstream import mlflow SOURCE` into a fresh `runstream serve`, timed as a whole command."""
    workdir.mkdir()
    port = free_port()
    serve = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data"))
    stack.callback(serve.stop)
    command = [str(python), "-m", "runstream", "import", "mlflow", source, "--to", f"http://127.0.0.1:{port}"]
    started = time.time()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=7200)
    seconds = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"the import failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    runs = int(re.search(r"imported ([\d,]+) runs", done.stdout)[1].replace(",", ""))  # type: ignore[index]
    points = int(re.search(r"metric points\s+([\d,]+)", done.stdout)[1].replace(",", ""))  # type: ignore[index]
    serve.stop()
    return {**_figures(runs, points, seconds), "summary": done.stdout.strip().splitlines()[1:]}


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    sizes = Sizes(big_points=args.big_points, raw_points=1000, compare_runs=0, search_runs=args.runs, search_points=3)
    base = cached_python(mlflow_side.REQUIREMENTS)
    wheels = workdir / "wheel"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(wheels)]
    subprocess.run([*pip, str(REPO)], check=True, timeout=600)
    python = layered_python(workdir / "importer", base, str(next(wheels.glob("*.whl"))), "pyarrow==25.0.1")
    with ExitStack() as stack:
        server = mlflow_side.Server(base.parent.parent, f"sqlite:///{workdir / 'mlflow.sqlite'}", workdir, stack)
        bulk = mlflow_side.Bulk(sqlite_path=workdir / "mlflow.sqlite")
        loaded = mlflow_side.load(bulk, server, sizes)
        bulk.close()
        print(f"MLflow store loaded in {loaded['bulk_load_s']} s", flush=True)
        results: dict[str, Any] = {"mlflow_rest_read": rest_read(server.url)}
        print(f"MLflow's REST read: {results['mlflow_rest_read']}", flush=True)
        source = f"sqlite:///{workdir / 'mlflow.sqlite'}"
        results["import_from_sqlite"] = run_import(python, source, workdir / "from-sqlite", stack)
        print(f"import from sqlite: {results['import_from_sqlite']['points_per_s']:,} points/s", flush=True)
        if args.rest:
            results["import_through_server"] = run_import(python, server.url, workdir / "from-server", stack)
    history = sum(r.points for r in history_runs(sizes))
    read = results["mlflow_rest_read"]["seconds"]
    return {
        "settings": {"runs": args.runs + 2, "points": sizes.search_runs * 3 * sizes.search_points + history},
        **results,
        "import_sqlite_vs_mlflow_read": round(read / results["import_from_sqlite"]["seconds"], 2),
    }


def summary(results: dict[str, Any]) -> str:
    lines = [f"{results['settings']['runs']:,} runs, {results['settings']['points']:,} metric points:"]
    for name in ("mlflow_rest_read", "import_from_sqlite", "import_through_server"):
        if name in results:
            r = results[name]
            lines.append(
                f"  {name:<24} {r['seconds']:>8} s  {r['runs_per_s']:>8,} runs/s  {r['points_per_s']:>10,} points/s"
            )
    lines.append(f"  import from sqlite vs MLflow's own REST read: {results['import_sqlite_vs_mlflow_read']}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="small runs (3 metrics of 3 points)")
    parser.add_argument("--big-points", type=int, default=1_000_000, help="points of the long run")
    parser.add_argument("--no-rest", dest="rest", action="store_false", help="skip the import through the server")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    run_and_save("runstream-import-", RESULTS, lambda workdir: run_bench(args, workdir), args.keep, summary)


if __name__ == "__main__":
    main()
