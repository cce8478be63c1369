"""Which metric messages are already stored, so a replay (after a crash or a rebalance) or a re-sent
event (a client retry after a lost acknowledgement) is not inserted twice."""

from __future__ import annotations

from collections import OrderedDict

from runstream.clickhouse import ClickHouse

RECENT_EVENT_IDS = 200_000


class MetricDedup:
    def __init__(self, store: ClickHouse) -> None:
        self._store = store
        self._stored_through: dict[int, int] = {}  # partition → highest offset stored
        self._recent: OrderedDict[bytes, None] = OrderedDict()

    def _stored(self, partition: int) -> int:
        if partition not in self._stored_through:
            rows = self._store.client.query(
                "SELECT src_partition, max(src_offset) FROM metrics WHERE src_partition = {p:UInt32} "
                "GROUP BY src_partition",  # the shape of the `applied` projection: no scan
                parameters={"p": partition},
            ).result_rows
            self._stored_through[partition] = int(rows[0][1]) if rows else -1
        return self._stored_through[partition]

    def is_new(self, partition: int, offset: int, event_id: bytes) -> bool:
        """True once per event: remembers it as seen."""
        if offset <= self._stored(partition) or event_id in self._recent:
            return False
        self._recent[event_id] = None
        if len(self._recent) > RECENT_EVENT_IDS:
            self._recent.popitem(last=False)
        return True

    def forget_partitions(self) -> None:
        """After partitions move, another instance may have stored more: ask again."""
        self._stored_through.clear()
