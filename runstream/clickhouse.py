"""The one ClickHouse access layer: a ClickHouse server over HTTP (clickhouse-connect) or the embedded
engine (chdb, through clickhouse-connect's chdb:// backend). The same SQL runs on both.

URLs: `http://user:pass@host:8123/database` (https too), or `chdb:///absolute/path` (database
`runstream`, or `?database=name`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse, urlunparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

DEFAULT_DATABASE = "runstream"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ClickHouseUrl:
    dsn: str  # what clickhouse-connect takes, without the database
    database: str
    embedded: bool

    @classmethod
    def parse(cls, url: str) -> ClickHouseUrl:
        parsed = urlparse(url)
        if parsed.scheme == "chdb":
            if not parsed.path.startswith("/"):
                raise ValueError("a chdb URL needs an absolute path: chdb:///path/to/dir")
            database = parse_qs(parsed.query).get("database", [DEFAULT_DATABASE])[0]
            dsn, embedded = f"chdb://{parsed.path}", True
        elif parsed.scheme in ("http", "https"):
            database = parsed.path.strip("/") or DEFAULT_DATABASE
            dsn, embedded = urlunparse(parsed._replace(path="", query="")), False
        else:
            raise ValueError(f"unsupported ClickHouse URL scheme {parsed.scheme!r} (http, https or chdb)")
        if not _IDENTIFIER.match(database):
            raise ValueError(f"invalid ClickHouse database name {database!r}")
        return cls(dsn=dsn, database=database, embedded=embedded)


@dataclass(frozen=True)
class ReadLimits:
    """What one read may cost ClickHouse, so that no request can take the server down: past either
    limit the query stops and the request is answered 429 (see errors.py)."""

    seconds: float = 30.0  # max_execution_time
    memory_bytes: int = 2 * 1024**3  # max_memory_usage

    def settings(self) -> dict[str, Any]:
        return {"max_execution_time": self.seconds, "max_memory_usage": self.memory_bytes}


DEFAULT_READ_LIMITS = ReadLimits()


class ClickHouse:
    """Hands out one client per thread (clients are not safe for concurrent queries). With `limits`,
    every query of its clients runs under them (the read roles' stores; the projector's has none)."""

    def __init__(self, url: str, limits: ReadLimits | None = None, create: bool = True) -> None:
        self.url = ClickHouseUrl.parse(url)
        self._url = url
        self.limits = limits
        self._local = threading.local()
        if create:
            bootstrap = clickhouse_connect.get_client(dsn=self.url.dsn, **self._options())
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {self.url.database}")

    def limited(self, limits: ReadLimits) -> ClickHouse:
        """The same database, every query under `limits`."""
        return ClickHouse(self._url, limits, create=False)

    def _options(self) -> dict[str, Any]:
        limits = {"settings": self.limits.settings()} if self.limits else {}
        if self.url.embedded:
            return limits
        # No HTTP session: several clients may query at once; compression off on loopback-class links
        # costs less CPU than it saves. The HTTP timeout leaves ClickHouse's own time limit to act first.
        timeout = 60 + (self.limits.seconds if self.limits else 0)
        return {"autogenerate_session_id": False, "compress": False, "send_receive_timeout": timeout, **limits}

    @property
    def client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = clickhouse_connect.get_client(dsn=self.url.dsn, database=self.url.database, **self._options())
            self._local.client = client
        return client
