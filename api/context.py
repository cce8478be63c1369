"""What every read route needs: run a query on a worker thread, and honour a consistency token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from runstream.artifacts.store import ArtifactStore
from runstream.base.auth import Principal, require
from runstream.base.clickhouse import ClickHouse
from runstream.base.errors import invalid, unavailable
from runstream.eventlog.base import parse_token
from runstream.store import queries
from runstream.store.applied import Applied, PolledApplied

T = TypeVar("T")
After = Annotated[
    str | None,
    Query(description="Consistency token from a write: answer only once that write is applied."),
]


View = Literal["active", "deleted", "all"]


WAIT_S = 10.0  # how long a read waits for the writes it must see before answering 503


class ReadContext:
    def __init__(self, store: ClickHouse, consumer_group: str, applied: Applied | None = None) -> None:
        self.store = store
        self.consumer_group = consumer_group
        self.applied = applied or PolledApplied(store, consumer_group)

    async def query(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs fn(client, *args) on a worker thread (the client is per thread: taken there)."""
        return await run_in_threadpool(lambda: fn(self.store.client, *args))

    async def consistent(self, after: str | None) -> None:
        if not after:
            return
        try:
            wanted = parse_token(after)
        except ValueError as exc:
            raise invalid("malformed consistency token") from exc
        if not await self.applied.wait(wanted, WAIT_S):
            raise unavailable("the write is not applied yet; retry later")

    async def allow_runs(self, principal: Principal | None, run_ids: list[str]) -> None:
        """403 unless the user may read the experiments of these runs (runs that do not exist pass:
        the route answers 404 or nothing for them)."""
        if principal is not None:
            owners = await self.query(queries.run_experiments, run_ids)
            require(principal, "read", owners.values())


def _reads(request: Request) -> ReadContext:
    return cast(ReadContext, request.app.state.reads)


def _artifacts(request: Request) -> ArtifactStore:
    return cast(ArtifactStore, request.app.state.artifacts)


def _artifact_max_size(request: Request) -> int:
    return cast(int, request.app.state.artifact_max_size)


# What a read route is given (server/app.py puts it in the app's state): the read context, where the
# artifact routes keep files and the largest file they take.
Reads = Annotated[ReadContext, Depends(_reads)]
Artifacts = Annotated[ArtifactStore, Depends(_artifacts)]
ArtifactMaxSize = Annotated[int, Depends(_artifact_max_size)]
