"""Avro single-object encoding: 0xC3 0x01, the writer schema's 8-byte CRC-64-AVRO fingerprint, then
the Avro binary body. Messages describe themselves, so no schema-registry server is needed."""

from __future__ import annotations

import io
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from runstream.schemas.registry import EventSchema, SchemaRegistry, registry

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8


class UndecodableEvent(ValueError):
    """The bytes are not an event of a schema this contract knows; `reason` says why."""


def encode(name: str, record: dict[str, Any], schemas: SchemaRegistry | None = None) -> bytes:
    schema = (schemas or registry()).latest(name)
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(schema.fingerprint)
    schemaless_writer(out, schema.parsed, record)
    return out.getvalue()


def writer_schema(message: bytes, schemas: SchemaRegistry | None = None) -> EventSchema:
    if len(message) < HEADER_SIZE or message[:2] != MAGIC:
        raise UndecodableEvent("not an Avro single-object message (bad marker)")
    schema = (schemas or registry()).by_fingerprint(message[2:HEADER_SIZE])
    if schema is None:
        raise UndecodableEvent(f"unknown schema fingerprint {message[2:HEADER_SIZE].hex()}")
    return schema


def decode(message: bytes, schemas: SchemaRegistry | None = None) -> tuple[str, dict[str, Any]]:
    """Returns (event name, record read into the newest schema version of that name)."""
    schemas = schemas or registry()
    writer = writer_schema(message, schemas)
    reader = schemas.latest(writer.name)
    body = io.BytesIO(message)
    body.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(body, writer.parsed, None if reader is writer else reader.parsed)
    except Exception as exc:  # fastavro raises several types on truncated/garbled bodies
        raise UndecodableEvent(f"{writer.name}: corrupt body ({type(exc).__name__}: {exc})") from exc
    if body.tell() != len(message):
        raise UndecodableEvent(f"{writer.name}: {len(message) - body.tell()} trailing bytes")
    if not isinstance(record, dict):
        raise UndecodableEvent(f"{writer.name}: body is not a record")
    return writer.name, record
