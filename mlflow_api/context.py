"""Read-your-writes without tokens: an MLflow read waits, bounded, until the projector applied what
this process last wrote to the run or experiment it reads (a search: everything this process wrote).
A run's own record need not wait: what is not applied yet is laid over it (run_overlay.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from runstream.api.context import WAIT_S, ReadContext
from runstream.base.errors import unavailable
from runstream.eventlog.base import Positions
from runstream.eventlog.write_marks import WriteMarks, run_entity
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api import shapes
from runstream.mlflow_api.run_overlay import RunOverlays
from runstream.store import queries

T = TypeVar("T")


class MlflowContext:
    def __init__(self, reads: ReadContext, marks: WriteMarks) -> None:
        self.reads = reads
        self.marks = marks
        self.overlays = RunOverlays()

    def wrote(self, positions: Positions, events: list[tuple[str, Any]], *entities: str) -> None:
        """Records a write of these events that reached these log positions."""
        for entity in entities:
            self.overlays.record(entity, self.marks.mark(entity)[1], positions, events)
        self.marks.record(positions, *entities)

    async def query(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.reads.query(fn, *args)

    async def _wait(self, wanted: Positions) -> None:
        if wanted and not await self.reads.applied.wait(wanted, WAIT_S):
            raise unavailable("earlier writes are not applied yet; retry later")

    async def settled(self, *entities: str) -> None:
        """Returns once this process's writes to these entities (write_marks names) are readable."""
        await self._wait(self.marks.of(*entities))

    async def settled_all(self) -> None:
        await self._wait(self.marks.latest())

    async def run(self, run_id: str) -> dict[str, Any] | None:
        """The run (store.queries.run's shape) with every write this process made to it."""
        return (await self._run(run_id))[0]

    async def mlflow_run(self, run_id: str) -> dict[str, Any] | None:
        """The run as MLflow's get_run answers it: with its inputs and outputs."""
        found, unseen = await self._run(run_id)
        if found is None:
            return None
        if unseen:  # no inputs of it either
            return shapes.run(found, [])
        return (await self.query(mlflow_queries.runs_with_inputs, [found]))[0]

    async def _run(self, run_id: str) -> tuple[dict[str, Any] | None, bool]:
        """The run, and whether ClickHouse holds nothing of it yet (it was read without asking)."""
        entity = run_entity(run_id)
        wanted, writes = self.marks.mark(entity)
        overlay = self.overlays.get(entity, writes) if wanted else None
        if overlay is not None:
            applied = await run_in_threadpool(self.reads.applied.current)
            if overlay.folds(applied):
                unseen = overlay.unseen(applied)
                found = overlay.apply(None if unseen else await self.query(queries.run, run_id), applied)
                if found is not None:
                    return found, unseen
        await self._wait(wanted)
        return await self.query(queries.run, run_id), False


def _mlflow(request: Request) -> MlflowContext:
    return cast(MlflowContext, request.app.state.mlflow)


# What a route of MLflow's API is given to read with (server/app.py puts it in the app's state).
Mlflow = Annotated[MlflowContext, Depends(_mlflow)]
