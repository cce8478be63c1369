"""The embedded ClickHouse engine's memory on serve's /metrics: the engine lives in serve's process, so
its allocations and caches are part of that process's resident memory, and only the engine can say
how much (chdb has no system.asynchronous_metrics; system.metrics and system.parts answer)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator

from clickhouse_connect.driver.client import Client
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runstream.base.clickhouse import ClickHouse

log = logging.getLogger(__name__)

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
# report allocations in steps of up to 4 MiB, and freed pages stay resident until jemalloc purges them.
_ALLOCATOR = re.compile(r"Allocated: (\d+), active: (\d+), metadata: (\d+).*?resident: (\d+)")
_ALLOCATOR_KINDS = ("allocator_allocated", "allocator_active", "allocator_metadata", "allocator_resident")

# chdb's jemalloc runs without its background thread, so the pages it would return after a query
# are returned only when later allocations happen to trigger it: after one large GROUP BY on an idle
# serve, 80-170 MiB stay resident; under bench.soak's load 10-43 MiB at any minute. A purge takes
# 2-15 ms and returns them all.
PURGE_EVERY_S = 60.0
PURGE_SECONDS = Histogram(
    "runstream_engine_purge_seconds", "Time to return the embedded engine's free pages to the system"
)


def allocator_stats(client: Client) -> dict[str, int]:
    """The engine allocator's figures in bytes, by kind (empty where the engine has no such table)."""
    stats = client.query("SELECT stats FROM system.jemalloc_stats").result_rows[0][0]
    found = _ALLOCATOR.search(stats)
    return dict(zip(_ALLOCATOR_KINDS, map(int, found.groups()), strict=True)) if found else {}


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
        for kind, value in allocator_stats(client).items():
            family.add_metric([kind], float(value))
        yield family


class AllocatorPurge:
    """Every `every_s`, the engine's allocator returns the pages nothing uses to the system (run it on
    a thread of its own; `stop` ends it)."""

    def __init__(self, store: ClickHouse, every_s: float = PURGE_EVERY_S) -> None:
        self.store = store
        self.every_s = every_s
        self._stop = threading.Event()

    def purge(self) -> None:
        with PURGE_SECONDS.time():
            self.store.client.command("SYSTEM JEMALLOC PURGE")

    def run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.purge()
            except Exception:  # memory housekeeping: a failed purge is retried at the next tick
                log.warning("the embedded engine's allocator purge failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
