"""What runs took as input and gave as output (migrations/003, 006): their datasets (and the
experiments' dataset summaries, as MLflow's SearchDatasets), the logged models they produced and took."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.store.id_sets import query_by_ids

_INPUTS = (
    "SELECT run_id, name, digest, source_type, source, schema, profile, tags FROM run_inputs FINAL "
    "WHERE run_id IN {ids:Array(String)} ORDER BY run_id, event_time, seq LIMIT 1 BY run_id, name, digest"
)


def dataset_inputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per run, its datasets in the order first logged (a dataset logged again is listed once), each
    as {"tags": {...}, "dataset": {...}}."""
    out: dict[str, list[dict[str, Any]]] = {}
    if run_ids:
        for run_id, name, digest, source_type, source, schema, profile, tags in query_by_ids(
            client, _INPUTS, run_ids
        ).result_rows:
            dataset = {"name": name, "digest": digest, "source_type": source_type, "source": source}
            dataset |= {k: v for k, v in (("schema", schema), ("profile", profile)) if v is not None}
            out.setdefault(run_id, []).append({"tags": tags, "dataset": dataset})
    return out


MAX_DATASET_SUMMARIES = 1000  # MLflow's cap
# Each (experiment, dataset, context) the experiments' runs took as input, as MLflow's SearchDatasets.
_DATASET_SUMMARIES = f"""
SELECT DISTINCT r.experiment_id, i.name, i.digest, i.tags['mlflow.data.context'] AS context
FROM run_inputs AS i FINAL
INNER JOIN (SELECT run_id, experiment_id FROM runs_view WHERE experiment_id IN {{ids:Array(String)}}) AS r
    ON i.run_id = r.run_id
ORDER BY r.experiment_id, i.name, i.digest, context
LIMIT {MAX_DATASET_SUMMARIES}
"""


def dataset_summaries(client: Client, experiment_ids: list[str]) -> list[dict[str, str]]:
    rows = client.query(_DATASET_SUMMARIES, parameters={"ids": experiment_ids}).result_rows
    return [
        {"experiment_id": e, "name": name, "digest": digest} | ({"context": context} if context else {})
        for e, name, digest, context in rows
    ]


# MLflow 3's logged models a run produced (runs/outputs) and took as inputs, each once, as first logged.
_OUTPUTS = (
    "SELECT run_id, model_id, step FROM run_outputs FINAL WHERE run_id IN {ids:Array(String)} "
    "ORDER BY run_id, event_time, seq LIMIT 1 BY run_id, model_id, step"
)
_MODEL_INPUTS = (
    "SELECT run_id, model_id FROM run_model_inputs FINAL WHERE run_id IN {ids:Array(String)} "
    "ORDER BY run_id, event_time, seq LIMIT 1 BY run_id, model_id"
)


def _per_run(client: Client, sql: str, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """A query's rows per run, each without its run_id."""
    out: dict[str, list[dict[str, Any]]] = {}
    if run_ids:
        for row in query_by_ids(client, sql, run_ids).named_results():
            out.setdefault(row.pop("run_id"), []).append(row)
    return out


def model_inputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    return _per_run(client, _MODEL_INPUTS, run_ids)


def model_outputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    return _per_run(client, _OUTPUTS, run_ids)
