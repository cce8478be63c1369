"""The model lifecycle after training: promotion gates, production monitoring and drift, on
`runstream serve`, with MLflow's own server timed in the same run where it has the operation.

    .venv/bin/python -m bench.lifecycle [--moves 200] [--windows 500] [--rows 10000]

- Promotion: set-alias calls one after another (MLflow's REST API), p50/p95: runstream without a gate,
  runstream through a gate of three checks (a metric threshold, a comparison with the current
  version, a required tag), and MLflow 3.17.2 on sqlite (which has no gates).
- Monitoring: `--windows` windows of `--rows` requests, 20 numeric and 5 categorical features plus
  predictions and latency, through runstream.Monitor: the model server's cost to summarise a window,
  the event's size against the raw rows', and windows per second until queryable.
- Drift: the monitoring API over every window (KS, PSI, chi-square per feature per window, in
  ClickHouse), p50 of 5 calls; for scale, the same KS by hand with scipy over the raw rows of 20 windows.
Results: bench/results/lifecycle.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from scipy import stats

import runstream
from bench import mlflow_side
from bench.report import run_and_save
from runstream.schemas.codec import encode
from runstream.schemas.events import event
from runstream.sdk.profiles import summarize, summarize_all
from tests.integration.roles import Role
from tests.services.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "lifecycle.json"
API = "/api/2.0/mlflow"
GATE = "metrics.accuracy >= 0.5 and metrics.accuracy >= current.metrics.accuracy and tags.validation_status = 'passed'"
NUMERIC, CATEGORICAL = 20, 5


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
    }


def _ok(http: httpx.Client, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.request(method, f"{API}{path}", json=body)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def promotions(url: str, moves: int, gated: bool) -> dict[str, float]:
    """`moves` alias moves between two versions whose runs pass the gate (equal accuracy)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        experiment = _ok(http, "POST", "/experiments/create", {"name": f"bench-gates-{gated}-{time.time_ns()}"})
        name = f"bench-{gated}-{time.time_ns()}"
        _ok(http, "POST", "/registered-models/create", {"name": name})
        for _ in range(2):
            run = _ok(http, "POST", "/runs/create", {"experiment_id": experiment["experiment_id"]})["run"]["info"][
                "run_id"
            ]
            _ok(
                http,
                "POST",
                "/runs/log-metric",
                {"run_id": run, "key": "accuracy", "value": 0.9, "timestamp": 0, "step": 0},
            )
            _ok(http, "POST", "/runs/set-tag", {"run_id": run, "key": "validation_status", "value": "passed"})
            _ok(http, "POST", "/model-versions/create", {"name": name, "source": "s3://bench/m", "run_id": run})
        if gated:
            _ok(http, "POST", "/registered-models/set-tag", {"name": name, "key": "runstream.gate.prod", "value": GATE})
        took = []
        for i in range(moves):
            started = time.perf_counter()
            _ok(http, "POST", "/registered-models/alias", {"name": name, "alias": "prod", "version": str(1 + i % 2)})
            took.append(time.perf_counter() - started)
        return _ms(took)


