"""The native batch endpoint's body: events one after another, each as a 4-byte big-endian length
followed by that many bytes of an Avro single-object message."""

from __future__ import annotations

import struct
from collections.abc import Iterable

CONTENT_TYPE = "application/vnd.runstream.events"
MAX_EVENTS = 10_000  # in one body: the gateway refuses more (413); the SDK splits its sends to fit
_LENGTH = struct.Struct(">I")


def frame(messages: Iterable[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(m)) + m for m in messages)


def unframe(body: bytes) -> list[bytes]:
    """Raises ValueError when the body does not split into whole frames."""
    out, pos = [], 0
    while pos < len(body):
        if pos + 4 > len(body):
            raise ValueError(f"truncated frame header at byte {pos}")
        (length,) = _LENGTH.unpack_from(body, pos)
        pos += 4
        if pos + length > len(body):
            raise ValueError(f"frame at byte {pos - 4} claims {length} bytes, {len(body) - pos} remain")
        out.append(body[pos : pos + length])
        pos += length
    return out
