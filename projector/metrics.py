"""The projector's Prometheus instruments: what it consumed and wrote, how large and slow its batches
were, what it dead-lettered, and how far behind the log it is."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("runstream_projector_events", "Log messages projected (dead letters included)")
POINTS = Counter("runstream_projector_points", "Metric points written")
DEAD_LETTERS = Counter("runstream_projector_dead_letters", "Messages set aside with a reason (dead_letters table)")
BATCH_MESSAGES = Histogram(
    "runstream_projector_batch_messages", "Messages per flushed batch", buckets=(1, 10, 100, 1_000, 10_000, 100_000)
)
BATCH_POINTS = Histogram(
    "runstream_projector_batch_points", "Metric points per flushed batch", buckets=(0, 1_000, 10_000, 100_000, 1e6, 4e6)
)
WRITE_SECONDS = Histogram("runstream_projector_write_seconds", "Time to insert one batch into every table")
WRITE_RETRIES = Counter("runstream_projector_write_retries", "Batch inserts retried after a ClickHouse error")
LAG = Gauge("runstream_projector_lag_messages", "Messages in the log beyond the projector's position", ["partition"])
COMMIT_FAILURES = Counter(
    "runstream_projector_commit_failures", "Offset commits the log refused after a batch was written (a rebalance)"
)
LOST_BATCHES = Counter(
    "runstream_projector_lost_batches", "Unwritten batches dropped because their partitions were lost to the group"
)
