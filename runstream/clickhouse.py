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


class ClickHouse:
    """Hands out one client per thread (clients are not safe for concurrent queries)."""

    def __init__(self, url: str) -> None:
        self.url = ClickHouseUrl.parse(url)
        self._local = threading.local()
        bootstrap = clickhouse_connect.get_client(dsn=self.url.dsn, **self._options())
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {self.url.database}")

    def _options(self) -> dict[str, Any]:
        if self.url.embedded:
            return {}
        # No HTTP session: several clients may query at once; compression off on loopback-class links
        # costs less CPU than it saves.
        return {"autogenerate_session_id": False, "compress": False, "send_receive_timeout": 60}

    @property
    def client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = clickhouse_connect.get_client(dsn=self.url.dsn, database=self.url.database, **self._options())
            self._local.client = client
        return client
