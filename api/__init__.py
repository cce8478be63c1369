"""ClickHouse → answers: the read API and its Python client."""
