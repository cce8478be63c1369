"""The projector: a chain of steps, one file each, that every message of the log goes through:

    decode (decode.py) → dedup (dedup.py) → project (project.py) → batch (batch.py)
    → insert (writer.py) → commit (here)

`consume` below runs a message through the first four; the loop flushes a batch by size or age, has
it inserted, and commits its offsets.

Partitions are split into lanes (partition % lanes), each with a batch being filled and at most one
write in flight, so up to `inserts_in_flight` batches are written at once while the next ones are
decoded. One lane holds each partition, so its batches reach the tables in log order, and a table's
highest position held per partition (what dedup reads) never runs ahead of a gap.

Offsets are committed only after every insert of a batch succeeded, so a crash replays at most the
uncommitted batches; replayed rows collapse in ClickHouse (see migrations), so answers never double.
A commit the log refuses (the group rebalanced while a batch was written) changes nothing of that:
the batch stands, and whoever reads its partitions next skips what the tables already hold. Partitions
lost to an expired session drop the unwritten batches: their next owner reads them again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
)

from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.base import CommitFailed, LogConsumer, LogMessage, PartitionHandlers, Positions
from runstream.projector import metrics
from runstream.projector.batch import Batch
from runstream.projector.decode import BAD_EVENT, decode_event
from runstream.projector.dedup import METRIC_TABLES, MetricDedup
from runstream.projector.pauses import Pauses
from runstream.projector.project import project
from runstream.projector.writer import BatchWriter
from runstream.schemas.events import metric_columns

log = logging.getLogger(__name__)

LAG_REPORT_S = 1.0
PAUSE_CHECK_S = 1.0
POLL_S = 0.05  # the longest a poll waits for messages
BUSY_POLL_S = 0.005  # ... while a write is in flight
# Metric points per batch at most: a lane holds one batch being filled and one being written (its
# columns and the tables built from them), so this bounds the memory of working off a backlog. 250k:
# a 50M-point backlog peaks at 410-456 MiB, and steady ingest stays within ~10% of 1M's (bench.backlog,
# bench.scale; README: Memory).
BATCH_POINTS = 250_000
BATCH_POINTS_MAX = 1_000_000  # writer.INSERT_BLOCK_ROWS holds one such batch and a message
ConsumerFactory = Callable[[PartitionHandlers], LogConsumer]


_log_retry = before_sleep_log(log, logging.WARNING)


def _before_retry(state: RetryCallState) -> None:
    metrics.WRITE_RETRIES.inc()
    _log_retry(state)


def consume(message: LogMessage, batch: Batch, dedup: MetricDedup | None) -> None:
    """One message through the chain's first steps, into its lane's batch. An event that cannot be
    decoded or is invalid becomes a dead letter, and the stream goes on."""
    batch.covers(message)
    try:
        event = decode_event(message)
    except BAD_EVENT as exc:
        batch.dead_letter(message, str(exc))
        return
    if event.name != "MetricBatch":
        project(event, batch.rows)
        return
    columns = metric_columns(event.record)
    if dedup is None:  # nothing held yet to skip (a test's batch)
        needed = (True,) * len(METRIC_TABLES)
    else:
        if not dedup.resent(event.event_id):
            batch.metric_event_ids.append(event.event_id)  # forgotten again if the batch is dropped unwritten
        needed = dedup.needed(event.partition, event.offset, event.event_id, columns.run_id)
    batch.add_points(columns, event, needed)


@dataclass
class Lane:
    """The partitions of one insert at a time: the batch being filled, and the one being written."""

    batch: Batch
    writing: Batch | None = None
    write: Future[None] | None = None
    flushed_at: float = float("-inf")
    started_at: float = 0.0
    took_s: float = 0.0  # how long its last write took, until committed

    @property
    def busy(self) -> bool:
        return self.write is not None and not self.write.done()


class Projector:
    def __init__(
        self,
        consumer_factory: ConsumerFactory,
        store: ClickHouse,
        consumer_group: str,
        max_rows: int = BATCH_POINTS,
        max_wait_s: float = 0.2,
        poll_messages: int = 2000,
        min_flush_interval_s: float = 0.05,
        inserts_in_flight: int = 2,
        pauses: Pauses | None = None,
        on_applied: Callable[[Positions], None] | None = None,
        awaited: Callable[[], bool] | None = None,
    ) -> None:
        if inserts_in_flight < 1:
            raise ValueError("inserts_in_flight must be at least 1")
        self.store = store
        self.group = consumer_group
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.poll_messages = poll_messages
        self.min_flush_interval_s = min_flush_interval_s
        self._dedup = MetricDedup(store)
        self._writer = BatchWriter(store, consumer_group, inserts_in_flight)
        self._writes = ThreadPoolExecutor(inserts_in_flight, thread_name_prefix="write")
        self._lanes = [Lane(self._new_batch()) for _ in range(inserts_in_flight)]
        self._stop = threading.Event()
        self._consumer = consumer_factory(PartitionHandlers(revoked=self._on_revoke, lost=self._on_lost))
        self.points_written = 0
        self.dead_letters = 0
        self._lag_reported = -LAG_REPORT_S
        self._pauses = pauses
        self._on_applied = on_applied  # told the positions of each batch committed (AppliedWatch.advance)
        self._awaited = awaited or (lambda: False)  # whether a reader waits for what is not applied yet
        self._pause_checked = -PAUSE_CHECK_S

    def _new_batch(self) -> Batch:
        return Batch(self.group)

    def _on_revoke(self, partitions: list[int]) -> None:
        # Finish what was read from these partitions while we still own them; the next owner
        # starts from the offsets committed here.
        self.flush()
        self._dedup.forget_partitions()

    def _on_lost(self, partitions: list[int]) -> None:
        # Another member may be writing these partitions already: writing the filling batches now
        # could double their points. Every partition goes at once (eager rebalancing), so every
        # unwritten batch is dropped, and the consumer starts again from the committed offsets when it
        # is reassigned. Writes already sent are awaited (they cannot be called back); their commits
        # are refused.
        for lane in self._lanes:
            self._finish(lane)
            if lane.batch.messages:
                metrics.LOST_BATCHES.inc()
            self._dedup.forget(lane.batch.metric_event_ids)
            lane.batch = self._new_batch()
        self._dedup.forget_partitions()

    def run(self) -> None:
        try:
            timeout = POLL_S
            while not self._stop.is_set():
                messages = self._consumer.poll(self.poll_messages, timeout=timeout)
                for message in messages:
                    lane = self._lanes[message.partition % len(self._lanes)]
                    consume(message, lane.batch, self._dedup)
                    if lane.batch.metric_points >= self.max_rows:
                        self._start(lane)  # keeps each insert one block, so it becomes visible at once
                # Caught up (nothing more waiting): don't wait to batch, unless the last flush was only
                # just now. An idle stream's event is queryable at once; a busy one's small writes
                # share a flush instead of one insert each, whose cost the writers' requests paid.
                # While a write is in flight, polls are short: its commit (what readers wait for) and
                # the batch behind it follow soon after it ends.
                caught_up = len(messages) < self.poll_messages
                now = time.monotonic()
                timeout = POLL_S
                for lane in self._lanes:
                    if lane.write is not None and lane.write.done():
                        self._finish(lane)
                    if lane.busy:
                        timeout = BUSY_POLL_S
                    batch = lane.batch
                    if not batch.messages:
                        batch.started = now
                        continue
                    due = now - batch.started >= self.max_wait_s or batch.metric_points >= self.max_rows
                    # A lane writes at most half the time while caught up: after a write, the next waits
                    # as long as that one took, up to min_flush_interval_s; unless a reader is waiting.
                    spaced_in = lane.flushed_at + min(self.min_flush_interval_s, lane.took_s) - now
                    if not lane.busy and (due or (caught_up and (spaced_in <= 0 or self._awaited()))):
                        self._start(lane)
                        timeout = BUSY_POLL_S
                    elif not lane.busy and caught_up:  # the next poll ends when the batch may go
                        timeout = min(timeout, spaced_in)
                self._report_lag()
                self._honour_pause()
            self.flush()
        finally:
            self._consumer.close()
            self._writes.shutdown()
            self._writer.close()

    def stop(self) -> None:
        self._stop.set()

    def flush(self) -> None:
        """Writes and commits everything read so far."""
        for lane in self._lanes:
            if lane.batch.messages:
                self._start(lane)
        for lane in self._lanes:
            self._finish(lane)

    def _start(self, lane: Lane) -> None:
        """Sends the lane's batch to be written, once the lane's previous write is done and committed."""
        self._finish(lane)
        lane.writing, lane.batch = lane.batch, self._new_batch()
        lane.started_at = time.monotonic()
        lane.write = self._writes.submit(self._write, lane.writing)

    def _write(self, batch: Batch) -> None:
        for attempt in Retrying(
            wait=wait_exponential(multiplier=0.1, max=5),
            retry=retry_if_exception_type(Exception),
            stop=stop_when_event_set(self._stop),  # at shutdown: give up, commit nothing
            before_sleep=_before_retry,
            reraise=True,
        ):
            with attempt, metrics.WRITE_SECONDS.time():
                self._writer.write(batch)

    def _finish(self, lane: Lane) -> None:
        """Waits for the lane's write, if any, then commits its positions."""
        batch, write = lane.writing, lane.write
        if batch is None or write is None:
            return
        lane.writing = lane.write = None
        write.result()  # raises only at shutdown: nothing committed
        try:
            self._consumer.commit(batch.next_offsets)
        except CommitFailed as exc:
            metrics.COMMIT_FAILURES.inc()
            log.warning("%s; the batch is written, so the next commit or the next owner carries on", exc)
        lane.flushed_at = time.monotonic()
        lane.took_s = lane.flushed_at - lane.started_at
        if self._on_applied is not None:
            self._on_applied({p: offset - 1 for p, offset in batch.next_offsets.items()})
        dead_letters = len(batch.rows["dead_letters"])
        self.points_written += batch.metric_points
        self.dead_letters += dead_letters
        metrics.EVENTS.inc(batch.messages)
        metrics.POINTS.inc(batch.metric_points)
        metrics.DEAD_LETTERS.inc(dead_letters)
        metrics.BATCH_MESSAGES.observe(batch.messages)
        metrics.BATCH_POINTS.observe(batch.metric_points)

    def _honour_pause(self) -> None:
        """A replay asked the group to pause (pauses.py): write and commit what was read, say so, and
        wait. The tables may be others afterwards, so what they hold is asked again."""
        now = time.monotonic()
        if self._pauses is None or now - self._pause_checked < PAUSE_CHECK_S:
            return
        self._pause_checked = now
        acked = None
        while not self._stop.is_set() and (request := self._pause_asked(acked)) is not None:
            if request != acked:
                self.flush()
                self._pauses.ack(request, self._consumer.member())
                log.info("paused for a replay's handover (%s)", request)
                acked = request
            self._stop.wait(0.2)
        if acked is not None:
            self._dedup.forget_partitions()
            log.info("pause lifted: projecting again")

    def _pause_asked(self, paused: str | None) -> str | None:
        """The pause in force, if any. An unanswered check changes nothing: a running projector goes
        on (a replay waiting for it times out and swaps nothing), a paused one stays paused (the
        replay may be swapping the tables) until a check says the pause was lifted or lapsed."""
        assert self._pauses is not None
        try:
            return self._pauses.active()
        except Exception as exc:
            log.warning("could not check for a replay's pause: %s", exc)
            return paused

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_reported >= LAG_REPORT_S:
            self._lag_reported = now
            for partition, behind in self._consumer.lag().items():
                metrics.LAG.labels(str(partition)).set(behind)
