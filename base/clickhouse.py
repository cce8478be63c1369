"""The one ClickHouse access layer: a ClickHouse server over HTTP (clickhouse-connect) or the embedded
engine (chdb, through clickhouse-connect's chdb:// backend). The same SQL runs on both.

URLs: `http://user:pass@host:8123/database` (https too), or `chdb:///absolute/path` (database
`runstream`, or `?database=name`).

On a cluster (`cluster=` the name in the servers' `<remote_servers>`), the tables the code names are
`Distributed` tables over local tables of the same names in DATABASE_local on every node (see
projector/cluster_ddl.py); any node takes the queries.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse, urlunparse

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
        return {
            "max_execution_time": self.seconds,
            "max_memory_usage": self.memory_bytes,
            # A thread's allocations reach the query's tracker in steps of this (4 MiB by default), so
            # a limit near or under it would go unchecked: keep the step a fraction of the limit.
            "max_untracked_memory": min(4 * 1024**2, self.memory_bytes // 8),
        }


DEFAULT_READ_LIMITS = ReadLimits()


@dataclass(frozen=True)
class Node:
    """One server of a cluster, as system.clusters and the node itself name it."""

    shard: int
    replica: int
    dsn: str  # its HTTP address, with the credentials of the URL the cluster was reached by


class ClickHouse:
    """Hands out one client per thread (clients are not safe for concurrent queries). With `limits`,
    every query of its clients runs under them (the read roles' stores; the projector's has none)."""

    def __init__(
        self, url: str, cluster: str | None = None, limits: ReadLimits | None = None, create: bool = True
    ) -> None:
        self.url = ClickHouseUrl.parse(url)
        if cluster is not None and (self.url.embedded or not _IDENTIFIER.match(cluster)):
            raise ValueError(f"a ClickHouse cluster needs a server URL and a plain name, not {cluster!r}")
        self.cluster = cluster
        self._url = url
        self.limits = limits
        self._local = threading.local()
        if create:
            bootstrap = clickhouse_connect.get_client(dsn=self.url.dsn, **self._options())
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {self.url.database}")

    def limited(self, limits: ReadLimits) -> ClickHouse:
        """The same database, every query under `limits`."""
        return ClickHouse(self._url, self.cluster, limits, create=False)

    def sibling(self, database: str) -> ClickHouse:
        """Another database on the same server (replay builds one beside the live one)."""
        parsed = urlparse(self._url)
        if self.url.embedded:
            url = urlunparse(parsed._replace(query=f"database={database}"))
        else:
            url = urlunparse(parsed._replace(path=f"/{database}"))
        return ClickHouse(url, self.cluster, self.limits)

    @property
    def local_database(self) -> str:
        """Where a cluster's nodes keep the rows the Distributed tables of `database` reach."""
        return f"{self.url.database}_local"

    def _options(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.limits.settings() if self.limits else {}
        if self.url.embedded:
            return {"settings": settings} if settings else {}
        # No HTTP session: several clients may query at once; compression off on loopback-class links
        # costs less CPU than it saves. The HTTP timeout leaves ClickHouse's own time limit to act first.
        timeout = 60 + (self.limits.seconds if self.limits else 0)
        options: dict[str, Any] = {"autogenerate_session_id": False, "compress": False, "send_receive_timeout": timeout}
        if self.cluster is not None:
            # Tables are sharded by run, experiment or model: a join or IN over two of them is only
            # right when the inner side is read whole (GLOBAL), not per shard.
            settings = {**settings, "distributed_product_mode": "global"}
        return {**options, "settings": settings} if settings else options

    def insert_settings(self, token: str | None = None) -> dict[str, Any]:
        """Settings of an insert: on a cluster it returns once every shard holds its rows, and a retry
        with the same token (of the same rows) adds nothing where they landed. An INSERT ... SELECT
        takes no token: with one, a shard dropped some of its rows (projector/search_rows.py's
        refresh of several runs lost a run's row about once in 20 sweeps of 5 runs)."""
        if self.cluster is None:
            return {}
        settings: dict[str, Any] = {"distributed_foreground_insert": 1}
        return settings if token is None else {**settings, "insert_deduplication_token": token}

    def nodes(self) -> list[Node]:
        """Every server of the cluster. system.clusters names their native ports; each node is asked
        for its HTTP port through remote() as the URL's user (servers may have no `default` user),
        since the DDL goes over HTTP to each one."""
        assert self.cluster is not None
        listed = self.client.query(
            "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = {c:String} "
            "ORDER BY shard_num, replica_num",
            parameters={"c": self.cluster},
        ).result_rows
        if not listed:
            raise ValueError(f"ClickHouse knows no cluster {self.cluster!r} (system.clusters)")
        parsed = urlparse(self.url.dsn)
        user, password = unquote(parsed.username or "default"), unquote(parsed.password or "")
        nodes = []
        for shard, replica, host, port in listed:
            http_port = self.client.query(
                "SELECT getServerPort('http_port') FROM remote({at:String}, system.one, {user:String}, {pw:String})",
                parameters={"at": f"{host}:{port}", "user": user, "pw": password},
            ).result_rows[0][0]
            credentials = parsed.netloc.rpartition("@")[0]
            netloc = f"{credentials}@{host}:{http_port}" if credentials else f"{host}:{http_port}"
            nodes.append(Node(int(shard), int(replica), urlunparse(parsed._replace(netloc=netloc))))
        return nodes

    def node_client(self, node: Node, database: str) -> Client:
        return clickhouse_connect.get_client(dsn=node.dsn, database=database, **self._options())

    @property
    def client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = clickhouse_connect.get_client(dsn=self.url.dsn, database=self.url.database, **self._options())
            self._local.client = client
        return client


def shard_slots(store: ClickHouse) -> list[int]:
    """The shard of each slot a Distributed table maps `key % len(slots)` to: shards in order, each
    taking as many slots as its weight."""
    assert store.cluster is not None
    rows = store.client.query(
        "SELECT shard_num, any(shard_weight) FROM system.clusters WHERE cluster = {c:String} "
        "GROUP BY shard_num ORDER BY shard_num",
        parameters={"c": store.cluster},
    ).result_rows
    return [int(shard) for shard, weight in rows for _ in range(int(weight))]
