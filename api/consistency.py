"""Read-your-writes: a read that carries a write's token waits, bounded, until the projector has
applied the positions in it."""

from __future__ import annotations

import asyncio
import time

from runstream.clickhouse import ClickHouse
from runstream.ingest.log.base import Positions
from runstream.projector.writer import applied_positions

WAIT_S = 10.0
_POLL_S = 0.02


def caught_up(applied: Positions, wanted: Positions) -> bool:
    return all(applied.get(p, -1) >= o for p, o in wanted.items())


async def wait_applied(store: ClickHouse, consumer_group: str, wanted: Positions, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        applied = await asyncio.to_thread(lambda: applied_positions(store.client, consumer_group))
        if caught_up(applied, wanted):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
