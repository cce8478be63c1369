"""Where a projector stands: per log partition, the last offset its tables hold. Read-your-writes and
webhook deliveries wait on it.

Any process can read it from ClickHouse (projector_progress), polling while it waits. A process that
runs the projector itself (`runstream serve`) is told by the projector after each commit instead, so
its waiters wake as soon as a batch is applied and ClickHouse is not asked at all."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Protocol

from clickhouse_connect.driver.client import Client

from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.base import Positions

POLL_S = 0.02  # between reads of projector_progress while waiting
SINGLE = 0  # the shard of every row on one server


def held_through(store: ClickHouse, table: str, partition: int) -> dict[int, int]:
    """Per shard (SINGLE on one server), the highest log offset of `partition` that a metric table
    holds: the shape of its `applied` projection, so no scan."""
    by = "src_partition" if store.cluster is None else "src_partition, _shard_num"
    rows = store.client.query(
        f"SELECT max(src_offset), {by} FROM {table} WHERE src_partition = {{p:UInt32}} GROUP BY {by}",
        parameters={"p": partition},
    ).result_rows
    return {int(row[2]) if len(row) > 2 else SINGLE: int(row[0]) for row in rows}


def run_hash(store: ClickHouse, run_id: str) -> int:
    """The hash the Distributed tables shard a run's rows by."""
    return int(store.client.query("SELECT cityHash64({r:String})", parameters={"r": run_id}).result_rows[0][0])


def applied_positions(client: Client, consumer_group: str) -> Positions:
    """Per partition, the last offset the tables hold of what `consumer_group` projected."""
    result = client.query(
        "SELECT partition, max(offset) FROM projector_progress WHERE consumer_group = {g:String} GROUP BY partition",
        parameters={"g": consumer_group},
    )
    return {int(p): int(o) for p, o in result.result_rows}


def caught_up(applied: Positions, wanted: Positions) -> bool:
    return all(applied.get(p, -1) >= o for p, o in wanted.items())


class Applied(Protocol):
    def current(self) -> Positions: ...

    async def wait(self, wanted: Positions, timeout: float) -> bool:
        """True once every wanted position is applied; False if `timeout` seconds pass first."""
        ...


class PolledApplied:
    """A projector in another process: its progress as ClickHouse records it."""

    def __init__(self, store: ClickHouse, consumer_group: str) -> None:
        self.store = store
        self.consumer_group = consumer_group

    def current(self) -> Positions:
        return applied_positions(self.store.client, self.consumer_group)

    async def wait(self, wanted: Positions, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not caught_up(await asyncio.to_thread(self.current), wanted):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True


class AppliedWatch:
    """The projector of this process: `advance` is called from its thread after each commit, and
    wakes the waiters it satisfies on their own event loops."""

    def __init__(self, start: Positions) -> None:
        self._applied = dict(start)
        self._lock = threading.Lock()
        self._waiters: list[tuple[Positions, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def current(self) -> Positions:
        with self._lock:
            return dict(self._applied)

    def awaited(self) -> bool:
        """Whether a waiter is waiting (the projector writes what it holds at once for it)."""
        return bool(self._waiters)

    def advance(self, positions: Positions) -> None:
        with self._lock:
            for partition, offset in positions.items():
                self._applied[partition] = max(self._applied.get(partition, -1), offset)
            woken = [w for w in self._waiters if caught_up(self._applied, w[0])]
            self._waiters = [w for w in self._waiters if w not in woken]
        for _, loop, future in woken:
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: nobody left to wake
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, wanted: Positions, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (wanted, loop, future)
        with self._lock:
            if caught_up(self._applied, wanted):
                return True
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:  # timed out, or cancelled with its request: forgotten either way
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
