"""The event log every stage shares: one interface (base.py: positions and their tokens), two backends
(Kafka; a durable local log for the embedded mode), the archive of old segments, and what this
process wrote (write_marks.py, for read-your-writes)."""
