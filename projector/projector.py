"""The projector loop: poll → decode into a batch → flush by size or age → insert → commit.

Offsets are committed only after every insert of the batch succeeded, so a crash replays at most the
uncommitted batch; replayed rows collapse in ClickHouse (see migrations), so answers never double.
A commit the log refuses (the group rebalanced while a batch was written) changes nothing of that:
the batch stands, and whoever reads its partitions next skips what the tables already hold. Partitions
lost to an expired session drop the unwritten batch: their next owner reads it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from tenacity import (
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
)

from runstream.clickhouse import ClickHouse
from runstream.ingest.log.base import CommitFailed, LogConsumer, PartitionHandlers
from runstream.projector import metrics
from runstream.projector.dedup import METRIC_TABLES, MetricDedup
from runstream.projector.rows import COLUMNS, Batch
from runstream.projector.state import COLUMNS as STATE_COLUMNS
from runstream.projector.state import state_rows

log = logging.getLogger(__name__)

INSERT_BLOCK_ROWS = 4_000_000  # > max_rows + one message: a batch's points land in one part
LAG_REPORT_S = 1.0
ConsumerFactory = Callable[[PartitionHandlers], LogConsumer]


_log_retry = before_sleep_log(log, logging.WARNING)


def _before_retry(state: RetryCallState) -> None:
    metrics.WRITE_RETRIES.inc()
    _log_retry(state)


class Projector:
    def __init__(
        self,
        consumer_factory: ConsumerFactory,
        store: ClickHouse,
        consumer_group: str,
        max_rows: int = 1_000_000,
        max_wait_s: float = 0.2,
        poll_messages: int = 2000,
        min_flush_interval_s: float = 0.05,
    ) -> None:
        self.store = store
        self.group = consumer_group
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.poll_messages = poll_messages
        self.min_flush_interval_s = min_flush_interval_s
        self._flushed_at = -min_flush_interval_s
        self._dedup = MetricDedup(store)
        self._inserts = ThreadPoolExecutor(len(METRIC_TABLES), thread_name_prefix="insert")
        self._batch = Batch(consumer_group, self._dedup)
        self._stop = threading.Event()
        self._consumer = consumer_factory(PartitionHandlers(revoked=self._on_revoke, lost=self._on_lost))
        self.points_written = 0
        self.dead_letters = 0
        self._lag_reported = -LAG_REPORT_S

    def _on_revoke(self, partitions: list[int]) -> None:
        # Finish what was read from these partitions while we still own them; the next owner
        # starts from the offsets committed here.
        self.flush()
        self._dedup.forget_partitions()

    def _on_lost(self, partitions: list[int]) -> None:
        # Another member may be writing these partitions already: writing this batch now could
        # double its points. Every partition goes at once (eager rebalancing), so the whole batch is
        # dropped, and the consumer starts again from the committed offsets when it is reassigned.
        metrics.LOST_BATCHES.inc()
        self._dedup.forget(self._batch.metric_event_ids)
        self._dedup.forget_partitions()
        self._batch = Batch(self.group, self._dedup)

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                messages = self._consumer.poll(self.poll_messages, timeout=0.05)
                for message in messages:
                    self._batch.add(message)
                    if self._batch.metric_points >= self.max_rows:
                        self.flush()  # keeps each insert one block, so it becomes visible at once
                batch = self._batch
                due = time.monotonic() - batch.started >= self.max_wait_s
                # Caught up (nothing more waiting): don't wait to batch, unless the last flush was only
                # just now. An idle stream's event is queryable at once; a busy one's small writes
                # share a flush instead of one insert each, whose cost the writers' requests paid.
                caught_up = len(messages) < self.poll_messages
                spaced = time.monotonic() - self._flushed_at >= self.min_flush_interval_s
                if batch.messages and ((caught_up and spaced) or due or batch.metric_points >= self.max_rows):
                    self.flush()
                elif not batch.messages:
                    batch.started = time.monotonic()
                self._report_lag()
            self.flush()
        finally:
            self._consumer.close()
            self._inserts.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def flush(self) -> None:
        batch = self._batch
        if not batch.messages:
            return
        for attempt in Retrying(
            wait=wait_exponential(multiplier=0.1, max=5),
            retry=retry_if_exception_type(Exception),
            stop=stop_when_event_set(self._stop),  # at shutdown: give up, commit nothing
            before_sleep=_before_retry,
            reraise=True,
        ):
            with attempt, metrics.WRITE_SECONDS.time():
                self._write(batch)
        try:
            self._consumer.commit(batch.next_offsets)
        except CommitFailed as exc:
            metrics.COMMIT_FAILURES.inc()
            log.warning("%s; the batch is written, so the next commit or the next owner carries on", exc)
        self._flushed_at = time.monotonic()
        dead_letters = len(batch.rows["dead_letters"])
        self.points_written += batch.metric_points
        self.dead_letters += dead_letters
        metrics.EVENTS.inc(batch.messages)
        metrics.POINTS.inc(batch.metric_points)
        metrics.DEAD_LETTERS.inc(dead_letters)
        metrics.BATCH_MESSAGES.observe(batch.messages)
        metrics.BATCH_POINTS.observe(batch.metric_points)
        self._batch = Batch(self.group, self._dedup)

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_reported >= LAG_REPORT_S:
            self._lag_reported = now
            for partition, behind in self._consumer.lag().items():
                metrics.LAG.labels(str(partition)).set(behind)

    def _insert_arrow(self, table: str, rows: pa.Table, settings: dict[str, Any]) -> None:
        self.store.client.insert_arrow(table, rows, settings={"max_insert_block_size": INSERT_BLOCK_ROWS, **settings})

    def _write(self, batch: Batch) -> None:
        # A retry of a failed write sends the same rows with the same token: on a cluster, shards that
        # got them the first time add nothing (a Distributed insert writes each shard separately).
        settings = self.store.insert_settings(batch.token)
        # The metric tables are independent (each records what it holds), so their inserts run at
        # once: the server works on them in parallel instead of one after another.
        inserts = [
            self._inserts.submit(self._insert_arrow, table, rows, settings)
            for table, rows in batch.metric_tables().items()
        ]
        for insert in inserts:
            insert.result()
        client = self.store.client
        for table, rows in batch.rows.items():
            if rows:
                client.insert(table, rows, column_names=COLUMNS[table], settings=settings)
        for table, rows in state_rows(batch.rows).items():
            if rows:
                client.insert(table, rows, column_names=STATE_COLUMNS[table], settings=settings)
        now = datetime.now(UTC)
        progress = [[self.group, p, offset - 1, now] for p, offset in batch.next_offsets.items()]
        client.insert(
            "projector_progress",
            progress,
            column_names=["consumer_group", "partition", "offset", "updated_at"],
            settings=settings,
        )
