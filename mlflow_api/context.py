"""Read-your-writes without tokens: an MLflow read waits, bounded, until the projector applied what
this process last wrote to the run or experiment it reads (a search: everything this process wrote)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request

from runstream.api.context import WAIT_S, ReadContext
from runstream.base.errors import unavailable
from runstream.eventlog.base import Positions
from runstream.eventlog.write_marks import WriteMarks

T = TypeVar("T")


class MlflowContext:
    def __init__(self, reads: ReadContext, marks: WriteMarks) -> None:
        self.reads = reads
        self.marks = marks

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


def _mlflow(request: Request) -> MlflowContext:
    return cast(MlflowContext, request.app.state.mlflow)


# What a route of MLflow's API is given to read with (server/app.py puts it in the app's state).
Mlflow = Annotated[MlflowContext, Depends(_mlflow)]
