"""Run and experiment search: parse, compile, run the one query, then fetch the page's details
with the read API's own helpers, so a found run looks exactly like GET /runs/{id}."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.store import queries
from runstream.store.search.compile import compile_run_count, compile_run_search
from runstream.store.search.compile_experiments import compile_experiment_search
from runstream.store.search.grammar import EXPERIMENTS, RUNS, parse_filter, parse_order_by
from runstream.store.search.paging import encode_page_token
from runstream.store.search.sql import Query

Page = tuple[list[dict[str, Any]], str | None]


def _next_token(query: Query, found: int) -> str | None:
    return encode_page_token(query.offset + query.max_results) if found > query.max_results else None


def run_search_query(
    experiment_ids: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str] | None,
    view: str,
    max_results: int,
    page_token: str | None,
    count: bool = False,
) -> Query:
    """The compiled query alone (raises InvalidSearch); useful to inspect or explain a search."""
    return compile_run_search(
        parse_filter(filter_string, RUNS),
        parse_order_by(order_by, RUNS),
        experiment_ids,
        view,
        max_results,
        page_token,
        count,
    )


def search_run_ids(client: Client, query: Query) -> tuple[list[str], str | None]:
    ids = [row[0] for row in client.query(query.sql, parameters=query.parameters).result_rows]
    return ids[: query.max_results], _next_token(query, len(ids))


def search_runs(
    client: Client,
    experiment_ids: Sequence[str],
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    view: str = "active",
    max_results: int = 1000,
    page_token: str | None = None,
) -> Page:
    """One page of runs (as api.queries returns them) and the next page's token, or None."""
    found, token, _ = search_runs_counted(
        client, experiment_ids, filter_string, order_by, view, max_results, page_token
    )
    return found, token


def search_runs_counted(
    client: Client,
    experiment_ids: Sequence[str],
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    view: str = "active",
    max_results: int = 1000,
    page_token: str | None = None,
    count: bool = False,
) -> tuple[list[dict[str, Any]], str | None, int | None]:
    """search_runs, and with `count` how many runs match over all pages (else None)."""
    query = run_search_query(experiment_ids, filter_string, order_by, view, max_results, page_token, count)
    rows = list(client.query(query.sql, parameters=query.parameters).named_results())
    total = None
    if count and rows:
        total = int(rows[0]["total_count"])  # every row carries it
    elif count:  # no row to carry it: nothing matches, or the page is past the end
        total = 0 if query.offset == 0 else count_runs(client, experiment_ids, filter_string, view)
    token = _next_token(query, len(rows))
    return queries.with_details(client, rows[: query.max_results]), token, total


def count_runs(client: Client, experiment_ids: Sequence[str], filter_string: str | None, view: str = "active") -> int:
    """How many runs a search matches, over all its pages."""
    query = compile_run_count(parse_filter(filter_string, RUNS), experiment_ids, view)
    return int(client.query(query.sql, parameters=query.parameters).result_rows[0][0])


def search_experiments(
    client: Client,
    view: str = "active",
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> Page:
    """One page of experiments (as api.queries returns them) and the next page's token, or None."""
    query = compile_experiment_search(
        parse_filter(filter_string, EXPERIMENTS),
        parse_order_by(order_by, EXPERIMENTS),
        view,
        max_results,
        page_token,
    )
    rows = list(client.query(query.sql, parameters=query.parameters).named_results())
    token = _next_token(query, len(rows))
    rows = rows[: query.max_results]
    tags = queries._grouped(
        client,
        "SELECT experiment_id, key, value FROM experiment_tags_view WHERE experiment_id IN {ids:Array(String)}",
        [r["experiment_id"] for r in rows],
    )
    return [queries._experiment(r, tags.get(r["experiment_id"], {})) for r in rows], token
