"""Log → ClickHouse: consume, decode, batch, insert column-wise, then commit. Owns the DDL."""
