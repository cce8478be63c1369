"""The chain's batching step: what a lane read since its last write. Rows per table, metric points as
numpy columns (with the metric tables that still need them), and the log positions covered. Metric
points stay columns from the message bytes to the Arrow tables that are inserted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from runstream.eventlog.base import LogMessage, Positions
from runstream.projector.decode import Event
from runstream.projector.dedup import METRIC_TABLES
from runstream.projector.points import Points
from runstream.projector.registry_rows import Rows
from runstream.schemas.events import MetricColumns
from runstream.store.tables import EVENT_TABLES

_BUILDING = threading.Lock()


@dataclass
class Batch:
    """Everything read since the last flush, grouped by destination table."""

    consumer_group: str
    rows: Rows = field(default_factory=lambda: {table: [] for table in EVENT_TABLES})
    # columns, partition, offset, and per table of METRIC_TABLES whether it still needs the points
    metrics: list[tuple[MetricColumns, int, int, tuple[bool, ...]]] = field(default_factory=list)
    metric_points: int = 0
    metric_event_ids: list[bytes] = field(default_factory=list)  # first seen in this batch (dedup)
    messages: int = 0
    next_offsets: Positions = field(default_factory=dict)
    first_offsets: Positions = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _tables: dict[str, pa.Table] | None = None

    def covers(self, message: LogMessage) -> None:
        """The message is this batch's, whatever becomes of it: its offset is committed with the batch."""
        self.messages += 1
        self.next_offsets[message.partition] = message.offset + 1
        self.first_offsets.setdefault(message.partition, message.offset)

    @property
    def token(self) -> str:
        """The log positions this batch covers: a retry of its inserts carries the same."""
        spans = (f"{p}:{self.first_offsets[p]}-{end}" for p, end in sorted(self.next_offsets.items()))
        return f"{self.consumer_group}/{','.join(spans)}"

    def dead_letter(self, message: LogMessage, reason: str) -> None:
        self.rows["dead_letters"].append(
            [datetime.now(UTC), self.consumer_group, message.partition, message.offset, reason, message.value]
        )

    def add_points(self, columns: MetricColumns, event: Event, needed: tuple[bool, ...]) -> None:
        if any(needed):
            self.metrics.append((columns, event.partition, event.offset, needed))
            self.metric_points += len(columns)

    def metric_tables(self) -> dict[str, pa.Table]:
        """The points each metric table still needs, as Arrow tables (points, rollup, summary). Built
        once, one batch at a time in the process, and then the messages' columns are let go: a
        retry inserts the same tables, and the lanes' batches never hold their columns twice or
        build at once (bench.backlog: the peaks of memory a backlog reaches)."""
        with _BUILDING:
            if self._tables is None:
                self._tables = self._build_metric_tables()
                self.metrics = []
        return self._tables

    def _build_metric_tables(self) -> dict[str, pa.Table]:
        out = {}
        built: dict[tuple[int, ...], Points] = {}  # tables that need the same messages share their points
        for t, table in enumerate(METRIC_TABLES):
            chosen = tuple(i for i, (*_, needed) in enumerate(self.metrics) if needed[t])
            if chosen:
                if chosen not in built:
                    built[chosen] = _points([self.metrics[i][:3] for i in chosen])
                points = built[chosen]
                out[table] = {
                    "metrics": points.metrics_table,
                    "metric_rollup": points.rollup_table,
                    "metric_summary": points.summary_table,
                }[table]()
        return out


def _points(messages: list[tuple[MetricColumns, int, int]]) -> Points:
    """Concatenates messages' columns; strings become indices into per-batch name lists."""
    key_ids: dict[str, int] = {}
    run_ids: dict[str, int] = {}
    node_ids: dict[str, int] = {}

    def each(value: Callable[[MetricColumns, int, int], Any], dtype: type) -> np.ndarray:
        return np.concatenate([np.full(len(c), value(c, p, o), dtype) for c, p, o in messages])

    def remapped(c: MetricColumns) -> np.ndarray:
        remap = np.array([key_ids.setdefault(k, len(key_ids)) for k in c.keys], np.int32)
        return remap[c.key_index] if len(remap) else np.zeros(0, np.int32)

    columns = [c for c, _, _ in messages]
    return Points(
        run=each(lambda c, p, o: run_ids.setdefault(c.run_id, len(run_ids)), np.int32),
        key=np.concatenate([remapped(c) for c in columns]),
        rank=each(lambda c, p, o: c.rank, np.uint32),
        node=each(lambda c, p, o: node_ids.setdefault(c.node, len(node_ids)), np.int32),
        step=np.concatenate([c.steps for c in columns]),
        timestamp=np.concatenate([c.timestamps for c in columns]),
        value=np.concatenate([c.values for c in columns]),
        partition=each(lambda c, p, o: p, np.uint32),
        offset=each(lambda c, p, o: o, np.int64),
        run_ids=list(run_ids),
        keys=list(key_ids),
        nodes=list(node_ids),
    )
