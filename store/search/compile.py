"""A parsed run search → one parameterised ClickHouse query returning the page's runs in order
(runs_view's columns, and on request how many runs match over all pages).

Every user value (keys included) travels as a numbered query parameter, so the SQL text depends
only on the search's structure: which clause kinds and comparators, in which order, and which metric
keys it names more than once. Semantics
follow MLflow's SQL store:
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

__all__ = ["MAX_RESULTS", "Query", "compile_run_count", "compile_run_search"]

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
_VALUES = {"param": "run_params_view", "tag": "run_tags_view"}
# Params are never deleted, so any state row says a run has one (no fold needed).
_PRESENT = {"param": "param_state", "tag": "run_tags_view"}


class _Metrics:
    """Every metric the search filters or orders by: one join per key on metric_summary, whose
    key-first order makes each a read of one key's range (a key both filtered and ordered by, the
    common search, is joined once: a second join of the same 100k rows was ~30% of its time).
    Reference i is alias m{i}, so the text follows the structure."""

    def __init__(self, bind: Params) -> None:
        self.bind = bind
        self._aliases: dict[str, str] = {}
        self._sources: list[str] = []
        self._filtered: set[str] = set()

    def ref(self, key: str, filtered: bool) -> str:
        """The latest value of `key` (MLflow's rule); NULL for runs without it unless a clause
        filters on it (an inner join drops those runs)."""
        alias = self._aliases.get(key)
        if alias is None:
            alias = self._aliases[key] = f"m{len(self._sources)}"
            self._sources.append(
                f"SELECT run_id, latest.3 AS v FROM metric_summary FINAL WHERE key = {self.bind(key, 'String')}"
            )
        if filtered:
            self._filtered.add(alias)
        return f"{alias}.v"

    def join(self) -> list[str]:
        joins = []
        for i, source in enumerate(self._sources):
            alias = f"m{i}"
            kind = "INNER" if alias in self._filtered else "LEFT"
            joins.append(f"{kind} JOIN ({source}) AS {alias} ON {alias}.run_id = r.run_id")
        return joins


def _condition(clause: Clause, bind: Params, metrics: _Metrics) -> str:
    if clause.kind == "attribute":
        return compare(_COLUMNS[clause.key], clause, bind)
    if clause.kind == "metric":
        return compare(metrics.ref(clause.key, filtered=True), clause, bind)  # NULL (no such metric) never matches
    if clause.kind == "dataset":
        has_context = f"mapContains(tags, '{_CONTEXT}') AND " if clause.key == "context" else ""
        where = has_context + compare(_DATASET_COLUMNS[clause.key], clause, bind)
        return f"r.run_id IN (SELECT run_id FROM run_inputs WHERE {where})"
    key = bind(clause.key, "String")
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        negation = "NOT " if clause.comparator == "IS NULL" else ""
        return f"r.run_id {negation}IN (SELECT run_id FROM {_PRESENT[clause.kind]} WHERE key = {key})"
    where = compare("value", clause, bind)
    return f"r.run_id IN (SELECT run_id FROM {_VALUES[clause.kind]} WHERE key = {key} AND {where})"


def _order(orders: Sequence[Order], bind: Params, metrics: _Metrics) -> tuple[list[str], list[str]]:
    """LEFT JOINs bringing each ordered param/tag in, and the ORDER BY terms."""
    joins: list[str] = []
    terms: list[str] = []
    for i, order in enumerate(orders):
        direction = "ASC" if order.ascending else "DESC"
        if order.kind == "attribute":
            column = _COLUMNS[order.key]
            if order.key in ("start_time", "end_time"):
                terms.append(f"isNull({column})")  # runs without an end time last
            terms.append(f"{column} {direction}")
        elif order.kind == "metric":
            value = metrics.ref(order.key, filtered=False)
            terms += [f"multiIf(isNull({value}), 2, isNaN({value}), 1, 0)", f"{value} {direction}"]
        else:
            key, alias = bind(order.key, "String"), f"o{i}"
            source = f"SELECT run_id, value FROM {_VALUES[order.kind]} WHERE key = {key}"
            joins.append(f"LEFT JOIN ({source}) AS {alias} ON {alias}.run_id = r.run_id")
            terms += [f"isNull({alias}.value)", f"{alias}.value {direction}"]
    if not any(o.kind == "attribute" and o.key == "start_time" for o in orders):
        terms.append("r.start_time DESC")
    terms.append("r.run_id ASC")
    return joins, terms


def _where(
    clauses: Sequence[Clause], experiment_ids: Sequence[str], view: str, bind: Params, metrics: _Metrics
) -> list[str]:
    return [
        f"r.experiment_id IN {bind(list(experiment_ids), 'Array(String)')}",
        LIFECYCLE[view].format(alias="r"),
        *(_condition(c, bind, metrics) for c in clauses),
    ]


def compile_run_count(clauses: Sequence[Clause], experiment_ids: Sequence[str], view: str = "active") -> Query:
    """How many runs match: `SELECT count() ...` (what a table needs to size its scroll range)."""
    check_page(view, 1)
    bind = Params()
    metrics = _Metrics(bind)
    where = _where(clauses, experiment_ids, view, bind, metrics)
    sql = " ".join(["SELECT count() FROM runs_view AS r", *metrics.join(), "WHERE", " AND ".join(where)])
    return Query(sql + " SETTINGS join_use_nulls = 1", bind.values, 0, 1)


# The page's runs come with its ids: a second lookup by id would read every granule of runs_view's
# table again for 100 scattered ids.
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
    metrics = _Metrics(bind)
    where = _where(clauses, experiment_ids, view, bind, metrics)
    joins, terms = _order(orders, bind, metrics)
    sql = " ".join(
        [
            _SELECT + (_COUNT if count else ""),
            "FROM runs_view AS r",
            *metrics.join(),
            *joins,
            "WHERE",
            " AND ".join(where),
            "ORDER BY",
            ", ".join(terms),
        ]
    )
    # Unmatched LEFT JOIN rows must read as NULL (a missing key), not as '' or 0.
    return page(sql, bind, offset, max_results, settings=" SETTINGS join_use_nulls = 1")
