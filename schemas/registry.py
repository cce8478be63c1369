"""Every schema version the contract has ever had, found by name or by fingerprint.

Files are named `<snake_name>.v<N>.avsc`. Old versions stay so that old messages in the log stay
readable: a message names its writer schema by fingerprint, and is read into the newest version
of the same record (Avro schema resolution).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

AVRO_DIR = Path(__file__).parent / "avro"
NAMESPACE = "runstream.events"
_FILE_NAME = re.compile(r"^(?P<stem>[a-z_]+)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class EventSchema:
    name: str  # short record name, e.g. "MetricBatch"
    version: int
    parsed: dict[str, Any]
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian (as on the wire)


class SchemaRegistry:
    def __init__(self, schemas: list[EventSchema], readers: list[EventSchema] | None = None) -> None:
        """`schemas`: every writer schema to recognise. `readers`: the shape records are read into and
        written with, per name (default: the newest version of each)."""
        self._by_fingerprint = {s.fingerprint: s for s in schemas}
        self._latest: dict[str, EventSchema] = {}
        for s in sorted(schemas, key=lambda s: s.version):
            self._latest[s.name] = s
        self._latest.update({s.name: s for s in readers or []})

    def by_fingerprint(self, fp: bytes) -> EventSchema | None:
        return self._by_fingerprint.get(fp)

    def latest(self, name: str) -> EventSchema:
        return self._latest[name]

    def names(self) -> list[str]:
        return sorted(self._latest)

    def all(self) -> list[EventSchema]:
        return list(self._by_fingerprint.values())


SHARED_TYPES = ("header.avsc", "feature_summary.avsc")  # named types events use, in dependency order


def parse_event_schema(raw: dict[str, Any], version: int) -> EventSchema:
    """Parses one event record schema, with the shared Header type resolved."""
    named: dict[str, Any] = {}
    for shared in SHARED_TYPES:
        parse_schema(json.loads((AVRO_DIR / shared).read_text()), named_schemas=named)
    parsed = parse_schema(raw, named_schemas=named)
    expanded = parse_schema(raw, named_schemas=dict(named), expand=True)
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(expanded), "CRC-64-AVRO"))
    assert isinstance(parsed, dict)
    return EventSchema(name=raw["name"], version=version, parsed=parsed, fingerprint=fp)


@cache
def registry() -> SchemaRegistry:
    schemas = []
    for path in sorted(AVRO_DIR.glob("*.avsc")):
        match = _FILE_NAME.match(path.name)
        if match is None:  # a shared type (SHARED_TYPES), not an event
            continue
        schemas.append(parse_event_schema(json.loads(path.read_text()), int(match["version"])))
    return SchemaRegistry(schemas)
