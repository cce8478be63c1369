"""The log's archive: closed, checksummed segments of one partition's offsets, kept in an object store
(S3 or a folder), so the log outlives Kafka's retention and a broker's disk.

A segment holds every message of one partition from offset FIRST up to (not including) NEXT, the
position after its last message, as an Avro object container file (fastavro, deflate) of records
{offset, key, value}. Its key says all of it:

    log/<topic>/<partition:05d>/<first:020d>-<next:020d>-<sha256 of the file>.avro

so a listing alone gives each partition's chain of ranges (the next segment starts where this one's NEXT
says, or a segment is missing), and a reader checks the bytes against the name before using any. A
segment is written once and whole (one object PUT, a folder's rename) and never changed.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import fastavro

from runstream.artifacts.store import ArtifactStore
from runstream.eventlog.base import LogMessage, Positions

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "LogRecord",
        "namespace": "runstream.archive",
        "fields": [
            {"name": "offset", "type": "long"},
            {"name": "key", "type": "string"},
            {"name": "value", "type": "bytes"},
        ],
    }
)
_NAME = re.compile(r"^(\d{20})-(\d{20})-([0-9a-f]{64})\.avro$")


class CorruptSegment(RuntimeError):
    """A segment whose bytes do not match its checksum or its range."""


class LogGap(RuntimeError):
    """Offsets neither the archive nor the log holds any more."""


@dataclass(frozen=True, order=True)
class Segment:
    partition: int
    first: int
    next: int
    sha256: str = field(compare=False)
    key: str = field(compare=False)

    def describe(self) -> str:
        return f"partition {self.partition}, offsets {self.first}..{self.next - 1} ({self.key})"


def _prefix(topic: str) -> str:
    return f"log/{topic}"


def list_segments(store: ArtifactStore, topic: str) -> dict[int, list[Segment]]:
    """Each partition's segments in offset order, checked to form one chain without holes."""
    found: dict[int, list[Segment]] = {}
    for key in store.keys(_prefix(topic)):
        folder, _, name = key.rpartition("/")
        match = _NAME.match(name)
        if match is None or not folder.rpartition("/")[2].isdigit():
            continue  # not a segment (a half-written upload, a stray file)
        partition = int(folder.rpartition("/")[2])
        found.setdefault(partition, []).append(Segment(partition, int(match[1]), int(match[2]), match[3], key))
    for partition, chain in found.items():
        chain.sort()
        for before, after in itertools.pairwise(chain):
            if after.first != before.next:
                raise LogGap(
                    f"the archive of partition {partition} has no segment for offsets "
                    f"{before.next}..{after.first - 1} (between {before.key} and {after.key})"
                )
    return found


def archived_through(segments: dict[int, list[Segment]]) -> Positions:
    """Per partition, the position after the archive's last message: where archiving carries on."""
    return {partition: chain[-1].next for partition, chain in segments.items() if chain}


def write_segment(store: ArtifactStore, topic: str, partition: int, messages: list[LogMessage], next_: int) -> Segment:
    """Stores `messages` (one partition's, in order, the last before `next_`) as one closed segment."""
    out = io.BytesIO()
    records = ({"offset": m.offset, "key": m.key, "value": m.value} for m in messages)
    fastavro.writer(out, SCHEMA, records, codec="deflate")
    data = out.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    first = messages[0].offset
    key = f"{_prefix(topic)}/{partition:05d}/{first:020d}-{next_:020d}-{digest}.avro"
    store.upload(key, io.BytesIO(data))
    return Segment(partition, first, next_, digest, key)


def read_segment(store: ArtifactStore, segment: Segment) -> list[LogMessage]:
    """The segment's messages, after checking its bytes against its checksum and its range."""
    data = b"".join(store.read(segment.key, 0, store.size(segment.key)))
    if hashlib.sha256(data).hexdigest() != segment.sha256:
        raise CorruptSegment(f"archive segment of {segment.describe()}: its bytes do not match its checksum")
    try:
        records = list(fastavro.reader(io.BytesIO(data), SCHEMA))
    except Exception as exc:  # the checksum matched: written wrong, not damaged since
        raise CorruptSegment(f"archive segment of {segment.describe()} cannot be decoded: {exc}") from exc
    messages = [
        LogMessage(segment.partition, r["offset"], r["key"], r["value"]) for r in records if isinstance(r, dict)
    ]
    offsets = [m.offset for m in messages]
    if not offsets or offsets[0] != segment.first or offsets[-1] >= segment.next or offsets != sorted(offsets):
        raise CorruptSegment(f"archive segment of {segment.describe()} holds offsets outside its range")
    return messages


def read_archive(
    store: ArtifactStore, segments: dict[int, list[Segment]], starts: Positions, ends: Positions
) -> Iterator[list[LogMessage]]:
    """The archived messages of each partition in `starts` from its start up to its end, a segment at a
    time."""
    for partition, start in sorted(starts.items()):
        end = ends.get(partition, 0)
        for segment in segments.get(partition, []):
            if segment.next <= start or segment.first >= end:
                continue
            yield [m for m in read_segment(store, segment) if start <= m.offset < end]
