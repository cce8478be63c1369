"""Versioned DDL: migrations/NNN_name.sql applied in order at start, each recorded once."""

from __future__ import annotations

import re
from pathlib import Path

from runstream.clickhouse import ClickHouse

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def statements(sql: str) -> list[str]:
    """Splits a migration on ';' at line ends, dropping '--' comment lines."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.M) if s.strip()]


def migrate(store: ClickHouse) -> list[int]:
    """Applies the migrations not yet recorded; returns their versions. Statements are idempotent
    (IF NOT EXISTS), so projectors starting together may both run one safely."""
    client = store.client
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
            client.command(statement)
        client.insert("schema_migrations", [[int(match[1]), path.stem]], column_names=["version", "name"])
        done.append(int(match[1]))
    return done
