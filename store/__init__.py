"""The read store: every ClickHouse SELECT the server makes, grouped by what it reads, and what the
projector has applied (for read-your-writes)."""
