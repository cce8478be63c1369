"""What every event-log backend offers: durable appends with positions, and a consumer that commits
explicitly."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LogMessage:
    partition: int
    offset: int
    key: str
    value: bytes


Positions = dict[int, int]
"""Partition → offset. For an append: the offset of the last message written to each partition.
For a commit: the next offset to read in each partition."""


class AppendFailed(RuntimeError):
    """The log did not acknowledge the messages; nothing can be assumed about their durability."""


class CommitFailed(RuntimeError):
    """The log did not record the positions (the group moved on: a rebalance, an expired session; or
    the log was unreachable). What the caller wrote stands; whoever reads these partitions next starts
    from the last recorded positions."""


class EventLog(Protocol):
    def append(self, messages: Iterable[tuple[str, bytes]]) -> Positions:
        """Writes (key, value) messages and returns once all are durable (acknowledged by the log)."""
        ...

    def check(self) -> None:
        """Raises unless the log can take writes now (a readiness probe)."""
        ...

    def close(self) -> None: ...


RevokeHandler = Callable[[list[int]], None]


@dataclass(frozen=True)
class PartitionHandlers:
    """What a consumer calls when partitions leave it in a rebalance."""

    revoked: RevokeHandler
    """Still owned during the call: finishing (and committing) their work there is safe."""
    lost: RevokeHandler
    """Already someone else's (this member's session expired): their unwritten work must be dropped;
    the next owner reads it again from the last committed positions."""


class LogConsumer(Protocol):
    def poll(self, max_messages: int, timeout: float) -> list[LogMessage]:
        """Up to max_messages in log order per partition; waits at most `timeout` seconds for the first."""
        ...

    def commit(self, positions: Positions) -> None:
        """Records, durably, the next offset to read per partition; raises CommitFailed if it could not."""
        ...

    def lag(self) -> Positions:
        """Per partition this consumer reads: how many messages the log holds beyond its position."""
        ...

    def member(self) -> str:
        """This consumer's id in its group, as the log names it ("" before it joined)."""
        ...

    def close(self) -> None: ...


def merge_positions(into: Positions, more: Positions) -> Positions:
    for partition, offset in more.items():
        if offset > into.get(partition, -1):
            into[partition] = offset
    return into


def format_token(positions: Positions) -> str:
    """The consistency token a write returns: the log positions it reached."""
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def parse_token(token: str) -> Positions:
    """Raises ValueError for anything that is not a token `format_token` made."""
    positions: Positions = {}
    for part in filter(None, token.split(",")):
        partition, _, offset = part.partition(":")
        p, o = int(partition), int(offset)
        if p < 0 or o < 0:
            raise ValueError("negative position")
        positions[p] = o
    return positions
