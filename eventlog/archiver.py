"""Kafka → archive: copies every partition's messages not archived yet into closed segments (see
segments.py), up to the log's end when the pass starts. Run it as often as the topic's retention
requires (`runstream archive --every`): a pass carries on where the archive ends."""

from __future__ import annotations

from collections.abc import Callable

from runstream.artifacts.store import ArtifactStore
from runstream.eventlog.base import LogMessage
from runstream.eventlog.kafka_ranges import bounds, read_range
from runstream.eventlog.segments import LogGap, Segment, archived_through, list_segments, write_segment

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


def archive_pass(
    bootstrap: str,
    topic: str,
    store: ArtifactStore,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[Segment]:
    """Archives what the log holds beyond the archive; returns the segments written. `progress` is told
    the messages archived so far and the total this pass archives."""
    reach = archived_through(list_segments(store, topic))
    todo = {}
    for partition, (low, high) in bounds(bootstrap, topic).items():
        start = reach.get(partition, low)
        if start < low:
            raise LogGap(
                f"partition {partition}: offsets {start}..{low - 1} were deleted by Kafka's retention before "
                "they were archived; archive more often than the topic's retention.ms"
            )
        if start < high:
            todo[partition] = (start, high)
    total, done = sum(high - start for start, high in todo.values()), 0
    written = []
    for partition, (start, high) in sorted(todo.items()):
        pending: list[LogMessage] = []
        size = 0
        for batch in read_range(bootstrap, topic, {partition: start}, {partition: high}):
            for message in batch:
                if size >= segment_bytes:  # closed at this message: the next segment starts where it ends
                    written.append(write_segment(store, topic, partition, pending, message.offset))
                    pending, size = [], 0
                pending.append(message)
                size += len(message.value) + len(message.key)
            done += len(batch)
            progress(done, total)
        if pending:
            written.append(write_segment(store, topic, partition, pending, high))
    return written
