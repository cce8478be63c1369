"""A parsed run search → one parameterised ClickHouse query over run_search (migrations/014), one row
per run, returning the page's runs in order (runs_view's columns, and on request how many runs match
over all pages).

Every user value travels as a numbered query parameter. A key names a path of the run's params,
tags or metrics object, and a path is read as a column only when the query text names it: it is
written `k` + the key's UTF-8 in hex, so the text holds no character of the user's, and depends only
on the search's structure and keys. Semantics follow MLflow's SQL store:
- a metric, param, tag or dataset clause matches only runs that have that key (even for !=);
  IS NULL / IS NOT NULL test presence (params and tags only);
- metrics compare their latest value; NaN fails every comparison except != (IEEE, as MLflow 3.x);
- LIKE / ILIKE: % and _ are the only wildcards, a backslash is literal;
- string attributes compare as shown: a run without a name or artifact URI has '';
- a dataset clause matches a run if any of its dataset inputs matches;
- order_by puts runs without the key last in either direction (NaN metrics just before them),
  then start_time DESC (unless ordered by it), then run_id.
"""

from __future__ import annotations

from collections.abc import Sequence

from runstream.store.queries import RUN_COLUMNS
from runstream.store.search.grammar import Clause, Order
from runstream.store.search.paging import decode_page_token
from runstream.store.search.sql import LIFECYCLE, MAX_RESULTS, Params, Query, check_page, compare, page

__all__ = ["MAX_RESULTS", "Query", "compile_run_count", "compile_run_search", "key_path"]

_COLUMNS = {
    "run_id": "r.run_id",
    "run_name": "coalesce(r.run_name, '')",
    "status": "r.status",
    "user_id": "r.user_id",
    "artifact_uri": "coalesce(r.artifact_uri, '')",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
}
_CONTEXT = "mlflow.data.context"  # the dataset input tag MLflow's datasets.context searches
_DATASET_COLUMNS = {"name": "name", "digest": "digest", "context": f"tags['{_CONTEXT}']"}
_OBJECTS = {"metric": "metrics", "param": "params", "tag": "tags"}
_FROM = "FROM run_search AS r FINAL"


def key_path(kind: str, key: str) -> str:
    """The run's value of a param, tag or metric key: a Nullable(String), NULL where the run has none."""
    return f"r.{_OBJECTS[kind]}.k{key.encode().hex().upper()}.:String"


def _value(kind: str, key: str) -> str:
    # Metric values are stored in their shortest round-trip text (NaN and infinities included).
    path = key_path(kind, key)
    return f"toFloat64OrNull({path})" if kind == "metric" else path


def _condition(clause: Clause, bind: Params) -> str:
    if clause.kind == "attribute":
        return compare(_COLUMNS[clause.key], clause, bind)
    if clause.kind == "dataset":
        has_context = f"mapContains(tags, '{_CONTEXT}') AND " if clause.key == "context" else ""
        where = has_context + compare(_DATASET_COLUMNS[clause.key], clause, bind)
        return f"r.run_id IN (SELECT run_id FROM run_inputs WHERE {where})"
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        return f"{key_path(clause.kind, clause.key)} {clause.comparator}"
    return compare(_value(clause.kind, clause.key), clause, bind)  # NULL (no such key) never matches


def _order(orders: Sequence[Order]) -> list[str]:
    """The ORDER BY terms."""
    terms: list[str] = []
    for order in orders:
        direction = "ASC" if order.ascending else "DESC"
        if order.kind == "attribute":
            column = _COLUMNS[order.key]
            if order.key in ("start_time", "end_time"):
                terms.append(f"isNull({column})")  # runs without an end time last
            terms.append(f"{column} {direction}")
        else:
            value = _value(order.kind, order.key)
            missing = f"isNull({value})"
            if order.kind == "metric":  # NaN just before the runs without the key
                missing = f"multiIf({missing}, 2, isNaN({value}), 1, 0)"
            terms += [missing, f"{value} {direction}"]
    if not any(o.kind == "attribute" and o.key == "start_time" for o in orders):
        terms.append("r.start_time DESC")
    terms.append("r.run_id ASC")
    return terms


def _where(clauses: Sequence[Clause], experiment_ids: Sequence[str], view: str, bind: Params) -> str:
    return " AND ".join(
        [
            f"r.experiment_id IN {bind(list(experiment_ids), 'Array(String)')}",
            LIFECYCLE[view].format(alias="r"),
            *(_condition(c, bind) for c in clauses),
        ]
    )


def compile_run_count(clauses: Sequence[Clause], experiment_ids: Sequence[str], view: str = "active") -> Query:
    """How many runs match: `SELECT count() ...` (what a table needs to size its scroll range)."""
    check_page(view, 1)
    bind = Params()
    where = _where(clauses, experiment_ids, view, bind)
    return Query(f"SELECT count() {_FROM} WHERE {where}", bind.values, 0, 1)


_SELECT = "SELECT " + ", ".join(f"r.{c} AS {c}" for c in RUN_COLUMNS)
# The match count alongside (a window over the matched rows, before LIMIT), cheaper than a query of its own.
_COUNT = ", count() OVER () AS total_count"


def compile_run_search(
    clauses: Sequence[Clause],
    orders: Sequence[Order],
    experiment_ids: Sequence[str],
    view: str = "active",
    max_results: int = 1000,
    page_token: str | None = None,
    count: bool = False,
) -> Query:
    """The page's runs, in order: `SELECT run_id, experiment_id, ... [, total_count] ...` (one row more
    than max_results)."""
    check_page(view, max_results)
    offset = decode_page_token(page_token)
    bind = Params()
    where = _where(clauses, experiment_ids, view, bind)
    select = _SELECT + (_COUNT if count else "")
    return page(f"{select} {_FROM} WHERE {where} ORDER BY {', '.join(_order(orders))}", bind, offset, max_results)
