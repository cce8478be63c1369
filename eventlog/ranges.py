"""The whole log between two positions, wherever it is kept now: the archive's segments then Kafka,
or the embedded log's file. What replay reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from runstream.artifacts.store import ArtifactStore
from runstream.eventlog import local
from runstream.eventlog.base import LogMessage, Positions
from runstream.eventlog.kafka_ranges import bounds, read_range
from runstream.eventlog.segments import LogGap, list_segments, read_archive


class LogRanges(Protocol):
    def ends(self) -> Positions:
        """Per partition, the position after the last message the log holds now."""
        ...

    def read(self, starts: Positions, ends: Positions) -> Iterator[list[LogMessage]]:
        """Every message from each partition's start up to its end, in log order per partition."""
        ...

    def members(self, group: str) -> set[str]:
        """The members a consumer group has now (those that must hand over before a swap)."""
        ...


@dataclass(frozen=True)
class KafkaRanges:
    bootstrap: str
    topic: str
    archive: ArtifactStore | None = None

    def ends(self) -> Positions:
        return {p: high for p, (_, high) in bounds(self.bootstrap, self.topic).items()}

    def read(self, starts: Positions, ends: Positions) -> Iterator[list[LogMessage]]:
        segments = list_segments(self.archive, self.topic) if self.archive is not None else {}
        lows = {p: low for p, (low, _) in bounds(self.bootstrap, self.topic).items()}
        from_archive, from_kafka = {}, {}
        for partition, end in ends.items():
            start = starts.get(partition, 0)
            chain = segments.get(partition, [])
            if chain and chain[0].first <= start < chain[-1].next and start < end:
                from_archive[partition] = start
                start = chain[-1].next
            if start < end:
                if start < lows.get(partition, 0):
                    raise LogGap(
                        f"partition {partition}: offsets {start}..{lows[partition] - 1} are neither in the archive "
                        "nor in Kafka any more (deleted by the topic's retention before they were archived)"
                    )
                from_kafka[partition] = start
        if self.archive is not None and from_archive:
            yield from read_archive(self.archive, segments, from_archive, ends)
        yield from read_range(self.bootstrap, self.topic, from_kafka, ends)

    def members(self, group: str) -> set[str]:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            described = admin.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return set()  # no projector of this group ever ran
            raise ConnectionError(f"Kafka did not describe group {group!r}: {exc.args[0].str()}") from exc
        return {member.member_id for member in described.members}


@dataclass(frozen=True)
class LocalRanges:
    """The embedded log: its file is read directly (replay runs while `runstream serve` is stopped)."""

    path: Path

    def ends(self) -> Positions:
        return {local.PARTITION: local.end_offset(self.path) + 1}

    def read(self, starts: Positions, ends: Positions) -> Iterator[list[LogMessage]]:
        start, end = starts.get(local.PARTITION, 0), ends.get(local.PARTITION, 0)
        yield from local.read_range(self.path, start, end)

    def members(self, group: str) -> set[str]:
        return set()
