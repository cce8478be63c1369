"""A parsed logged-model search (MLflow 3) → one parameterised query over logged_models_view:
attributes, params, tags and metrics; IS [NOT] NULL for params and tags. As MLflow's server: a
metric clause holds when any of the model's points of that metric does (on the request's datasets,
if it names any), and ordering by a metric uses each model's latest point of it (by timestamp, then
step; models without one come last)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runstream.store.search.grammar import Clause, Order
from runstream.store.search.paging import decode_page_token
from runstream.store.search.sql import Params, Query, check_page, compare, page

_COLUMNS = {
    "name": "m.name",
    "model_id": "m.model_id",
    "model_type": "m.model_type",
    "status": "m.status",
    "source_run_id": "m.source_run_id",
    "creation_timestamp": "m.creation_timestamp",
    "last_updated_timestamp": "m.last_updated_timestamp",
}
_VIEWS = {"param": "logged_model_params_view", "tag": "logged_model_tags_view"}
# MLflow's order without one, and its tie-breaks after any: newest first, then by id (pages never overlap).
_NEWEST_FIRST = Order("attribute", "creation_timestamp", False)
_BY_ID = Order("attribute", "model_id", True)


@dataclass(frozen=True)
class Dataset:
    """A dataset a model's metrics are asked on: by name, and digest if given."""

    name: str
    digest: str | None = None


def _on(datasets: Sequence[Dataset], bind: Params) -> str:
    """` AND (...)` keeping metric points on one of these datasets, or nothing for none."""
    if not datasets:
        return ""
    each = [
        f"(dataset_name = {bind(d.name, 'String')}"
        + (f" AND dataset_digest = {bind(d.digest, 'String')})" if d.digest is not None else ")")
        for d in datasets
    ]
    return f" AND ({' OR '.join(each)})"


def _metric_points(key: str, datasets: Sequence[Dataset], bind: Params) -> str:
    return f"FROM logged_model_metrics FINAL WHERE key = {bind(key, 'String')}{_on(datasets, bind)}"


def _condition(clause: Clause, bind: Params, datasets: Sequence[Dataset]) -> str:
    if clause.kind == "attribute":
        return compare(_COLUMNS[clause.key], clause, bind)
    if clause.kind == "metric":
        points = _metric_points(clause.key, datasets, bind)
        return f"m.model_id IN (SELECT model_id {points} AND {compare('value', clause, bind)})"
    view, key = _VIEWS[clause.kind], bind(clause.key, "String")
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        negation = "NOT " if clause.comparator == "IS NULL" else ""
        return f"m.model_id {negation}IN (SELECT model_id FROM {view} WHERE key = {key})"
    return f"m.model_id IN (SELECT model_id FROM {view} WHERE key = {key} AND {compare('value', clause, bind)})"


def compile_model_search(
    clauses: Sequence[Clause],
    orders: Sequence[tuple[Order, Dataset | None]],
    experiment_ids: Sequence[str],
    max_results: int = 100,
    page_token: str | None = None,
    datasets: Sequence[Dataset] = (),
) -> Query:
    """The page's model ids, in order: `SELECT m.model_id ...` (deleted models are never found).
    Each order may name the dataset of its metric; `datasets` narrows the metric clauses, or, with
    none, keeps the models with any metric on them."""
    check_page("active", max_results)
    offset = decode_page_token(page_token)
    bind = Params()
    where = [
        "m.deleted = 0",
        f"m.experiment_id IN {bind(list(experiment_ids), 'Array(String)')}",
        *(_condition(c, bind, datasets) for c in clauses),
    ]
    if datasets and not any(c.kind == "metric" for c in clauses):
        where.append(f"m.model_id IN (SELECT model_id FROM logged_model_metrics FINAL WHERE 1{_on(datasets, bind)})")
    orders = list(orders) or [(_NEWEST_FIRST, None)]
    joins: list[str] = []
    keys: list[str] = []
    for o, dataset in orders:
        direction = "ASC" if o.ascending else "DESC"
        if o.kind != "metric":
            keys.append(f"{_COLUMNS[o.key]} {direction}")
            continue
        n = len(joins)  # the model's latest point of the metric; `has` is 0 where a model has none
        points = _metric_points(o.key, [dataset] if dataset else [], bind)
        latest = f"SELECT model_id, argMin(value, (-timestamp, -step, run_id)) AS v, 1 AS has {points}"
        joins.append(f" LEFT JOIN ({latest} GROUP BY model_id) AS o{n} ON o{n}.model_id = m.model_id")
        keys += [f"o{n}.has DESC", f"o{n}.v {direction}"]
    for tie_break in (_NEWEST_FIRST, _BY_ID):
        if not any(o.kind == "attribute" and o.key == tie_break.key for o, _ in orders):
            keys.append(f"{_COLUMNS[tie_break.key]} {'ASC' if tie_break.ascending else 'DESC'}")
    sql = (
        f"SELECT m.model_id FROM logged_models_view AS m{''.join(joins)} "
        f"WHERE {' AND '.join(where)} ORDER BY {', '.join(keys)}"
    )
    return page(sql, bind, offset, max_results)
