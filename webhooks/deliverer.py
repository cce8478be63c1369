"""The delivery loop: poll the log as a consumer group of its own → wait until the projector holds
what was read → make MLflow's webhook events of its registry events → send each to the active webhooks
subscribed to it → commit.

At least once: offsets are committed only once every delivery of what was read is done (taken,
refused, or out of retries), so a deliverer that stops or crashes sends the uncommitted ones again,
with the same delivery id (X-MLflow-Delivery-Id), by which receivers can drop repeats. A webhook gets
the events made after its creation only, so a new consumer group reading the log from its start sends
nothing old. Each webhook's deliveries go in log order, webhooks in parallel."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.base import CommitFailed, LogConsumer, LogMessage, Positions
from runstream.schemas.codec import UndecodableEvent, decode, writer_schema
from runstream.store import webhooks as store_webhooks
from runstream.store.applied import Applied, caught_up
from runstream.webhooks.payloads import SOURCES, Notice, notice
from runstream.webhooks.send import Sender, Target

log = logging.getLogger(__name__)

DELIVERIES = Counter("runstream_webhook_deliveries", "Webhook deliveries finished, by result", ["result"])
_WAIT_S = 0.02  # between checks of what the projector applied
_WEBHOOK_CHANGES = frozenset({"WebhookSaved", "WebhookDeleted"})
_DECODED = SOURCES | _WEBHOOK_CHANGES  # the events the loop reads; others are skipped undecoded


@dataclass(frozen=True)
class Webhook:
    target: Target
    events: frozenset[str]
    creation_time: int

    def wants(self, n: Notice) -> bool:
        return n.event in self.events and n.event_time >= self.creation_time


def delivery_id(n: Notice, webhook_id: str) -> str:
    """The same for every send of one event to one webhook: receivers drop repeats by it."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"runstream-webhook.{n.event_id.hex()}.{webhook_id}"))


def active_webhooks(store: ClickHouse) -> list[Webhook]:
    rows = store_webhooks.active_webhooks(store.client)
    return [Webhook(Target(str(i), str(u), str(s)), frozenset(e), int(t)) for i, u, s, e, t in rows]


class Deliverer:
    def __init__(
        self,
        consumer: LogConsumer,
        store: ClickHouse,
        applied: Applied,
        sender: Sender | None = None,
        poll_messages: int = 1000,
        parallel: int = 8,
    ) -> None:
        self.store = store
        self.applied = applied  # the projector's: a delivery reads back what it applied
        self.poll_messages = poll_messages
        self._consumer = consumer
        self._sender = sender or Sender()
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="webhook")
        self._stop = threading.Event()
        # Webhook changes read but not yet seen applied, by position; until the first wait, a change
        # read before a restart may still be on its way into the tables too.
        self._unsettled: Positions = {}
        self._waited = False

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                messages = self._consumer.poll(self.poll_messages, timeout=0.2)
                if not messages:
                    continue
                self._deliver(messages)
                if self._stop.is_set():
                    break  # deliveries cut short: not committed, so sent again by the next deliverer
                try:
                    self._consumer.commit(_next_offsets(messages))
                except CommitFailed as exc:
                    log.warning("%s; the next owner of these partitions delivers them again", exc)
        finally:
            self._consumer.close()
            self._pool.shutdown()
            self._sender.close()

    def _deliver(self, messages: list[LogMessage]) -> None:
        found = []
        for m in messages:
            event = _event(m)
            if event is None:
                continue
            if event[0] in _WEBHOOK_CHANGES:
                self._unsettled[m.partition] = max(self._unsettled.get(m.partition, -1), m.offset)
            else:
                found.append((m, *event))
        if not found:
            return
        plan = self._retrying(lambda: self._plan(found))
        if plan is None:
            return
        sends = [self._pool.submit(self._send_all, webhook, notices) for webhook, notices in plan if notices]
        for send in sends:
            send.result()

    def _plan(self, found: list[tuple[LogMessage, str, dict[str, Any]]]) -> list[tuple[Webhook, list[Notice]]] | None:
        """Per active webhook, the notices it wants, in log order; None if stopped while waiting."""
        if self._waited and not self._unsettled and not active_webhooks(self.store):
            # Every webhook change read so far is applied, and none is active: nothing to send, so
            # no need to wait for the projector (registry writes are waited on by their callers).
            return []
        wanted = dict(self._unsettled)
        for m, _, _ in found:
            wanted[m.partition] = max(wanted.get(m.partition, -1), m.offset)
        while not caught_up(self.applied.current(), wanted):
            if self._stop.wait(_WAIT_S):
                return None
        self._unsettled, self._waited = {}, True
        webhooks = active_webhooks(self.store)
        if not webhooks:
            return []
        client = self.store.client
        notices = [n for _, kind, record in found if (n := notice(client, kind, record)) is not None]
        return [(w, [n for n in notices if w.wants(n)]) for w in webhooks]

    def _retrying(self, step: Callable[[], Any]) -> Any:
        """ClickHouse unreachable, say: try again until it answers (nothing is committed meanwhile)."""
        wait = 0.5
        while True:
            try:
                return step()
            except Exception as exc:
                log.warning("webhooks: reading the registry failed (%s); retrying in %.1f s", exc, wait)
                if self._stop.wait(wait):
                    return None
                wait = min(wait * 2, 10.0)

    def _send_all(self, webhook: Webhook, notices: list[Notice]) -> None:
        for n in notices:
            if self._stop.is_set():
                return
            started = time.monotonic()
            outcome = self._sender.send(
                webhook.target, n.event, n.payload, delivery_id(n, webhook.target.webhook_id), stop=self._stop
            )
            if self._stop.is_set() and not outcome.success:
                return  # cut short, not given up: the next deliverer sends it
            DELIVERIES.labels("delivered" if outcome.success else "failed").inc()
            if not outcome.success:
                log.warning(
                    "webhook %s: %s not delivered to %s after %d attempts in %.1f s (status %s, %s)",
                    webhook.target.webhook_id,
                    n.event,
                    webhook.target.url,
                    outcome.attempts,
                    time.monotonic() - started,
                    outcome.status,
                    outcome.error or (outcome.body or "")[:200],
                )


def _event(m: LogMessage) -> tuple[str, dict[str, Any]] | None:
    """The message's event if the loop reads it (a registry event that makes a webhook event, or a
    webhook change)."""
    try:
        if writer_schema(m.value).name not in _DECODED:
            return None
        return decode(m.value)
    except UndecodableEvent:
        return None  # the projector dead-letters it


def _next_offsets(messages: list[LogMessage]) -> Positions:
    out: Positions = {}
    for m in messages:
        out[m.partition] = max(out.get(m.partition, 0), m.offset + 1)
    return out
