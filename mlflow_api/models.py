"""MLflow 3's logged models, read side: get and search, answered from ClickHouse
(logged_models_view and its tag and param views, migrations/003; their metrics, migrations/006)."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field

from runstream.mlflow_api.shapes import key_values, metric
from runstream.store import queries
from runstream.store.search.compile_models import Dataset, compile_model_search
from runstream.store.search.grammar import LOGGED_MODELS, Order, parse_filter, parse_order_by
from runstream.store.search.paging import encode_page_token
from runstream.store.search.sql import MAX_RESULTS

# The statuses as stored (and as MLflow's filters name them) → LoggedModelStatus in protobuf JSON.
STATUS_JSON = {"PENDING": "LOGGED_MODEL_PENDING", "READY": "LOGGED_MODEL_READY", "FAILED": "LOGGED_MODEL_UPLOAD_FAILED"}


def model_experiments(client: Client, model_ids: list[str]) -> dict[str, str]:
    """The experiment of each logged model that exists."""
    rows = client.query(
        "SELECT model_id, experiment_id FROM logged_models_view WHERE model_id IN {ids:Array(String)}",
        parameters={"ids": model_ids},
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
    rows = client.query(
        "SELECT * FROM logged_models_view WHERE model_id IN {ids:Array(String)}", parameters={"ids": model_ids}
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
    metrics = client.query(_METRICS, parameters={"ids": list(found)}).named_results()
    for model in found.values():
        model["metrics"] = []
    for point in metrics:
        found[point["model_id"]]["metrics"].append(point)
    return found


def logged_model(client: Client, model_id: str) -> dict[str, Any] | None:
    return logged_models(client, [model_id]).get(model_id)


def model_json(m: dict[str, Any]) -> dict[str, Any]:
    """A row of logged_models → LoggedModel in protobuf JSON (unset fields left out)."""
    info = {
        "model_id": m["model_id"],
        "experiment_id": m["experiment_id"],
        "name": m["name"],
        "creation_timestamp_ms": m["creation_timestamp"],
        "last_updated_timestamp_ms": m["last_updated_timestamp"],
        "artifact_uri": m["artifact_uri"],
        "status": STATUS_JSON[m["status"]],
        "tags": key_values(m["tags"]),
    }
    optional = {k: m[k] for k in ("model_type", "source_run_id", "status_message") if m[k] is not None}
    return {"info": info | optional, "data": {"params": key_values(m["params"]), "metrics": _metrics(m["metrics"])}}


def _metrics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A model's metric points as MLflow's Metric (no dataset fields when none was named)."""
    return [
        {
            **metric(r["key"], r["value"], r["timestamp"], r["step"]),
            **{k: r[k] for k in ("dataset_name", "dataset_digest") if r[k]},
            "model_id": r["model_id"],
            "run_id": r["run_id"],
        }
        for r in rows
    ]


class DatasetRef(BaseModel):
    dataset_name: str = Field(min_length=1)
    dataset_digest: str | None = None

    def dataset(self) -> Dataset:
        return Dataset(self.dataset_name, self.dataset_digest)


class OrderBy(BaseModel):
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None  # ordering by a metric: its points on this dataset
    dataset_digest: str | None = None

    def dataset(self) -> Dataset | None:
        return Dataset(self.dataset_name, self.dataset_digest) if self.dataset_name else None


class SearchModels(BaseModel):
    experiment_ids: list[str] = Field(min_length=1)
    filter: str | None = None
    datasets: list[DatasetRef] = Field(default_factory=list)
    max_results: int = Field(100, ge=1, le=MAX_RESULTS)
    order_by: list[OrderBy] = Field(default_factory=list)
    page_token: str | None = None


def search_models(client: Client, body: SearchModels) -> tuple[list[dict[str, Any]], str | None]:
    orders = [
        (Order(o.kind, o.key, item.ascending), item.dataset())
        for item in body.order_by
        for o in parse_order_by([item.field_name], LOGGED_MODELS)
    ]
    query = compile_model_search(
        parse_filter(body.filter, LOGGED_MODELS),
        orders,
        body.experiment_ids,
        body.max_results,
        body.page_token,
        [d.dataset() for d in body.datasets],
    )
    ids = [row[0] for row in client.query(query.sql, parameters=query.parameters).result_rows]
    token = encode_page_token(query.offset + query.max_results) if len(ids) > query.max_results else None
    found = logged_models(client, ids[: query.max_results])
    return [model_json(found[i]) for i in ids[: query.max_results] if i in found], token
