"""ClickHouse → answers: runstream's own read API (runs, series, search, artifacts, the dashboard), over
the read store (store/)."""
