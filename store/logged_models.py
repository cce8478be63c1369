"""MLflow 3's logged models as the tables hold them (logged_models_view and its tag and param views,
migrations/003; their metrics, migrations/006): by id, with their tags, params and metric points,
and the ids a compiled search finds."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.store import queries
from runstream.store.id_sets import query_by_ids
from runstream.store.search.paging import encode_page_token
from runstream.store.search.sql import Query


def model_experiments(client: Client, model_ids: list[str]) -> dict[str, str]:
    """The experiment of each logged model that exists."""
    rows = query_by_ids(
        client,
        "SELECT model_id, experiment_id FROM logged_models_view WHERE model_id IN {ids:Array(String)}",
        model_ids,
    ).result_rows
    return {model_id: experiment_id for model_id, experiment_id in rows}


_METRICS = (
    "SELECT model_id, run_id, key, value, timestamp, step, dataset_name, dataset_digest "
    "FROM logged_model_metrics FINAL WHERE model_id IN {ids:Array(String)} "
    "ORDER BY model_id, key, step, timestamp, run_id, dataset_name, dataset_digest"
)


def logged_models(client: Client, model_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Models by id (deleted ones too), each with its tags and params."""
    if not model_ids:
        return {}
    rows = query_by_ids(
        client, "SELECT * FROM logged_models_view WHERE model_id IN {ids:Array(String)}", model_ids
    ).named_results()
    found = {r["model_id"]: r for r in rows}
    for kind in ("tags", "params"):
        grouped = queries._grouped(
            client,
            f"SELECT model_id, key, value FROM logged_model_{kind}_view WHERE model_id IN {{ids:Array(String)}}",
            list(found),
        )
        for model_id, model in found.items():
            model[kind] = grouped.get(model_id, {})
    metrics = query_by_ids(client, _METRICS, list(found)).named_results()
    for model in found.values():
        model["metrics"] = []
    for point in metrics:
        found[point["model_id"]]["metrics"].append(point)
    return found


def logged_model(client: Client, model_id: str) -> dict[str, Any] | None:
    return logged_models(client, [model_id]).get(model_id)


def searched(client: Client, query: Query) -> tuple[list[str], str | None]:
    """The ids of a compiled search's page, and the next page's token if there is one."""
    ids = [row[0] for row in client.query(query.sql, parameters=query.parameters).result_rows]
    token = encode_page_token(query.offset + query.max_results) if len(ids) > query.max_results else None
    return ids[: query.max_results], token
