"""The background thread that turns buffered events into sends: every `interval` seconds, when the
metric buffer passes `batch_points`, or when asked to flush. Sends happen in order; a send that
fails transiently is retried with the same events, so nothing is dropped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from runstream.ingest.log.base import Positions, format_token, merge_positions
from runstream.ingest.sdk.buffer import MetricBuffer
from runstream.ingest.transport import RejectedEvents, Transport
from runstream.schemas.codec import encode
from runstream.schemas.events import MetricColumns, event, metric_batch_fields, partition_key

log = logging.getLogger(__name__)

POINTS_PER_MESSAGE = 20_000  # ~0.5 MB per message: under Kafka's default 1 MB message limit


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


class Sender:
    def __init__(
        self,
        transport: Transport,
        buffer: MetricBuffer,
        drain: Callable[[], MetricColumns | None],
        interval: float,
        batch_points: int,
    ) -> None:
        self._transport = transport
        self._buffer = buffer
        self._drain = drain
        self._interval = interval
        self._batch_points = batch_points
        self._events: list[tuple[str, bytes]] = []
        self._state = buffer.changed  # one lock for the buffer, the event queue and the counters
        self._requested = 0  # flush requests made / served: a flush waits until served >= its number
        self._served = 0
        self._closed = False
        self.error: BaseException | None = None
        self.positions: Positions = {}
        self._thread = threading.Thread(target=self._loop, name="runstream-sender", daemon=True)
        self._thread.start()

    def enqueue(self, event_name: str, /, **fields: Any) -> None:
        message = event(event_name, **fields)
        with self._state:
            self._raise_error()
            self._events.append((partition_key(*message), encode(*message)))

    def _raise_error(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"runstream could not deliver events: {self.error}") from self.error

    def flush(self, timeout: float | None = None) -> str:
        """Sends everything logged so far; returns the consistency token of what was sent."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            self._requested += 1
            ticket = self._requested
            self._state.notify_all()
            while self._served < ticket and self.error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("runstream flush did not finish in time")
                self._state.wait(remaining)
            self._raise_error()
            return format_token(self.positions)

    def _due(self, last_send: float) -> bool:
        return (
            self._closed
            or self._served < self._requested
            or len(self._buffer) >= self._batch_points
            or len(self._buffer) >= self._buffer.capacity
            or time.monotonic() - last_send >= self._interval
        )

    def _loop(self) -> None:
        last_send = time.monotonic()
        while True:
            with self._state:
                while not self._due(last_send):
                    self._state.wait(max(0.0, self._interval - (time.monotonic() - last_send)))
                ticket = self._requested
                closing = self._closed
                messages, self._events = self._events, []
            columns = self._drain()  # takes the buffer's lock itself
            if columns is not None:
                messages += metric_messages(columns)
            last_send = time.monotonic()
            self._send(messages)
            with self._state:
                self._served = ticket
                self._state.notify_all()
            if closing:
                return

    def _send(self, messages: list[tuple[str, bytes]]) -> None:
        while messages:
            try:
                merge_positions(self.positions, self._transport.send(messages))
                return
            except RejectedEvents as exc:
                with self._state:
                    self.error = exc  # cannot succeed: surface it to the caller, keep no retry loop
                    self._state.notify_all()
                return
            except Exception as exc:  # transport retries internally; keep the events and go on trying
                log.warning("runstream: sending %d events failed (%s); retrying", len(messages), exc)
                time.sleep(1.0)

    def close(self) -> None:
        with self._state:
            self._closed = True
            self._state.notify_all()
        self._thread.join()
        self._transport.close()
        with self._state:
            self._raise_error()
