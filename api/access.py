"""Access to one run's routes (`/runs/{run_id}/...`) when auth is on: the run's experiment, read from
ClickHouse when the role has it, decides; a run the role cannot place counts as an unknown experiment
(the user's default access)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi.concurrency import run_in_threadpool

from runstream.base.auth import Access, CurrentPrincipal, require
from runstream.base.clickhouse import ClickHouse
from runstream.store.queries import run_experiments


def run_access(store: ClickHouse | None, wanted: Access) -> Callable[[str, CurrentPrincipal], Awaitable[None]]:
    async def check(run_id: str, principal: CurrentPrincipal) -> None:
        if principal is None:
            return
        owners = await run_in_threadpool(run_experiments, store.client, [run_id]) if store is not None else {}
        require(principal, wanted, owners.values() if owners else [None])

    return check
