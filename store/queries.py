"""Parameterised SQL for the read API. User strings only ever travel as query parameters."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from clickhouse_connect.driver.client import Client

from runstream.base.errors import InvalidRequest
from runstream.schemas.wire import json_float
from runstream.store.id_sets import query_by_ids

LIFECYCLE = {"active": "deleted = 0", "deleted": "deleted = 1", "all": "1"}


class InvalidPageToken(InvalidRequest):
    pass


def _experiment(row: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    return {
        "experiment_id": row["experiment_id"],
        "name": row["name"],
        "artifact_location": row["artifact_location"] or "",
        "lifecycle_stage": "deleted" if row["deleted"] else "active",
        "creation_time": row["creation_time"],
        "last_update_time": row["last_update_time"],
        "tags": tags,
    }


def experiments(client: Client, view: str = "active", name: str | None = None) -> list[dict[str, Any]]:
    where = [LIFECYCLE[view]]
    params: dict[str, Any] = {}
    if name is not None:
        where.append("name = {name:String}")
        params["name"] = name
    result = client.query(
        f"SELECT * FROM experiments_view WHERE {' AND '.join(where)} ORDER BY creation_time, experiment_id",
        parameters=params,
    )
    rows = list(result.named_results())
    tags = _grouped(
        client,
        "SELECT experiment_id, key, value FROM experiment_tags_view WHERE experiment_id IN {ids:Array(String)}",
        [r["experiment_id"] for r in rows],
    )
    return [_experiment(r, tags.get(r["experiment_id"], {})) for r in rows]


def experiment(client: Client, experiment_id: str) -> dict[str, Any] | None:
    found = experiment_without_tags(client, experiment_id)
    if found is None:
        return None
    tags = _grouped(
        client,
        "SELECT experiment_id, key, value FROM experiment_tags_view WHERE experiment_id IN {ids:Array(String)}",
        [experiment_id],
    )
    return found | {"tags": tags.get(experiment_id, {})}


def experiment_without_tags(client: Client, experiment_id: str) -> dict[str, Any] | None:
    """The experiment with its tags left empty: one read less, for what a write checks."""
    result = client.query(
        "SELECT * FROM experiments_view WHERE experiment_id = {id:String}", parameters={"id": experiment_id}
    )
    rows = list(result.named_results())
    return _experiment(rows[0], {}) if rows else None


def run_counts(client: Client, experiment_ids: list[str], view: str) -> dict[str, int]:
    """Runs per experiment, in the given lifecycle view."""
    rows = query_by_ids(
        client,
        f"SELECT experiment_id, count() FROM runs_view WHERE experiment_id IN {{ids:Array(String)}} "
        f"AND {LIFECYCLE[view]} GROUP BY experiment_id",
        experiment_ids,
    ).result_rows
    return {experiment_id: int(count) for experiment_id, count in rows}


# The keys used by an experiment's runs: param and tag keys from their states, metric keys from the
# summary (both ordered key-first, so DISTINCT reads little more than the keys).
_EXPERIMENT_KEYS = (
    "SELECT 'params', key FROM param_state WHERE run_id IN (SELECT run_id FROM runs_view WHERE {where}) GROUP BY key "
    "UNION ALL SELECT 'tags', key FROM run_tags_view WHERE run_id IN (SELECT run_id FROM runs_view WHERE {where}) "
    "GROUP BY key UNION ALL SELECT 'metrics', key FROM metric_summary "
    "WHERE run_id IN (SELECT run_id FROM runs_view WHERE {where}) GROUP BY key"
)


def experiment_keys(client: Client, experiment_id: str, view: str) -> dict[str, list[str]]:
    """The param, tag and metric keys any run of the experiment has, sorted."""
    where = f"experiment_id = {{id:String}} AND {LIFECYCLE[view]}"
    keys: dict[str, list[str]] = {"params": [], "tags": [], "metrics": []}
    for kind, key in client.query(_EXPERIMENT_KEYS.format(where=where), parameters={"id": experiment_id}).result_rows:
        keys[kind].append(key)
    return {kind: sorted(found) for kind, found in keys.items()}


def _grouped(client: Client, sql: str, ids: list[str]) -> dict[str, dict[str, str]]:
    """Key/value rows per id, for a query taking {ids:Array(String)}."""
    out: dict[str, dict[str, str]] = {}
    if ids:
        for owner, key, value in query_by_ids(client, sql, ids).result_rows:
            out.setdefault(owner, {})[key] = value
    return out


# A run's params, tags and latest metrics in one read of run_details (migration 005), ordered by run
# so a page of runs reads only their granules; deleted tags are left out.
_RUN_DATA = (
    "SELECT kind, run_id, key, param.3, tag.4, metric.1, metric.2, metric.3 FROM run_details FINAL "
    "WHERE run_id IN {ids:Array(String)} AND (kind != 1 OR tag.3 = 0)"
)
# Granules (64 rows) less than 16 apart are read through rather than sought one by one: a page of
# 1,000 of an experiment's 10,000 runs touches most granules, where seeking cost ~1.7x reading all of
# them; 100 runs of 100,000 are far apart and still sought.
_RUN_DATA_SETTINGS = {"merge_tree_min_rows_for_seek": 1024}
RunData = dict[str, dict[str, Any]]


def _run_data(client: Client, run_ids: list[str]) -> tuple[RunData, RunData, RunData]:
    """Per run: params, tags, and the latest point of each metric (MLflow's rule)."""
    data: tuple[RunData, RunData, RunData] = ({}, {}, {})
    if run_ids:
        rows = query_by_ids(client, _RUN_DATA, run_ids, settings=_RUN_DATA_SETTINGS).result_rows
        for kind, run_id, key, param, tag, step, timestamp, number in rows:
            if kind == 2:
                value = {"value": json_float(number), "timestamp": timestamp, "step": step}
            else:
                value = tag if kind == 1 else param
            data[kind].setdefault(run_id, {})[key] = value
    return data


# runs_view's columns, as with_details takes them (a search selects them from its alias).
RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "user_id",
    "start_time",
    "end_time",
    "status",
    "parent_run_id",
    "artifact_uri",
    "deleted",
)


