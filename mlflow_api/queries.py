"""The reads MLflow's API needs beyond store/queries.py, shaped as MLflow's messages: runs with their
inputs and outputs, a run's artifact URI, sampled history across runs (get-history-bulk-interval),
and an experiment by name (what the write path checks). The SQL is the store's."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.mlflow_api import shapes
from runstream.store import queries, run_inputs


def runs_with_inputs(client: Client, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs as MLflow shows them: with their dataset and model inputs and model outputs."""
    ids = [r["run_id"] for r in runs]
    datasets = {
        run_id: [{"tags": shapes.key_values(d["tags"]), "dataset": d["dataset"]} for d in found]
        for run_id, found in run_inputs.dataset_inputs(client, ids).items()
    }
    models, outputs = run_inputs.model_inputs(client, ids), run_inputs.model_outputs(client, ids)
    return [
        shapes.run(r, datasets.get(r["run_id"], []), models.get(r["run_id"], []), outputs.get(r["run_id"], []))
        for r in runs
    ]


def artifact_uri(client: Client, run_id: str) -> str | None:
    found = queries.run_artifact_location(client, run_id)
    return shapes.run_artifact_uri(found[0], run_id, found[1]) if found else None


def history_bulk_interval(
    client: Client, run_ids: list[str], key: str, max_results: int, start: int | None, end: int | None
) -> list[dict[str, Any]]:
    points: dict[str, list[dict[str, Any]]] = {}
    for run_id, step, timestamp, value in queries.sampled_history(client, run_ids, key, max_results, start, end):
        points.setdefault(run_id, []).append({**shapes.metric(key, value, timestamp, step), "run_id": run_id})
    return [point for run_id in dict.fromkeys(run_ids) for point in points.get(run_id, [])]  # the request's order


def experiment_by_name(client: Client, name: str) -> dict[str, Any] | None:
    """Active or deleted (MLflow's get-by-name finds both; a deleted name still blocks creation)."""
    found = queries.experiments(client, "all", name)
    return found[0] if found else None
