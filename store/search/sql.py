"""What every compiled search shares: numbered parameters, comparisons, the page's LIMIT/OFFSET."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runstream.store.search.grammar import Clause
from runstream.store.search.lexer import InvalidSearch

MAX_RESULTS = 50_000
LIFECYCLE: dict[str, str] = {"active": "{alias}.deleted = 0", "deleted": "{alias}.deleted = 1", "all": "1"}


@dataclass(frozen=True)
class Query:
    sql: str
    parameters: dict[str, Any]
    offset: int  # of the page's first row
    max_results: int  # the query fetches one more row, to know whether another page follows


class Params:
    """Numbered placeholders, assigned in the order the compiler asks for them: the SQL text depends
    on how many values a search has, never on what they are."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any, type_: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"


def _like(pattern: str) -> str:
    # ClickHouse's LIKE treats a backslash as an escape; MLflow's LIKE does not.
    return pattern.replace("\\", "\\\\")


def compare(column: str, clause: Clause, bind: Params) -> str:
    """`column <comparator> <parameter>` for a clause that has a value."""
    op, value = clause.comparator, clause.value
    if isinstance(value, tuple):
        return f"{column} {op} {bind(list(value), 'Array(String)')}"
    if isinstance(value, float):
        return f"{column} {op} {bind(value, 'Float64')}"
    if isinstance(value, str):
        return f"{column} {op} {bind(_like(value) if op in ('LIKE', 'ILIKE') else value, 'String')}"
    raise AssertionError(f"no value to compare for {clause}")


def check_page(view: str, max_results: int) -> None:
    if view not in LIFECYCLE:
        raise InvalidSearch(f"view must be one of {', '.join(LIFECYCLE)}, not {view!r}")
    if not 1 <= max_results <= MAX_RESULTS:
        raise InvalidSearch(f"max_results must be between 1 and {MAX_RESULTS}")


def page(sql: str, bind: Params, offset: int, max_results: int, settings: str = "") -> Query:
    sql += " LIMIT {limit:UInt64} OFFSET {offset:UInt64}" + settings
    return Query(sql, {**bind.values, "limit": max_results + 1, "offset": offset}, offset, max_results)
