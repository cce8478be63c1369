"""MLflow's search grammar compiled to parameterised ClickHouse SQL (runs and experiments)."""

from runstream.store.search.grammar import Clause, Order, parse_filter, parse_order_by
from runstream.store.search.lexer import InvalidSearch

__all__ = ["Clause", "InvalidSearch", "Order", "parse_filter", "parse_order_by"]
