"""Which metric points each table already holds, so a replay (after a crash or a rebalance) or a
re-sent event (a client retry after a lost acknowledgement) adds nothing twice.

The three metric tables are written by separate inserts, so a crash can fall between them: each
table records the log position of what it holds (src_partition, src_offset, answered by its
`applied` projection without a scan), and is asked separately.

On a cluster, one Distributed insert writes each shard's rows separately, so a crash (or a shard that
is down) can leave a batch on one shard only: there the position held is asked per shard, and a
message is compared with the shard its run lives on (computed as the Distributed table shards it)."""

from __future__ import annotations

from collections import OrderedDict

from runstream.base.clickhouse import ClickHouse, shard_slots
from runstream.store.applied import SINGLE, held_through, run_hash

METRIC_TABLES = ("metrics", "metric_rollup", "metric_summary")
RECENT_EVENT_IDS = 200_000
RUN_SHARDS = 100_000  # run → shard, remembered for this many runs


class MetricDedup:
    def __init__(self, store: ClickHouse) -> None:
        self._store = store
        # (table, partition, shard) → highest offset held
        self._stored_through: dict[tuple[str, int, int], int] = {}
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._slots: list[int] | None = None  # shard per hash slot, on a cluster
        self._run_shards: OrderedDict[str, int] = OrderedDict()

    def _stored(self, table: str, partition: int, shard: int) -> int:
        if (table, partition, shard) not in self._stored_through:
            held = held_through(self._store, table, partition)
            for each in self._shards():
                self._stored_through[table, partition, each] = held.get(each, -1)
        return self._stored_through[table, partition, shard]

    def _shards(self) -> list[int]:
        if self._store.cluster is None:
            return [SINGLE]
        if self._slots is None:
            self._slots = shard_slots(self._store)
        return sorted(set(self._slots))

    def _shard_of(self, run_id: str) -> int:
        if self._store.cluster is None:
            return SINGLE
        shard = self._run_shards.get(run_id)
        if shard is None:
            self._shards()
            assert self._slots is not None
            shard = self._run_shards[run_id] = self._slots[run_hash(self._store, run_id) % len(self._slots)]
            if len(self._run_shards) > RUN_SHARDS:
                self._run_shards.popitem(last=False)
        return shard

    def resent(self, event_id: bytes) -> bool:
        return event_id in self._recent

    def needed(self, partition: int, offset: int, event_id: bytes, run_id: str) -> tuple[bool, ...]:
        """Per table of METRIC_TABLES, whether this message's points still have to go in. A re-sent
        event (an id seen recently) goes nowhere."""
        if self.resent(event_id):
            return (False,) * len(METRIC_TABLES)
        self._recent[event_id] = None
        if len(self._recent) > RECENT_EVENT_IDS:
            self._recent.popitem(last=False)
        shard = self._shard_of(run_id)
        return tuple(offset > self._stored(table, partition, shard) for table in METRIC_TABLES)

    def forget(self, event_ids: list[bytes]) -> None:
        """These events were dropped unwritten: when they are read again, they are not re-sent ones."""
        for event_id in event_ids:
            self._recent.pop(event_id, None)

    def forget_partitions(self) -> None:
        """After partitions move, another instance may have stored more: ask again."""
        self._stored_through.clear()
