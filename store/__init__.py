"""The read store: every read of the data the server makes (the ClickHouse SELECTs), grouped by what it
reads, and what the projector has applied (for read-your-writes). Only bookkeeping stays outside: the
projector's own tables (migrations, pauses, replay counts, retention) and ClickHouse asked about itself."""
