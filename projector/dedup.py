"""Which metric points each table already holds, so a replay (after a crash or a rebalance) or a
re-sent event (a client retry after a lost acknowledgement) adds nothing twice.

The three metric tables are written by separate inserts, so a crash can fall between them: each
table records the log position of what it holds (src_partition, src_offset, answered by its
`applied` projection without a scan), and is asked separately."""

from __future__ import annotations

from collections import OrderedDict

from runstream.clickhouse import ClickHouse

METRIC_TABLES = ("metrics", "metric_rollup", "metric_summary")
RECENT_EVENT_IDS = 200_000


class MetricDedup:
    def __init__(self, store: ClickHouse) -> None:
        self._store = store
        self._stored_through: dict[tuple[str, int], int] = {}  # (table, partition) → highest offset held
        self._recent: OrderedDict[bytes, None] = OrderedDict()

    def _stored(self, table: str, partition: int) -> int:
        if (table, partition) not in self._stored_through:
            rows = self._store.client.query(
                f"SELECT src_partition, max(src_offset) FROM {table} WHERE src_partition = {{p:UInt32}} "
                "GROUP BY src_partition",  # the shape of the `applied` projection: no scan
                parameters={"p": partition},
            ).result_rows
            self._stored_through[table, partition] = int(rows[0][1]) if rows else -1
        return self._stored_through[table, partition]

    def resent(self, event_id: bytes) -> bool:
        return event_id in self._recent

    def needed(self, partition: int, offset: int, event_id: bytes) -> tuple[bool, ...]:
        """Per table of METRIC_TABLES, whether this message's points still have to go in. A re-sent
        event (an id seen recently) goes nowhere."""
        if self.resent(event_id):
            return (False,) * len(METRIC_TABLES)
        self._recent[event_id] = None
        if len(self._recent) > RECENT_EVENT_IDS:
            self._recent.popitem(last=False)
        return tuple(offset > self._stored(table, partition) for table in METRIC_TABLES)

    def forget(self, event_ids: list[bytes]) -> None:
        """These events were dropped unwritten: when they are read again, they are not re-sent ones."""
        for event_id in event_ids:
            self._recent.pop(event_id, None)

    def forget_partitions(self) -> None:
        """After partitions move, another instance may have stored more: ask again."""
        self._stored_through.clear()
