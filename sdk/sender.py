"""The process's background sender, one per tracking URI, shared by every run there: it turns what
the runs buffered into sends every `interval` seconds (each run's own), when a run's metric buffer
passes its `batch_points`, or when a run asks to flush. One send carries what every run has waiting,
so many short runs (a sweep, runs in threads) share requests and acknowledgement waits instead of
each paying its own thread, connection and round trips. Each run's events go in order; a send that
fails transiently is retried with the same events, so nothing is dropped; a refused one is charged
to the run whose events the server refused."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runstream.eventlog.base import Positions, format_token, merge_positions
from runstream.schemas.codec import encode
from runstream.schemas.events import MetricColumns, event, metric_batch_fields, partition_key
from runstream.sdk import written
from runstream.sdk.buffer import MetricBuffer, OnFull
from runstream.sdk.transport import RejectedEvents, Transport

log = logging.getLogger(__name__)

POINTS_PER_MESSAGE = 20_000  # ~0.5 MB per message: under Kafka's default 1 MB message limit

Messages = list[tuple[str, bytes]]


def metric_messages(columns: MetricColumns) -> list[tuple[str, bytes]]:
    out = []
    for start in range(0, len(columns), POINTS_PER_MESSAGE):
        part = MetricColumns(
            run_id=columns.run_id,
            rank=columns.rank,
            node=columns.node,
            keys=columns.keys,
            key_index=columns.key_index[start : start + POINTS_PER_MESSAGE],
            values=columns.values[start : start + POINTS_PER_MESSAGE],
            steps=columns.steps[start : start + POINTS_PER_MESSAGE],
            timestamps=columns.timestamps[start : start + POINTS_PER_MESSAGE],
        )
        out.append((columns.run_id, encode(*event("MetricBatch", **metric_batch_fields(part)))))
    return out


@dataclass(frozen=True)
class OutboxSettings:
    interval: float
    batch_points: int
    max_buffered_points: int
    on_full: OnFull


class Outbox:
    """One run's side of the shared sender: its events and metric buffer, in the sender's lock."""

    def __init__(
        self, sender: Sender, drain: Callable[[MetricBuffer], MetricColumns | None], settings: OutboxSettings
    ) -> None:
        self.sender = sender
        self.buffer = MetricBuffer(settings.max_buffered_points, settings.on_full, sender.state, settings.batch_points)
        self._drain = drain
        self.interval = settings.interval
        self.batch_points = settings.batch_points
        self.events: Messages = []
        self.last: Messages = []  # sent after the metrics buffered before them (the run's end mark)
        self.last_send = time.monotonic()
        self.positions: Positions = {}
        self.error: BaseException | None = None
        self.ended = False  # ended without waiting: sent at once, then dropped by the sender

    def waiting(self) -> bool:
        return bool(self.events or self.last or len(self.buffer))

    def due_in(self, now: float) -> float | None:
        """Seconds until this outbox wants a send (<= 0: now), None when it holds nothing."""
        if self.ended:  # sent (if anything waits) and dropped at the sender's next turn
            return 0.0
        if not self.waiting():
            return None
        if len(self.buffer) >= self.batch_points or len(self.buffer) >= self.buffer.capacity:
            return 0.0
        return self.last_send + self.interval - now

    def take(self, now: float) -> Messages:
        """Called with the sender's lock held."""
        messages, self.events = self.events, []
        columns = self._drain(self.buffer)
        if columns is not None:
            messages += metric_messages(columns)
        messages += self.last
        self.last = []
        self.last_send = now
        return messages

    def enqueue(self, event_name: str, /, last: bool = False, **fields: Any) -> None:
        """`last`: after the metrics logged so far, in the next send."""
        message = event(event_name, **fields)
        with self.sender.state:
            self.raise_error()
            (self.last if last else self.events).append((partition_key(*message), encode(*message)))
            self.sender.state.notify_all()

    def raise_error(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"runstream could not deliver events: {self.error}") from self.error

    def flush(self, timeout: float | None = None) -> str:
        """Sends everything logged so far; returns the consistency token of what was sent."""
        self.sender.flush(self, timeout)
        with self.sender.state:
            self.raise_error()
            return format_token(self.positions)

    def close(self) -> None:
        """Stops taking part in sends (flush first: what is still waiting is not sent)."""
        self.sender.remove(self)
        with self.sender.state:
            self.raise_error()

    def end_without_waiting(self) -> str:
        """What is waiting goes out with the sender's next send, then the outbox is dropped; a refusal
        is logged, and raised by the next `flush_all`. Returns the token of what was sent so far."""
        with self.sender.state:
            self.raise_error()
            self.ended = True
            self.sender.state.notify_all()
            return format_token(self.positions)


