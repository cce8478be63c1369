"""How MLflow's writes become events: the same Avro events the SDK emits, appended to the event log.
A write is acknowledged once durable; where MLflow refuses a write (a changed param, a deleted run, a
taken experiment name) the writer checks first, against this process's own record of its writes and,
for what it has not seen, ClickHouse. Writes racing from other processes are settled by the
projection's folds (the first param value wins). The routes are in the entity modules beside this."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

import numpy as np
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from runstream.base.clickhouse import ClickHouse
from runstream.base.errors import ApiError, invalid, not_found, unavailable
from runstream.eventlog.base import AppendFailed, EventLog
from runstream.eventlog.write_marks import WriteMarks, experiment_entity
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api import shapes
from runstream.mlflow_api.context import MlflowContext
from runstream.mlflow_api.requests import (
    MetricIn,
)
from runstream.schemas.codec import encode
from runstream.schemas.events import (
    DEFAULT_EXPERIMENT_ID,
    MetricColumns,
    event,
    experiment_id_for_name,
    metric_batch_fields,
    partition_key,
)
from runstream.schemas.validation import InvalidEvent, validate
from runstream.store import queries

MAX_CACHED_RUNS = 10_000
# How long the writes into an experiment (a run's creation) trust what they read of it. Another
# process's deletion is refused from after this (plus the projector's lag); this process's at once.
EXPERIMENT_TRUSTED_S = 1.0
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
_LOCKS = 64

Event = tuple[str, dict[str, Any]]


def already_exists(message: str) -> ApiError:
    return ApiError(400, "RESOURCE_ALREADY_EXISTS", message)


def metric_batch(run_id: str, metrics: list[MetricIn]) -> Event:
    keys = list(dict.fromkeys(m.key for m in metrics))
    index = {k: i for i, k in enumerate(keys)}
    columns = MetricColumns(
        run_id=run_id,
        rank=0,
        node="",
        keys=keys,
        key_index=np.array([index[m.key] for m in metrics], np.uint16),
        values=np.array([m.value for m in metrics], np.float64),
        steps=np.array([m.step for m in metrics], np.int64),
        timestamps=np.array([m.timestamp for m in metrics], np.int64),
    )
    return event("MetricBatch", **metric_batch_fields(columns))


def metric_events(run_id: str, metrics: list[MetricIn]) -> list[Event]:
    """The run's MetricBatch, and for the points logged for a logged model (MLflow 3) an event per
    model listing them, so the model shows its metrics and model searches can filter on them."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for m in metrics:
        if m.model_id:
            point = {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
            datasets = {"dataset_name": m.dataset_name or "", "dataset_digest": m.dataset_digest or ""}
            by_model.setdefault(m.model_id, []).append(point | datasets)
    models = [event("LoggedModelMetricsLogged", run_id=run_id, model_id=k, metrics=v) for k, v in by_model.items()]
    return [metric_batch(run_id, metrics), *models]


_ADJECTIVES = [
    "able",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "gentle",
    "grand",
    "happy",
    "keen",
    "lucky",
    "merry",
    "noble",
    "proud",
    "quick",
    "wise",
]
_NOUNS = [
    "ant",
    "bat",
    "bear",
    "crab",
    "deer",
    "duck",
    "eel",
    "fox",
    "goat",
    "hawk",
    "koi",
    "lark",
    "mole",
    "owl",
    "ram",
    "seal",
]


def random_run_name() -> str:
    """MLflow's style of name for a run created without one, e.g. bold-fox-123."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"


@dataclass
class RunFacts:
    """What the write checks need of a run."""

    deleted: bool
    params: dict[str, str] = field(default_factory=dict)
    # The run's info as this process created and changed it (None: not known here): update_run answers
    # from it instead of waiting for the projector to apply the update and reading the run back.
    info: dict[str, Any] | None = None


class MlflowWriter:
    def __init__(self, log: EventLog, ctx: MlflowContext) -> None:
        self.log = log
        self.ctx = ctx
        self._runs: OrderedDict[str, RunFacts] = OrderedDict()  # most recently used last
        # By experiment: when it was read, this process's writes to it by then, what was read.
        self._experiments: dict[str, tuple[float, int, dict[str, Any]]] = {}
        self._locks = [asyncio.Lock() for _ in range(_LOCKS)]  # a run's check-then-append is atomic
        self.registry_lock = asyncio.Lock()  # registry changes are rare: one lock for every check-then-append
        self.webhook_lock = asyncio.Lock()  # so are webhook changes

    def lock(self, run_id: str) -> asyncio.Lock:
        return self._locks[hash(run_id) % _LOCKS]

    async def append(self, events: list[Event], *entities: str) -> None:
        messages = []
        for name, record in events:
            try:
                validate(name, record)
                message = encode(name, record)
            except (InvalidEvent, ValueError, OverflowError, TypeError) as exc:  # fastavro's refusals
                raise invalid(str(exc)) from exc
            messages.append((partition_key(name, record), message))
        try:
            positions = await run_in_threadpool(self.log.append, messages)
        except AppendFailed as exc:
            raise unavailable(f"the event log did not acknowledge the write: {exc}") from exc
        self.ctx.wrote(positions, events, *entities)

    def remember(self, run_id: str, facts: RunFacts) -> None:
        self._runs[run_id] = facts
        self._runs.move_to_end(run_id)
        if len(self._runs) > MAX_CACHED_RUNS:
            self._runs.popitem(last=False)

    def forget(self, run_ids: Iterable[str]) -> None:
        """Their facts changed elsewhere: the next check reads them back."""
        for run_id in run_ids:
            self._runs.pop(run_id, None)

    async def run(self, run_id: str) -> RunFacts:
        facts = self._runs.get(run_id)
        if facts is None:
            found = await self.ctx.run(run_id)
            if found is None:
                raise not_found(f"Run with id={run_id} not found")
            facts = RunFacts(found["lifecycle_stage"] == "deleted", found["params"])
        self.remember(run_id, facts)
        return facts

    async def active_run(self, run_id: str) -> RunFacts:
        facts = await self.run(run_id)
        if facts.deleted:
            raise invalid(f"The run {run_id} must be in the 'active' state. Current state is deleted.")
        return facts

    async def experiment(self, experiment_id: str) -> dict[str, Any]:
        await self.ctx.settled(experiment_entity(experiment_id))
        found = await self.ctx.query(queries.experiment_without_tags, experiment_id)
        if found is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return found

    async def active_experiment(self, experiment_id: str) -> dict[str, Any]:
        writes = self.ctx.marks.mark(experiment_entity(experiment_id))[1]
        now = time.monotonic()
        read_at, written, found = self._experiments.get(experiment_id, (-EXPERIMENT_TRUSTED_S, -1, {}))
        if now - read_at >= EXPERIMENT_TRUSTED_S or written != writes:
            found = await self.experiment(experiment_id)
            self._experiments = {k: v for k, v in self._experiments.items() if now - v[0] < EXPERIMENT_TRUSTED_S}
            self._experiments[experiment_id] = (now, writes, found)
        if found["lifecycle_stage"] != "active":
            raise invalid(f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted.")
        return found

    async def check_name_free(self, name: str, error_code: str = "RESOURCE_ALREADY_EXISTS") -> None:
        await self.ctx.settled_all()
        found = await self.ctx.query(mlflow_queries.experiment_by_name, name)
        if found is not None:
            state = " in deleted state" if found["lifecycle_stage"] == "deleted" else ""
            raise ApiError(400, error_code, f"Experiment(name={name}) already exists{state}.")

    async def new_experiment_id(self, name: str) -> str:
        """The SDK's id for the name (so both name the same experiment), unless a renamed experiment
        holds it; then the next free id derived from the name."""
        for attempt in range(100):
            candidate = experiment_id_for_name(name if attempt == 0 else f"{name}\0{attempt}")
            if await self.ctx.query(queries.experiment, candidate) is None:
                return candidate
        raise unavailable("no free experiment id for this name")


def param_events(run_id: str, facts: RunFacts, params: dict[str, str]) -> list[Event]:
    """The ParamsLogged event for params not logged yet; refuses changed values (MLflow's rule)."""
    changed = {k: v for k, v in params.items() if k in facts.params and facts.params[k] != v}
    if changed:
        old = {k: facts.params[k] for k in changed}
        raise invalid(
            f"Changing param values is not allowed. Params were already logged='{old}' for run ID='{run_id}'. "
            f"Attempted logging new values '{changed}'."
        )
    new = {k: v for k, v in params.items() if k not in facts.params}
    return [event("ParamsLogged", run_id=run_id, params=new)] if new else []


def tag_events(run_id: str, tags: dict[str, str]) -> list[Event]:
    """Tags, and the run name with them when mlflow.runName is among them (MLflow keeps both equal)."""
    events = [event("TagsSet", run_id=run_id, tags=tags)]
    if RUN_NAME_TAG in tags:
        events.append(event("RunUpdated", run_id=run_id, status=None, end_time=None, run_name=tags[RUN_NAME_TAG]))
    return events


def ensure_default_experiment(log: EventLog, store: ClickHouse, marks: WriteMarks) -> None:
    """MLflow's server always has experiment "0" ("Default"); the client starts runs there when no
    experiment is set. Creating it again is harmless (creation is idempotent). Recorded as this
    process's write, so a run started in it at once waits for it instead of finding no experiment."""
    if queries.experiment(store.client, DEFAULT_EXPERIMENT_ID) is None:
        name, record = event(
            "ExperimentCreated",
            experiment_id=DEFAULT_EXPERIMENT_ID,
            name="Default",
            artifact_location=shapes.default_artifact_location(DEFAULT_EXPERIMENT_ID),
            tags={},
        )
        marks.record(
            log.append([(partition_key(name, record), encode(name, record))]), experiment_entity(DEFAULT_EXPERIMENT_ID)
        )


def _writer(request: Request) -> MlflowWriter:
    return cast(MlflowWriter, request.app.state.mlflow_writer)


# What a write route of MLflow's API is given (server/app.py puts it in the app's state).
Writer = Annotated[MlflowWriter, Depends(_writer)]
