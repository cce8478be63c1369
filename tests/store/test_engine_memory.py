"""The embedded engine's allocator: after a large query it keeps the freed pages resident (chdb runs
jemalloc without its background thread), and serve's purge returns them."""

from __future__ import annotations

import pytest

from runstream.server.engine_memory import AllocatorPurge, allocator_stats
from tests.conftest import new_store

MIB = 1 << 20


def held(stats: dict[str, int]) -> int:
    """Resident pages beyond what is handed out and the allocator's own bookkeeping."""
    return stats["allocator_resident"] - stats["allocator_active"] - stats["allocator_metadata"]


def test_purge_returns_the_pages_a_query_freed(request: pytest.FixtureRequest) -> None:
    store = new_store(request, "embedded")
    client = store.client
    # A hash aggregation of 3M string keys: a few hundred MiB, all freed when it ends.
    client.command(
        "SELECT count() FROM (SELECT number % 3000000 AS k, any(toString(number)) FROM numbers(6000000) GROUP BY k)"
    )
    assert held(allocator_stats(client)) > 48 * MIB
    AllocatorPurge(store).purge()
    assert held(allocator_stats(client)) < 16 * MIB