def _rows(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    rows: dict[str, np.ndarray] = {f"num{i}": rng.normal(shift * (i % 3), 1.0 + i, n) for i in range(NUMERIC)}
    for i in range(CATEGORICAL):
        rows[f"cat{i}"] = rng.choice([f"c{j}" for j in range(8)], n).astype(object)
    return rows


def monitoring(url: str, windows: int, n: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    with httpx.Client(base_url=url, timeout=120) as http:
        with runstream.start_run("bench-monitoring", tracking_uri=url) as run:
            run.log_profile("training", _rows(rng, n, 0.0))
        name = f"bench-monitored-{time.time_ns()}"
        _ok(http, "POST", "/registered-models/create", {"name": name})
        _ok(http, "POST", "/model-versions/create", {"name": name, "source": "s3://bench/m", "run_id": run.run_id})
        batches = [_rows(rng, n, shift) for shift in np.linspace(0.0, 1.0, 20)]  # reused: summarising is timed
        raw_samples = batches[:20]
        latency = rng.gamma(2.0, 10.0, n)
        start = int(time.time() * 1000) - windows * 60_000
        summarise, sizes = [], []
        began = time.perf_counter()
        with runstream.Monitor(name, 1, "prod", tracking_uri=url) as monitor:
            for i in range(windows):
                batch = batches[i % len(batches)]
                at = start + i * 60_000
                t = time.perf_counter()
                monitor.log(
                    batch, predictions=batch["num0"] > 0, latency_ms=latency, window_start=at, window_end=at + 60_000
                )
                summarise.append(time.perf_counter() - t)
                if i < 5:
                    features = [
                        *summarize_all(batch),
                        summarize("prediction", batch["num0"] > 0),
                        summarize("latency_ms", latency),
                    ]
                    fields = {
                        "model_name": name,
                        "version": 1,
                        "environment": "prod",
                        "window_start": at,
                        "window_end": at,
                    }
                    sizes.append(len(encode(*event("InferenceLogged", **fields, requests=n, features=features))))
            monitor.flush()
        params: dict[str, Any] = {"version": 1, "environment": "prod"}
        while len(http.get(f"/api/v1/registered-models/{name}/monitoring", params=params).json()["windows"]) < windows:
            time.sleep(0.2)
        logged_s = time.perf_counter() - began
        calls = []
        for _ in range(5):
            t = time.perf_counter()
            answer = http.get(f"/api/v1/registered-models/{name}/monitoring", params=params)
            answer.raise_for_status()
            calls.append(time.perf_counter() - t)
        answered = answer.json()["windows"]
        reference = _rows(np.random.default_rng(1), n, 0.0)  # the profile's rows, drawn again
        t = time.perf_counter()
        for batch in raw_samples:
            for i in range(NUMERIC):
                stats.ks_2samp(reference[f"num{i}"], batch[f"num{i}"])
        by_hand = time.perf_counter() - t
    raw_bytes = n * (NUMERIC * 8 + CATEGORICAL * 3 + 1 + 8)
    return {
        "windows": windows,
        "rows_per_window": n,
        "features": NUMERIC + CATEGORICAL + 2,
        "summarise_window": _ms(summarise),
        "event_bytes_per_window": int(statistics.median(sizes)),
        "raw_bytes_per_window": raw_bytes,
        "raw_over_event": round(raw_bytes / statistics.median(sizes), 1),
        "windows_per_s_until_queryable": round(windows / logged_s, 1),
        "monitoring_api_all_windows": _ms(calls),
        "drift_figures_answered": sum(len(w["drift"]) for w in answered),
        "scipy_ks_by_hand_20_windows_s": round(by_hand, 2),
        "scipy_ks_by_hand_per_window_ms": round(by_hand / len(raw_samples) * 1000, 1),
    }


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": {**vars(args), "cores": os.cpu_count()}, "load_average": os.getloadavg()}
    with ExitStack() as stack:
        port = free_port()
        serve = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "serve"))
        stack.callback(serve.stop)
        url = f"http://127.0.0.1:{port}"
        print("runstream serve: promotions ...", flush=True)
        results["set_alias"] = {
            "runstream": promotions(url, args.moves, False),
            "runstream_gated": promotions(url, args.moves, True),
        }
        print(f"  {results['set_alias']}", flush=True)
        print("runstream serve: monitoring ...", flush=True)
        results["monitoring"] = monitoring(url, args.windows, args.rows)
        print(f"  {results['monitoring']}", flush=True)
    with ExitStack() as stack:
        started = mlflow_side.start_server("sqlite", mlflow_side.mlflow_venv(), workdir / "mlflow-sqlite", stack)
        assert started is not None
        print("mlflow-sqlite: promotions ...", flush=True)
        results["set_alias"]["mlflow-sqlite"] = promotions(started[0].url, args.moves, False)
    mlflow_p50 = results["set_alias"]["mlflow-sqlite"]["p50_ms"]
    results["set_alias"]["gated_over_mlflow_p50"] = round(
        results["set_alias"]["runstream_gated"]["p50_ms"] / mlflow_p50, 2
    )
    results["set_alias"]["ungated_over_mlflow_p50"] = round(results["set_alias"]["runstream"]["p50_ms"] / mlflow_p50, 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=200, help="alias moves timed one after another")
    parser.add_argument("--windows", type=int, default=500, help="production windows logged")
    parser.add_argument("--rows", type=int, default=10_000, help="requests per window")
    args = parser.parse_args()
    run_and_save("runstream-bench-lifecycle-", RESULTS, lambda workdir: run_bench(args, workdir))


if __name__ == "__main__":
    main()
