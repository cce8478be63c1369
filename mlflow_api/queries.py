"""The reads MLflow's API needs beyond api.queries: a run's dataset inputs, sampled history across
runs (get-history-bulk-interval), and the facts the write path checks."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.mlflow_api import shapes
from runstream.store import queries

_INPUTS = (
    "SELECT run_id, name, digest, source_type, source, schema, profile, tags FROM run_inputs FINAL "
    "WHERE run_id IN {ids:Array(String)} ORDER BY run_id, event_time, seq LIMIT 1 BY run_id, name, digest"
)


def dataset_inputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per run, its datasets in the order first logged (a dataset logged again is listed once)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if run_ids:
        for run_id, name, digest, source_type, source, schema, profile, tags in client.query(
            _INPUTS, parameters={"ids": run_ids}
        ).result_rows:
            dataset = {"name": name, "digest": digest, "source_type": source_type, "source": source}
            dataset |= {k: v for k, v in (("schema", schema), ("profile", profile)) if v is not None}
            out.setdefault(run_id, []).append({"tags": shapes.key_values(tags), "dataset": dataset})
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
        for row in client.query(sql, parameters={"ids": run_ids}).named_results():
            out.setdefault(row.pop("run_id"), []).append(row)
    return out


def model_inputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    return _per_run(client, _MODEL_INPUTS, run_ids)


def model_outputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    return _per_run(client, _OUTPUTS, run_ids)


def runs_with_inputs(client: Client, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs as MLflow shows them: with their dataset and model inputs and model outputs."""
    ids = [r["run_id"] for r in runs]
    datasets, models, outputs = dataset_inputs(client, ids), model_inputs(client, ids), model_outputs(client, ids)
    return [
        shapes.run(r, datasets.get(r["run_id"], []), models.get(r["run_id"], []), outputs.get(r["run_id"], []))
        for r in runs
    ]


def run(client: Client, run_id: str) -> dict[str, Any] | None:
    found = queries.run(client, run_id)
    return runs_with_inputs(client, [found])[0] if found else None


def artifact_uri(client: Client, run_id: str) -> str | None:
    """The run's artifact URI, as its info says (its params, tags and metrics are not read)."""
    rows = client.query(
        "SELECT experiment_id, artifact_uri FROM runs_view WHERE run_id = {run_id:String}",
        parameters={"run_id": run_id},
    ).result_rows
    return shapes.run_artifact_uri(str(rows[0][0]), run_id, rows[0][1]) if rows else None


# MLflow 3's sampling (SqlAlchemyStore.get_metric_history_bulk_interval), per run: its points in
# (step, timestamp, value with NaN as 0, is NaN) order, cut into NTILE(k) buckets (the first n % k
# buckets one point longer), the first point of each bucket but the last, and the run's last point.
# A run of at most k points is answered whole. (rank orders points of several ranks: MLflow has none.)
_SAMPLED = """
SELECT run_id, step, timestamp, value FROM (
    SELECT run_id, step, timestamp, value, i, n,
           intDiv(n, {k:UInt64}) AS q, n % {k:UInt64} AS r, r * (q + 1) AS long_rows
    FROM (
        SELECT run_id, step, timestamp, value,
               row_number() OVER (
                   PARTITION BY run_id ORDER BY step, timestamp, if(isNaN(value), 0, value), isNaN(value), rank
               ) - 1 AS i,
               count() OVER (PARTITION BY run_id) AS n
        FROM metrics FINAL
        WHERE run_id IN {ids:Array(String)} AND key = {key:String} AND step BETWEEN {start:Int64} AND {end:Int64}
    )
)
WHERE n <= {k:UInt64} OR i = n - 1 OR if(
    i < long_rows,
    i % (q + 1) = 0 AND intDiv(i, q + 1) < {k:UInt64} - 1,
    (i - long_rows) % greatest(q, 1) = 0 AND r + intDiv(i - long_rows, greatest(q, 1)) < {k:UInt64} - 1
)
ORDER BY run_id, i
"""


def history_bulk_interval(
    client: Client, run_ids: list[str], key: str, max_results: int, start: int | None, end: int | None
) -> list[dict[str, Any]]:
    bounds = {"start": -(2**63), "end": 2**63 - 1} if start is None or end is None else {"start": start, "end": end}
    rows = client.query(_SAMPLED, parameters={"ids": run_ids, "key": key, "k": max_results, **bounds}).result_rows
    points: dict[str, list[dict[str, Any]]] = {}
    for run_id, step, timestamp, value in rows:
        points.setdefault(run_id, []).append({**shapes.metric(key, value, timestamp, step), "run_id": run_id})
    return [point for run_id in dict.fromkeys(run_ids) for point in points.get(run_id, [])]  # the request's order


def run_ids(client: Client, experiment_id: str, view: str) -> list[str]:
    result = client.query(
        f"SELECT run_id FROM runs_view WHERE experiment_id = {{id:String}} AND {queries.LIFECYCLE[view]}",
        parameters={"id": experiment_id},
    )
    return [row[0] for row in result.result_rows]


def experiment_by_name(client: Client, name: str) -> dict[str, Any] | None:
    """Active or deleted (MLflow's get-by-name finds both; a deleted name still blocks creation)."""
    found = queries.experiments(client, "all", name)
    return found[0] if found else None
