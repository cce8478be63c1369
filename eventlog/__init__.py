"""The event log: one interface, two backends (Kafka; a durable local log for the embedded mode)."""
