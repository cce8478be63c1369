"""Webhook deliveries: runstream vs MLflow's own server, in one run, to the same local receiver.

    .venv/bin/python -m bench.webhooks [--changes 200] [--outage-changes 50] [--outage-s 20]

Both servers get one webhook on `model_version_alias.created` and the same REST calls (MLflow's API:
set-alias on one model, one call after another). Latency: for `--changes` alias changes, from the
call's start to the receiver taking the delivery (p50, p95, max), and the calls' own time. Outage:
the receiver answers 503 for `--outage-s` while `--outage-changes` aliases are set; then how many
distinct changes each server delivered once the receiver is back (waiting up to --outage-s + 120 s).
runstream: `runstream serve` (deliveries from the log, retried for --webhook-retry-s, default 300 s);
MLflow 3.17.2: `mlflow server --workers 1` on sqlite (deliveries from a thread pool, 3 retries).
Results: bench/results/webhooks.json.
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

from bench import mlflow_side
from bench.report import run_and_save
from tests.integration.roles import Role
from tests.services.ports import free_port
from tests.webhooks.receiver import Receiver, receiver

RESULTS = Path(__file__).resolve().parent / "results" / "webhooks.json"
API = "/api/2.0/mlflow"
EVENT = {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}


def _call(http: httpx.Client, method: str, path: str, body: dict[str, Any]) -> None:
    answer = http.request(method, f"{API}{path}", json=body)
    answer.raise_for_status()


def _aliases(r: Receiver, prefix: str) -> dict[str, float]:
    """Alias → when the receiver first took its delivery."""
    taken: dict[str, float] = {}
    for got in r.taken():
        alias = got.json["data"].get("alias", "")
        if alias.startswith(prefix):
            taken.setdefault(alias, got.at)
    return taken


def _wait(r: Receiver, prefix: str, count: int, timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while len(taken := _aliases(r, prefix)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return taken


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    with receiver() as r, httpx.Client(base_url=url, timeout=60) as http:
        _call(http, "POST", "/webhooks", {"name": "bench", "url": r.url, "events": [EVENT]})
        _call(http, "POST", "/registered-models/create", {"name": "bench-model"})
        _call(http, "POST", "/model-versions/create", {"name": "bench-model", "source": "s3://bench/model"})
        started: dict[str, float] = {}
        calls = []
        for i in range(args.changes):
            alias = f"a{i}"
            started[alias] = time.time()
            _call(http, "POST", "/registered-models/alias", {"name": "bench-model", "alias": alias, "version": "1"})
            calls.append(time.time() - started[alias])
        taken = _wait(r, "a", args.changes, 120)
        latencies = sorted(taken[a] - started[a] for a in taken)
        figures: dict[str, Any] = {
            "delivered": len(taken),
            "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "latency_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
            "latency_max_ms": round(latencies[-1] * 1000, 1),
            "set_alias_call_p50_ms": round(statistics.median(calls) * 1000, 1),
        }
        r.down_until = time.time() + args.outage_s
        spacing = args.outage_s / args.outage_changes
        for i in range(args.outage_changes):
            _call(http, "POST", "/registered-models/alias", {"name": "bench-model", "alias": f"o{i}", "version": "1"})
            time.sleep(spacing)
        back = time.time()
        taken = _wait(r, "o", args.outage_changes, args.outage_s + 120)
        figures["outage"] = {
            "changes": args.outage_changes,
            "delivered": len(taken),
            "lost": args.outage_changes - len(taken),
            "all_delivered_s_after_receiver_back": round(max(taken.values()) - back, 1)
            if len(taken) == args.outage_changes
            else None,
            "attempts_refused": sum(1 for x in r.received if x.answered == 503),
        }
        return figures


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    venv = mlflow_side.mlflow_venv()
    # The receiver is http on 127.0.0.1: both servers must be told it may be (their own variables).
    for name in ("WEBHOOK_ALLOWED_SCHEMES", "WEBHOOK_ALLOW_PRIVATE_IPS"):
        value = "http,https" if "SCHEMES" in name else "true"
        os.environ[f"RUNSTREAM_{name}"] = os.environ[f"MLFLOW_{name}"] = value
    results: dict[str, Any] = {"settings": {**vars(args), "cores": os.cpu_count()}, "load_average": os.getloadavg()}
    with ExitStack() as stack:
        port = free_port()
        serve = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "serve"))
        stack.callback(serve.stop)
        print("runstream serve ...", flush=True)
        results["runstream"] = measure(f"http://127.0.0.1:{port}", args)
        print(f"  {results['runstream']}", flush=True)
    with ExitStack() as stack:
        started = mlflow_side.start_server("sqlite", venv, workdir / "mlflow-sqlite", stack)
        assert started is not None
        print("mlflow-sqlite ...", flush=True)
        results["mlflow-sqlite"] = measure(started[0].url, args)
        print(f"  {results['mlflow-sqlite']}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=200, help="alias changes timed one after another")
    parser.add_argument("--outage-changes", type=int, default=50, help="alias changes while the receiver is down")
    parser.add_argument("--outage-s", type=float, default=20.0, help="how long the receiver answers 503")
    args = parser.parse_args()
    run_and_save("runstream-bench-webhooks-", RESULTS, lambda workdir: run_bench(args, workdir))


if __name__ == "__main__":
    main()
