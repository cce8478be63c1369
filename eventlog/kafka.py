"""The distributed event log: one Kafka topic keyed by run (or experiment) id.

Producer: idempotent, acks=all, lz4; an append returns once the broker acknowledged every message.
Consumer: a consumer group with auto-commit off; offsets are committed by the caller after its writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from runstream.eventlog.base import AppendFailed, CommitFailed, LogMessage, PartitionHandlers, Positions

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 6
APPEND_TIMEOUT_S = 120.0
CHECK_TIMEOUT_S = 1.5  # a readiness probe gets its answer in 2 s


def events_topic(prefix: str) -> str:
    return f"{prefix}events"


@dataclass(frozen=True)
class TopicSpec:
    """How the event topic is created when it is missing (an existing topic is left as it is)."""

    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int | None = None  # None: 3 on a cluster of 3 or more brokers, else 1
    min_insync_replicas: int | None = None  # None: replication factor - 1 (one broker may be down), at least 1
    retention_ms: int = -1  # the log is the source of truth: kept forever unless the user says otherwise

    def new_topic(self, topic: str, brokers: int) -> NewTopic:
        replication = self.replication_factor or (3 if brokers >= 3 else 1)
        if replication > brokers:
            raise ValueError(f"replication factor {replication} needs {replication} brokers; the cluster has {brokers}")
        min_insync = self.min_insync_replicas or max(1, replication - 1)
        if not 1 <= min_insync <= replication:
            raise ValueError(f"min.insync.replicas must be between 1 and the replication factor ({replication})")
        config = {"retention.ms": str(self.retention_ms), "min.insync.replicas": str(min_insync)}
        return NewTopic(topic, num_partitions=self.partitions, replication_factor=replication, config=config)


def ensure_topic(bootstrap: str, topic: str, spec: TopicSpec | None = None) -> None:
    """Creates the topic if it is missing, as `spec` says."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=30)
    if topic in metadata.topics:
        return
    futures = admin.create_topics([(spec or TopicSpec()).new_topic(topic, len(metadata.brokers))])
    try:
        futures[topic].result(timeout=30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


class _Acks:
    """Collects the delivery reports of one append."""

    def __init__(self, expected: int) -> None:
        self.remaining = expected
        self.positions: Positions = {}
        self.error: KafkaError | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        if expected == 0:
            self.done.set()

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            if err is not None:
                self.error = err
            else:
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None  # set on delivered messages
                if offset > self.positions.get(partition, -1):
                    self.positions[partition] = offset
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()


class KafkaLog:
    def __init__(self, bootstrap: str, topic: str, config: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "lz4",
                "linger.ms": 5,
                "batch.size": 1_000_000,
                "message.max.bytes": 8_000_000,
                **(config or {}),
            }
        )
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-delivery", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def append(self, messages: Iterable[tuple[str, bytes]]) -> Positions:
        batch = list(messages)
        acks = _Acks(len(batch))
        for key, value in batch:
            while True:
                try:
                    self._producer.produce(self.topic, value, key.encode(), on_delivery=acks.on_delivery)
                    break
                except BufferError:  # local queue full: wait for deliveries to make room
                    time.sleep(0.005)
        if not acks.done.wait(APPEND_TIMEOUT_S):
            raise AppendFailed(f"no acknowledgement from Kafka within {APPEND_TIMEOUT_S:.0f} s")
        if acks.error is not None:
            raise AppendFailed(f"Kafka refused the messages: {acks.error.str()}")
        return acks.positions

    def check(self) -> None:
        self._producer.list_topics(self.topic, timeout=CHECK_TIMEOUT_S)  # raises KafkaException if unreachable

    def close(self) -> None:
        self._producer.flush(30)
        self._closed.set()
        self._poller.join()
        self._producer.close()


class KafkaLogConsumer:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        handlers: PartitionHandlers | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self._handlers = handlers
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6_000,  # a crashed member's partitions move on after this
                "fetch.max.bytes": 64_000_000,
                **(config or {}),
            }
        )
        self._consumer.subscribe([topic], on_revoke=self._revoked, on_lost=self._lost)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._handlers is not None and partitions:
            self._handlers.revoked([tp.partition for tp in partitions])

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = [tp.partition for tp in partitions]
        log.warning("kafka consumer: partitions %s lost (the group session expired); rejoining", lost)
        if self._handlers is not None and lost:
            self._handlers.lost(lost)

    def poll(self, max_messages: int, timeout: float) -> list[LogMessage]:
        # consume(n, timeout) waits the whole timeout unless n messages are there; poll() returns as
        # soon as one is, and consume(n - 1, 0) then takes only what is already fetched.
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        out = []
        for msg in [first, *self._consumer.consume(max_messages - 1, 0)]:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka consumer: %s", err.str())
                continue
            partition, offset, key, value = msg.partition(), msg.offset(), msg.key(), msg.value()
            assert partition is not None and offset is not None  # set on consumed messages
            out.append(LogMessage(partition, offset, key.decode(errors="replace") if key else "", value or b""))
        return out

    def commit(self, positions: Positions) -> None:
        if positions:
            offsets = [TopicPartition(self.topic, p, o) for p, o in positions.items()]
            try:
                committed = self._consumer.commit(offsets=offsets, asynchronous=False) or []
            except KafkaException as exc:  # e.g. Unknown member: the group rebalanced without us
                raise CommitFailed(f"kafka commit failed: {exc.args[0].str()}") from exc
            refused = [f"{tp.partition}: {tp.error.str()}" for tp in committed if tp.error is not None]
            if refused:
                raise CommitFailed(f"kafka commit refused for partitions {', '.join(refused)}")

    def lag(self) -> Positions:
        out = {}
        for tp in self._consumer.position(self._consumer.assignment()):
            # Cached: the high watermark comes with every fetch response, no broker round trip.
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                out[tp.partition] = max(0, high - (tp.offset if tp.offset >= 0 else low))
        return out

    def member(self) -> str:
        return self._consumer.memberid() or ""

    def close(self) -> None:
        self._consumer.close()
