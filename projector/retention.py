"""How long raw metric points are kept: a ClickHouse TTL on the points table, counted from when each
point was written (its `written` column, migrations/013), after which only the 64-step rollup and the
per-key summary answer for them (store/series.py reads the rollup where points are gone).

The TTL itself is the policy: it lives in the table's definition, so every process reading the
database sees the same one, and a replay carries it over to the database it builds. Whole parts are
dropped once every row in them expired (`ttl_only_drop_parts`): no part is rewritten to remove rows.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from runstream.base.clickhouse import ClickHouse

log = logging.getLogger(__name__)

FOREVER = "forever"
_AGE = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TTL = re.compile(r"\bTTL written \+ toIntervalSecond\((\d+)\)")
# Setting a TTL also works it out for the parts already there; the call returns once that is done.
_SYNC = {"mutations_sync": 2}


@dataclass(frozen=True)
class RawPointsPolicy:
    """What a role was told to set at start: seconds raw points are kept, None for forever."""

    seconds: int | None

    def apply(self, store: ClickHouse) -> None:
        if keep_raw_points(store, self.seconds):
            kept = "forever" if self.seconds is None else f"{self.seconds} s after they are written"
            log.info("raw metric points are now kept %s", kept)


def parse_age(text: str) -> int | None:
    """'90d', '12h', '30m', '45s' → seconds; 'forever' → None (points are never dropped)."""
    if text == FOREVER:
        return None
    match = _AGE.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"an age is a positive number and one of s, m, h, d (like 90d), or {FOREVER!r}: {text!r}")
    return int(match[1]) * _SECONDS[match[2]]


def raw_points_kept_s(store: ClickHouse) -> int | None:
    """The policy in force: seconds raw points are kept, or None (forever)."""
    database, client = _points_tables(store)[0]
    return _kept_s(client, database)


def keep_raw_points(store: ClickHouse, seconds: int | None) -> bool:
    """Sets the policy (None: forever) where it differs; True if it changed anything."""
    ttl = "REMOVE TTL" if seconds is None else f"MODIFY TTL written + toIntervalSecond({seconds})"
    changed = False
    for database, client in _points_tables(store):
        if _kept_s(client, database) != seconds:
            client.command(f"ALTER TABLE {database}.metrics {ttl}", settings=_SYNC)
            changed = True
    return changed


def _points_tables(store: ClickHouse) -> list[tuple[str, Client]]:
    """Where the points are: the database's table, or on a cluster every node's local table (the
    Distributed table holds no rows)."""
    if store.cluster is None:
        return [(store.url.database, store.client)]
    return [(store.local_database, store.node_client(node, store.local_database)) for node in store.nodes()]


def _kept_s(client: Client, database: str) -> int | None:
    rows = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = 'metrics'",
        parameters={"db": database},
    ).result_rows
    match = _TTL.search(rows[0][0]) if rows else None
    return int(match[1]) if match else None