def _runs(client: Client, where: str, params: dict[str, Any], limit: int, offset: int) -> list[dict[str, Any]]:
    result = client.query(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs_view WHERE {where} ORDER BY start_time DESC, run_id "
        "LIMIT {limit:UInt64} OFFSET {offset:UInt64}",
        parameters={**params, "limit": limit, "offset": offset},
    )
    return with_details(client, list(result.named_results()))


def with_details(client: Client, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs as the read API answers them, from runs_view rows: with their params, tags and metrics."""
    ids = [r["run_id"] for r in rows]
    params_by_run, tags_by_run, metrics_by_run = _run_data(client, ids)
    return [
        {
            "run_id": r["run_id"],
            "experiment_id": r["experiment_id"],
            "run_name": r["run_name"] or "",
            "user_id": r["user_id"],
            "status": r["status"],
            "start_time": r["start_time"],
            "end_time": r["end_time"],
            "parent_run_id": r["parent_run_id"],
            "artifact_uri": r["artifact_uri"] or "",
            "lifecycle_stage": "deleted" if r["deleted"] else "active",
            "params": params_by_run.get(r["run_id"], {}),
            "tags": tags_by_run.get(r["run_id"], {}),
            "metrics": metrics_by_run.get(r["run_id"], {}),
        }
        for r in rows
    ]


def run_experiments(client: Client, run_ids: list[str]) -> dict[str, str]:
    """The experiment of each run that exists."""
    rows = query_by_ids(
        client, "SELECT run_id, experiment_id FROM runs_view WHERE run_id IN {ids:Array(String)}", run_ids
    ).result_rows
    return {run_id: experiment_id for run_id, experiment_id in rows}


def run(client: Client, run_id: str) -> dict[str, Any] | None:
    found = _runs(client, "run_id = {run_id:String}", {"run_id": run_id}, 1, 0)
    return found[0] if found else None


def runs(
    client: Client, experiment_ids: list[str], view: str, max_results: int, page_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    offset = _decode_token(page_token, 1)[0] if page_token else 0
    found = _runs(
        client,
        f"experiment_id IN {{ids:Array(String)}} AND {LIFECYCLE[view]}",
        {"ids": experiment_ids},
        max_results + 1,
        offset,
    )
    more = len(found) > max_results
    return found[:max_results], (_encode_token([offset + max_results]) if more else None)


def _encode_token(values: list[int]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode()


def _decode_token(token: str, length: int) -> list[int]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except Exception as exc:
        raise InvalidPageToken("malformed page token") from exc
    if not (isinstance(values, list) and len(values) == length and all(type(v) is int for v in values)):
        raise InvalidPageToken("malformed page token")
    if any(v < 0 for v in values[-1:]):
        raise InvalidPageToken("malformed page token")
    return values


@dataclass
class HistoryPage:
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    ranks: np.ndarray
    next_page_token: str | None


_HISTORY = (
    "SELECT step, timestamp, value, rank FROM metrics FINAL "
    "WHERE run_id = {run_id:String} AND key = {key:String} AND step >= {step:Int64} "  # the sort key prunes
    "AND (step, timestamp, rank) >= ({step:Int64}, {timestamp:Int64}, {rank:UInt32}) "
    "ORDER BY step, timestamp, rank, value LIMIT {skip:UInt64}, {limit:UInt64}"
)
_FIRST = [-(2**63), -(2**63), 0, 0]


def metric_history(client: Client, run_id: str, key: str, max_results: int, page_token: str | None) -> HistoryPage:
    """Points in (step, timestamp, rank, value) order. The page token is the last point's
    (step, timestamp, rank) and how many points with exactly that triple were already returned."""
    step, timestamp, rank, skip = _decode_token(page_token, 4) if page_token else _FIRST
    table = client.query_arrow(
        _HISTORY,
        parameters={
            "run_id": run_id,
            "key": key,
            "step": step,
            "timestamp": timestamp,
            "rank": rank,
            "skip": skip,
            "limit": max_results + 1,  # one more tells whether a next page exists
        },
    )
    more = table.num_rows > max_results
    steps, timestamps, values, ranks = (table.column(i).to_numpy()[:max_results] for i in range(4))
    token = None
    if more:
        last = (steps[-1], timestamps[-1], ranks[-1])
        same = (steps == last[0]) & (timestamps == last[1]) & (ranks == last[2])
        ties = int(same.sum())
        if ties == len(steps) and (step, timestamp, rank) == tuple(int(x) for x in last):
            ties += skip  # the whole page continued the previous page's ties
        token = _encode_token([int(last[0]), int(last[1]), int(last[2]), ties])
    return HistoryPage(steps, timestamps, values, ranks, token)


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


def sampled_history(
    client: Client, run_ids: list[str], key: str, max_results: int, start: int | None, end: int | None
) -> list[tuple[str, int, int, float]]:
    """(run_id, step, timestamp, value) of each run's sampled points, as MLflow 3 samples them."""
    bounds = {"start": -(2**63), "end": 2**63 - 1} if start is None or end is None else {"start": start, "end": end}
    rows = client.query(_SAMPLED, parameters={"ids": run_ids, "key": key, "k": max_results, **bounds}).result_rows
    return [(str(r), int(s), int(t), float(v)) for r, s, t, v in rows]


def experiment_run_ids(client: Client, experiment_id: str, view: str) -> list[str]:
    result = client.query(
        f"SELECT run_id FROM runs_view WHERE experiment_id = {{id:String}} AND {LIFECYCLE[view]}",
        parameters={"id": experiment_id},
    )
    return [row[0] for row in result.result_rows]


def run_artifact_location(client: Client, run_id: str) -> tuple[str, str | None] | None:
    """The run's experiment and its artifact URI as recorded (its params, tags and metrics are not read)."""
    rows = client.query(
        "SELECT experiment_id, artifact_uri FROM runs_view WHERE run_id = {run_id:String}",
        parameters={"run_id": run_id},
    ).result_rows
    return (str(rows[0][0]), rows[0][1]) if rows else None
