"""Reading offset ranges of the event topic outside any consumer group: what the archiver and replay
read (from a start to an end position per partition), and the topic's current bounds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from runstream.eventlog.base import LogMessage, Positions

STALL_S = 120.0  # no message for this long while some are still due: the brokers are gone
_TIMEOUT_S = 30.0
_CONSUME_S = 0.1  # how long a read waits to fill a batch: short, so a range's last few messages aren't held


def _consumer(bootstrap: str) -> Consumer:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": "runstream-range-reader",  # never joined nor committed: partitions are assigned
        "enable.auto.commit": False,
        "auto.offset.reset": "error",  # a start the log no longer holds is an error, not a silent skip
        "fetch.max.bytes": 64_000_000,
    }
    return Consumer(config)


def bounds(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition: the first offset the log still holds, and the position after its last message."""
    consumer = _consumer(bootstrap)
    try:
        found = consumer.list_topics(topic, timeout=_TIMEOUT_S).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise LookupError(f"Kafka has no topic {topic!r}")
        return {
            p: tuple(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_TIMEOUT_S))  # type: ignore[misc]
            for p in sorted(found.partitions)
        }
    except KafkaException as exc:
        raise ConnectionError(f"Kafka at {bootstrap} did not answer: {exc.args[0].str()}") from exc
    finally:
        consumer.close()


def read_range(
    bootstrap: str, topic: str, starts: Positions, ends: Positions, batch: int = 5000
) -> Iterator[list[LogMessage]]:
    """Each partition's messages from its start up to (not including) its end, in batches."""
    remaining = {p: end for p, end in ends.items() if starts.get(p, 0) < end}
    if not remaining:
        return
    consumer = _consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p in remaining])
        moved = time.monotonic()
        while remaining:
            out = []
            for message in consumer.consume(batch, timeout=_CONSUME_S):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise ConnectionError(f"reading {topic} from Kafka failed: {error.str()}")
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None  # set on consumed messages
                if offset < remaining.get(partition, -1):
                    key = message.key()
                    out.append(
                        LogMessage(
                            partition, offset, key.decode(errors="replace") if key else "", message.value() or b""
                        )
                    )
            for tp in consumer.position([TopicPartition(topic, p) for p in remaining]):
                if tp.offset >= remaining[tp.partition]:
                    del remaining[tp.partition]
                    consumer.pause([tp])
            if out:
                moved = time.monotonic()
                yield out
            elif time.monotonic() - moved > STALL_S:
                raise ConnectionError(
                    f"no message from Kafka for {STALL_S:.0f} s; partitions {sorted(remaining)} unread"
                )
    finally:
        consumer.close()
