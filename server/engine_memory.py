"""The embedded ClickHouse engine's memory on serve's /metrics: the engine lives in serve's process, so
its allocations and caches are part of that process's resident memory, and only the engine can say
how much (chdb has no system.asynchronous_metrics; system.metrics and system.parts answer)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runstream.base.clickhouse import ClickHouse

# What each figure is, by system.metrics name. The engine's own count (not "corrected" against the
# process's RSS, which a server's asynchronous metrics do and chdb does not).
_METRICS = {
    "MemoryTrackingUncorrected": "tracked",
    "MarkCacheBytes": "mark_cache",
    "PrimaryIndexCacheBytes": "primary_index_cache",
    "UncompressedCacheBytes": "uncompressed_cache",
    "QueryConditionCacheBytes": "query_condition_cache",
}
_PRIMARY_KEYS = "SELECT sum(primary_key_bytes_in_memory_allocated) FROM system.parts WHERE active"
# The engine allocates through its own jemalloc, which holds more than the engine tracks: threads
# report allocations in steps of up to 4 MiB, and freed pages stay resident until jemalloc's
# background threads return them (within ~5 s: its dirty-page decay), so resident - active - metadata
# is about the last 5 s of freed memory.
_ALLOCATOR = re.compile(r"Allocated: (\d+), active: (\d+), metadata: (\d+).*?resident: (\d+)")
_ALLOCATOR_KINDS = ("allocator_allocated", "allocator_active", "allocator_metadata", "allocator_resident")


class EngineMemory(Collector):
    """runstream_engine_memory_bytes{kind=...}, read from the engine at each scrape (register it in
    prometheus_client's REGISTRY, which /metrics serves)."""

    def __init__(self, store: ClickHouse) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "runstream_engine_memory_bytes", "The embedded ClickHouse engine's memory, by kind", labels=["kind"]
        )
        client = self.store.client
        rows = client.query(
            "SELECT metric, value FROM system.metrics WHERE metric IN {names:Array(String)}",
            parameters={"names": list(_METRICS)},
        ).result_rows
        for metric, value in rows:
            family.add_metric([_METRICS[metric]], float(value))
        family.add_metric(["primary_keys"], float(client.query(_PRIMARY_KEYS).result_rows[0][0] or 0))
        stats = client.query("SELECT stats FROM system.jemalloc_stats").result_rows[0][0]
        if found := _ALLOCATOR.search(stats):
            for kind, value in zip(_ALLOCATOR_KINDS, found.groups(), strict=True):
                family.add_metric([kind], float(value))
        yield family
