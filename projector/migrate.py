"""Versioned DDL: migrations/NNN_name.sql applied in order at start, each recorded once (per node on a
cluster, where projector/cluster_ddl.py says where and how each statement runs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from runstream.base.clickhouse import ClickHouse
from runstream.projector.cluster_ddl import ClusterLayout

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
Placement = Callable[[str], list[tuple[str, str]]]


def statements(sql: str) -> list[str]:
    """Splits a migration on ';' at line ends, dropping '--' comment lines."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.M) if s.strip()]


def migrate(store: ClickHouse) -> list[int]:
    """Applies the migrations not yet recorded; returns their versions. Statements are idempotent
    (IF NOT EXISTS), so projectors starting together may both run one safely."""
    if store.cluster is None:
        database = store.url.database
        return _migrate_node({database: store.client}, database, lambda statement: [(database, statement)])
    layout = ClusterLayout(store.cluster, store.url.database, store.local_database, _has_keeper(store.client))
    nodes = store.nodes()
    if not layout.replicated and any(node.replica > 1 for node in nodes):
        raise ValueError(
            f"cluster {store.cluster!r} has shards of several replicas but no Keeper/ZooKeeper: "
            "their tables could not replicate"
        )
    done: set[int] = set()
    for node in nodes:
        databases = (layout.database, layout.local_database)
        for database in databases:
            store.node_client(node, "default").command(f"CREATE DATABASE IF NOT EXISTS {database}")
        clients = {database: store.node_client(node, database) for database in databases}
        done.update(_migrate_node(clients, layout.database, layout.place))
    return sorted(done)


def _has_keeper(client: Client) -> bool:
    try:
        client.query("SELECT 1 FROM system.zookeeper WHERE path = '/' LIMIT 1")
    except DatabaseError:
        return False  # no <zookeeper> in the servers' config (this engine has none to give)
    return True


def _migrate_node(clients: dict[str, Client], database: str, place: Placement) -> list[int]:
    client = clients[database]
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(3) DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    done = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None or int(match[1]) in applied:
            continue
        for statement in statements(path.read_text()):
            for where, sql in place(statement):
                clients[where].command(sql)
        client.insert("schema_migrations", [[int(match[1]), path.stem]], column_names=["version", "name"])
        done.append(int(match[1]))
    return done