class Sender:
    def __init__(self, uri: str, transport_for: Callable[[str], Transport]) -> None:
        self._uri = uri
        self._transport_for = transport_for  # asked at each send: transports are shared and may be replaced
        self.state = threading.Condition()  # one lock for every outbox's buffer and events, and the tickets
        self._outboxes: list[Outbox] = []
        self._requested = 0  # flush requests made / served: a flush waits until served >= its number
        self._served = 0
        self._refused: list[BaseException] = []  # of outboxes ended without waiting, until flush_all
        self._thread = threading.Thread(target=self._loop, name="runstream-sender", daemon=True)
        self._thread.start()

    def outbox(self, drain: Callable[[MetricBuffer], MetricColumns | None], settings: OutboxSettings) -> Outbox:
        outbox = Outbox(self, drain, settings)
        with self.state:
            self._outboxes.append(outbox)
        return outbox

    def remove(self, outbox: Outbox) -> None:
        with self.state:
            if outbox in self._outboxes:
                self._outboxes.remove(outbox)

    def flush(self, outbox: Outbox | None, timeout: float | None) -> None:
        """Returns once everything enqueued so far (by `outbox`; None: by every outbox) is sent."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.state:
            self._requested += 1
            ticket = self._requested
            self.state.notify_all()
            while self._served < ticket and (outbox is None or outbox.error is None):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("runstream flush did not finish in time")
                self.state.wait(remaining)

    def _wait_due(self) -> None:
        """Called with the lock held: returns once a flush is asked for or an outbox is due."""
        while self._served >= self._requested:
            now = time.monotonic()
            waits = [w for w in (o.due_in(now) for o in self._outboxes) if w is not None]
            if waits and min(waits) <= 0:
                return
            self.state.wait(min(waits) if waits else None)

    def _loop(self) -> None:
        while True:
            with self.state:
                self._wait_due()
                ticket = self._requested
                now = time.monotonic()
                batch = [(o, o.take(now)) for o in self._outboxes if o.waiting()]
                self._outboxes = [o for o in self._outboxes if not o.ended]  # what they held is in `batch`
            self._send([(o, m) for o, m in batch if m])
            with self.state:
                for outbox, _ in batch:
                    if outbox.ended and outbox.error is not None:
                        log.error("runstream: events of an ended run were refused: %s", outbox.error)
                        self._refused.append(outbox.error)
                self._served = ticket
                self.state.notify_all()

    def flush_all(self, timeout: float | None) -> None:
        """Sends what every outbox holds; raises what was refused of runs ended without waiting."""
        self.flush(None, timeout)
        with self.state:
            refused, self._refused = self._refused, []
        if refused:
            raise RuntimeError(f"runstream could not deliver events of {len(refused)} run(s): {refused[0]}")

    def _send(self, batch: list[tuple[Outbox, Messages]]) -> None:
        """One request for every outbox's messages; if refused, each outbox's alone, so that only the
        run whose events were refused fails (a refused request wrote nothing, and a replayed event
        collapses into its first copy in the projection)."""
        if not batch:
            return
        try:
            positions = self._deliver([m for _, messages in batch for m in messages])
        except RejectedEvents as exc:
            if len(batch) > 1:
                for one in batch:
                    self._send([one])
                return
            positions, batch[0][0].error = {}, exc
        with self.state:
            for outbox, _ in batch:
                merge_positions(outbox.positions, positions)
        written.record(self._uri, format_token(positions))  # reads in this process wait for it

    def _deliver(self, messages: Messages) -> Positions:
        while True:
            try:
                return self._transport_for(self._uri).send(messages)
            except RejectedEvents:
                raise
            except Exception as exc:  # transport retries internally; keep the events and go on trying
                log.warning("runstream: sending %d events failed (%s); retrying", len(messages), exc)
                time.sleep(1.0)


_senders: dict[str, Sender] = {}
_senders_lock = threading.Lock()


def sender_for(uri: str, transport_for: Callable[[str], Transport]) -> Sender:
    """The process's sender for `uri` (started on first use)."""
    with _senders_lock:
        sender = _senders.get(uri)
        if sender is None:
            sender = _senders[uri] = Sender(uri, transport_for)
        return sender


os.register_at_fork(after_in_child=_senders.clear)  # a forked child has no sender thread: it starts its own


def flush(timeout: float | None = None) -> None:
    """Blocks until everything this process logged, to every tracking URI, is durable: the events of
    runs ended with `wait=False` too."""
    with _senders_lock:
        senders = list(_senders.values())
    deadline = None if timeout is None else time.monotonic() + timeout
    for sender in senders:
        sender.flush_all(None if deadline is None else max(deadline - time.monotonic(), 0.0))


EXIT_FLUSH_S = 60.0


@atexit.register
def _flush_at_exit() -> None:
    """What is still waiting when the interpreter exits (runs ended without waiting, runs never
    ended) is sent first; bounded, so an unreachable server does not hold the exit forever."""
    try:
        flush(EXIT_FLUSH_S)
    except Exception as exc:  # at exit nobody can catch it: say what was lost
        log.error("runstream: events not delivered at exit: %s", exc)
