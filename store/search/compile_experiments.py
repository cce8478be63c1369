"""A parsed experiment search → one parameterised query over experiments_view (MLflow's rules:
name, experiment_id, creation_time, last_update_time, tags; IS [NOT] NULL for tags only)."""

from __future__ import annotations

from collections.abc import Sequence

from runstream.store.search.grammar import Clause, Order
from runstream.store.search.paging import decode_page_token
from runstream.store.search.sql import LIFECYCLE, Params, Query, check_page, compare, page

_COLUMNS = {
    "name": "e.name",
    "experiment_id": "e.experiment_id",
    "creation_time": "e.creation_time",
    "last_update_time": "e.last_update_time",
}
# MLflow's default order, and its tie-breaker when experiment_id is not ordered: experiment_id DESC.
_DEFAULT = [Order("attribute", "creation_time", False), Order("attribute", "experiment_id", True)]
_TIE_BREAK = Order("attribute", "experiment_id", False)


def _condition(clause: Clause, bind: Params) -> str:
    if clause.kind == "attribute":
        return compare(_COLUMNS[clause.key], clause, bind)
    key = bind(clause.key, "String")
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        negation = "NOT " if clause.comparator == "IS NULL" else ""
        return f"e.experiment_id {negation}IN (SELECT experiment_id FROM experiment_tags_view WHERE key = {key})"
    where = compare("value", clause, bind)
    return f"e.experiment_id IN (SELECT experiment_id FROM experiment_tags_view WHERE key = {key} AND {where})"


def _order(orders: Sequence[Order]) -> list[str]:
    orders = list(orders) or _DEFAULT
    if not any(o.key == "experiment_id" for o in orders):
        orders.append(_TIE_BREAK)
    terms: list[str] = []
    for order in orders:
        direction = "ASC" if order.ascending else "DESC"
        if order.key == "experiment_id":  # ids are decimal numbers (MLflow orders them as integers)
            terms.append(f"length(e.experiment_id) {direction}")
        terms.append(f"{_COLUMNS[order.key]} {direction}")
    return terms


def compile_experiment_search(
    clauses: Sequence[Clause],
    orders: Sequence[Order],
    view: str = "active",
    max_results: int = 1000,
    page_token: str | None = None,
) -> Query:
    """The page's experiments_view rows, in order: `SELECT e.* ...`."""
    check_page(view, max_results)
    offset = decode_page_token(page_token)
    bind = Params()
    where = [LIFECYCLE[view].format(alias="e"), *(_condition(c, bind) for c in clauses)]
    sql = f"SELECT e.* FROM experiments_view AS e WHERE {' AND '.join(where)} ORDER BY {', '.join(_order(orders))}"
    return page(sql, bind, offset, max_results)
