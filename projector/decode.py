"""The chain's first step: a log message's bytes → an event (its schema's name, its record, and where
it sits in the log), or the reason it cannot be one, which goes to dead_letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from runstream.eventlog.base import LogMessage
from runstream.schemas.codec import UndecodableEvent, decode
from runstream.schemas.validation import InvalidEvent, validate

Time = tuple[int, int]  # (event_time, log offset)
BAD_EVENT = (UndecodableEvent, InvalidEvent)  # their text is the dead letter's reason


@dataclass(frozen=True)
class Event:
    name: str
    record: dict[str, Any]
    partition: int
    offset: int

    @property
    def time(self) -> Time:
        """Events of one run (or experiment) share a partition, so (event_time, offset) orders them
        even within one millisecond."""
        return (self.record["header"]["event_time"], self.offset)

    @property
    def event_id(self) -> bytes:
        return cast(bytes, self.record["header"]["event_id"])  # fastavro decodes `fixed` as bytes


def decode_event(message: LogMessage) -> Event:
    """Raises one of BAD_EVENT if the bytes are not an event of a known schema, or not a valid one."""
    name, record = decode(message.value)
    validate(name, record)
    return Event(name, record, message.partition, message.offset)
