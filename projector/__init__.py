"""Log → ClickHouse, as a chain of steps (projector.py composes them): decode, dedup, project,
batch, insert column-wise, then commit. Owns the DDL (migrations/)."""
