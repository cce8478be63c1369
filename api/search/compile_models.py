"""A parsed logged-model search (MLflow 3) → one parameterised query over logged_models_view:
attributes, params and tags; IS [NOT] NULL for params and tags."""

from __future__ import annotations

from collections.abc import Sequence

from runstream.api.search.grammar import Clause, Order
from runstream.api.search.paging import decode_page_token
from runstream.api.search.sql import Params, Query, check_page, compare, page

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
# MLflow's default order: newest first; model_id breaks ties so pages never overlap.
_DEFAULT = [Order("attribute", "creation_timestamp", False)]
_TIE_BREAK = Order("attribute", "model_id", True)


def _condition(clause: Clause, bind: Params) -> str:
    if clause.kind == "attribute":
        return compare(_COLUMNS[clause.key], clause, bind)
    view, key = _VIEWS[clause.kind], bind(clause.key, "String")
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        negation = "NOT " if clause.comparator == "IS NULL" else ""
        return f"m.model_id {negation}IN (SELECT model_id FROM {view} WHERE key = {key})"
    return f"m.model_id IN (SELECT model_id FROM {view} WHERE key = {key} AND {compare('value', clause, bind)})"


def compile_model_search(
    clauses: Sequence[Clause],
    orders: Sequence[Order],
    experiment_ids: Sequence[str],
    max_results: int = 100,
    page_token: str | None = None,
) -> Query:
    """The page's model ids, in order: `SELECT m.model_id ...` (deleted models are never found)."""
    check_page("active", max_results)
    offset = decode_page_token(page_token)
    bind = Params()
    where = [
        "m.deleted = 0",
        f"m.experiment_id IN {bind(list(experiment_ids), 'Array(String)')}",
        *(_condition(c, bind) for c in clauses),
    ]
    orders = list(orders) or _DEFAULT
    if not any(o.key == "model_id" for o in orders):
        orders.append(_TIE_BREAK)
    order = ", ".join(f"{_COLUMNS[o.key]} {'ASC' if o.ascending else 'DESC'}" for o in orders)
    sql = f"SELECT m.model_id FROM logged_models_view AS m WHERE {' AND '.join(where)} ORDER BY {order}"
    return page(sql, bind, offset, max_results)
