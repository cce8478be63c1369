"""Run by bench/mlflow_client.py with the MLflow venv's Python: the official client's calls, timed.

    python mlflow_client_calls.py log-batch URI SECONDS    # one writer: log_batch of 1,000 metrics, repeatedly
    python mlflow_client_calls.py load URI POINTS          # a run of POINTS points of "loss" (log_batch), its id
    python mlflow_client_calls.py history URI RUN_ID REPS  # get_metric_history of the whole run, seconds per call
    python mlflow_client_calls.py create-runs URI SECONDS  # runs of 5 params, 3 tags, 3 metrics, repeatedly

Prints one JSON object. Uses only the MLflow client, so the same calls hit runstream and MLflow's server.
"""

import json
import sys
import time

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

BATCH = 1000  # MLflow's limit of metrics per log_batch


def batches(run_id: str, client: MlflowClient, first: int, count: int) -> None:
    now = int(time.time() * 1000)
    for start in range(first, first + count, BATCH):
        metrics = [Metric("loss", float(i), now, i) for i in range(start, min(start + BATCH, first + count))]
        client.log_batch(run_id, metrics=metrics)


def create_run(client: MlflowClient, i: int) -> None:
    """What a sweep does per run: create it, log 5 params, 3 tags and 3 metrics in one batch, end it."""
    run_id = client.create_run("0", run_name=f"r{i}").info.run_id
    now = int(time.time() * 1000)
    params = [Param(f"p{j}", str(i + j)) for j in range(5)]
    tags = [RunTag(f"t{j}", str(i)) for j in range(3)]
    client.log_batch(run_id, metrics=[Metric(f"m{j}", float(i), now, 0) for j in range(3)], params=params, tags=tags)
    client.set_terminated(run_id)


def main() -> None:
    mode, uri = sys.argv[1], sys.argv[2]
    out: dict[str, object]
    client = MlflowClient(tracking_uri=uri)
    if mode == "log-batch":
        seconds = float(sys.argv[3])
        run_id = client.create_run("0").info.run_id
        calls, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            batches(run_id, client, calls * BATCH, BATCH)
            calls += 1
        out = {"metrics": calls * BATCH, "seconds": time.monotonic() - started}
    elif mode == "create-runs":
        seconds, runs, started = float(sys.argv[3]), 0, time.monotonic()
        while time.monotonic() - started < seconds:
            create_run(client, runs)
            runs += 1
        out = {"runs": runs, "seconds": time.monotonic() - started}
    elif mode == "load":
        run_id = client.create_run("0").info.run_id
        started = time.monotonic()
        batches(run_id, client, 0, int(sys.argv[3]))
        out = {"run_id": run_id, "seconds": time.monotonic() - started}
    else:
        run_id, reps, count = sys.argv[3], int(sys.argv[4]), 0
        times: list[float] = []
        for _ in range(reps):
            started = time.monotonic()
            count = len(client.get_metric_history(run_id, "loss"))
            times.append(time.monotonic() - started)
        out = {"points": count, "seconds": times}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
