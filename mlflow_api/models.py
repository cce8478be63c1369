"""MLflow 3's logged models, read side: as LoggedModel in protobuf JSON, and their search (the rows
are the store's, store/logged_models.py)."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field

from runstream.mlflow_api.shapes import key_values, metric
from runstream.store import logged_models as stored
from runstream.store.search.compile_models import Dataset, compile_model_search
from runstream.store.search.grammar import LOGGED_MODELS, Order, parse_filter, parse_order_by
from runstream.store.search.sql import MAX_RESULTS

# The statuses as stored (and as MLflow's filters name them) → LoggedModelStatus in protobuf JSON.
STATUS_JSON = {"PENDING": "LOGGED_MODEL_PENDING", "READY": "LOGGED_MODEL_READY", "FAILED": "LOGGED_MODEL_UPLOAD_FAILED"}


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
    ids, token = stored.searched(client, query)
    found = stored.logged_models(client, ids)
    return [model_json(found[i]) for i in ids if i in found], token
