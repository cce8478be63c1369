"""MLflow's write endpoints → the same Avro events the SDK emits, appended to the event log. A write
is acknowledged once durable; where MLflow refuses a write (a changed param, a deleted run, a taken
experiment name) this module checks first, against this process's own record of its writes and,
for what it has not seen, ClickHouse. Writes racing from other processes are settled by the
projection's folds (the first param value wins)."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from runstream.base.clickhouse import ClickHouse
from runstream.base.errors import ApiError, invalid, not_found, unavailable
from runstream.eventlog.base import AppendFailed, EventLog
from runstream.eventlog.write_marks import experiment_entity, run_entity
from runstream.mlflow_api import queries as mlflow_queries
from runstream.mlflow_api import shapes
from runstream.mlflow_api.context import MlflowContext
from runstream.mlflow_api.requests import (
    MAX_BATCH_BYTES,
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    CreateExperiment,
    CreateRun,
    DeleteExperimentTag,
    DeleteTag,
    ExperimentRef,
    ExperimentTag,
    LogBatch,
    LogInputs,
    LogMetric,
    LogParam,
    MetricIn,
    RunRef,
    SetTag,
    UpdateExperiment,
    UpdateRun,
    check_batch_limit,
    check_name,
    cut,
    distinct_params,
)
from runstream.mlflow_api.shapes import mlflow_json
from runstream.schemas.codec import encode
from runstream.schemas.events import (
    DEFAULT_EXPERIMENT_ID,
    MetricColumns,
    event,
    experiment_id_for_name,
    metric_batch_fields,
    now_ms,
    partition_key,
)
from runstream.schemas.validation import MAX_PARAM_VALUE, MAX_RUN_TAG_VALUE, InvalidEvent, validate
from runstream.store import queries

MAX_CACHED_RUNS = 10_000
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
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
        self._locks = [asyncio.Lock() for _ in range(_LOCKS)]  # a run's check-then-append is atomic
        self.registry_lock = asyncio.Lock()  # registry changes are rare: one lock for every check-then-append

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
        self.ctx.marks.record(positions, *entities)

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
            await self.ctx.settled(run_entity(run_id))
            found = await self.ctx.query(queries.run, run_id)
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
        found = await self.ctx.query(queries.experiment, experiment_id)
        if found is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return found

    async def active_experiment(self, experiment_id: str) -> dict[str, Any]:
        found = await self.experiment(experiment_id)
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


def ensure_default_experiment(log: EventLog, store: ClickHouse) -> None:
    """MLflow's server always has experiment "0" ("Default"); the client starts runs there when no
    experiment is set. Creating it again is harmless (creation is idempotent)."""
    if queries.experiment(store.client, DEFAULT_EXPERIMENT_ID) is None:
        name, record = event(
            "ExperimentCreated",
            experiment_id=DEFAULT_EXPERIMENT_ID,
            name="Default",
            artifact_location=shapes.default_artifact_location(DEFAULT_EXPERIMENT_ID),
            tags={},
        )
        log.append([(partition_key(name, record), encode(name, record))])


def mlflow_write_router(w: MlflowWriter) -> APIRouter:
    router = APIRouter(tags=["mlflow"])

    def ok() -> Response:
        return mlflow_json({})

    @router.post("/experiments/create")
    async def create_experiment(body: CreateExperiment) -> Response:
        if not body.name:
            raise invalid(f"Invalid experiment name: '{body.name}'")
        await w.check_name_free(body.name)
        experiment_id = await w.new_experiment_id(body.name)
        location = body.artifact_location or shapes.default_artifact_location(experiment_id)
        tags = {t.key: t.value for t in body.tags}
        for key in tags:
            check_name("tag", key)
        created = event(
            "ExperimentCreated", experiment_id=experiment_id, name=body.name, artifact_location=location, tags=tags
        )
        await w.append([created], experiment_entity(experiment_id))
        return mlflow_json({"experiment_id": experiment_id})

    @router.post("/experiments/update")
    async def update_experiment(body: UpdateExperiment) -> Response:
        if (await w.experiment(body.experiment_id))["lifecycle_stage"] != "active":
            raise ApiError(400, "INVALID_STATE", "Cannot rename a non-active experiment.")  # MLflow: a 500
        if not body.new_name:
            raise invalid("The experiment's new name must not be empty")
        await w.check_name_free(body.new_name, "BAD_REQUEST")  # MLflow's code for a rename onto a taken name
        renamed = event("ExperimentRenamed", experiment_id=body.experiment_id, name=body.new_name)
        await w.append([renamed], experiment_entity(body.experiment_id))
        return ok()

    async def set_experiment_lifecycle(experiment_id: str, deleted: bool) -> Response:
        """MLflow deletes (restores) an experiment's runs with it. It looks the experiment up among the
        ones it can leave: deleting a deleted one, or restoring an active one, finds none."""
        if (await w.experiment(experiment_id))["lifecycle_stage"] != ("active" if deleted else "deleted"):
            raise not_found(f"No Experiment with id={experiment_id} exists")
        await w.ctx.settled_all()  # every run this process created in it
        run_ids = await w.ctx.query(mlflow_queries.run_ids, experiment_id, "active" if deleted else "deleted")
        run_event = "RunDeleted" if deleted else "RunRestored"
        events = [event("ExperimentDeleted" if deleted else "ExperimentRestored", experiment_id=experiment_id)]
        events += [event(run_event, run_id=run_id) for run_id in run_ids]
        await w.append(events, experiment_entity(experiment_id), *map(run_entity, run_ids))
        w.forget(run_ids)
        return ok()

    @router.post("/experiments/delete")
    async def delete_experiment(body: ExperimentRef) -> Response:
        if body.experiment_id == DEFAULT_EXPERIMENT_ID:
            raise invalid("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
        return await set_experiment_lifecycle(body.experiment_id, True)

    @router.post("/experiments/restore")
    async def restore_experiment(body: ExperimentRef) -> Response:
        return await set_experiment_lifecycle(body.experiment_id, False)

    @router.post("/experiments/set-experiment-tag")
    async def set_experiment_tag(body: ExperimentTag) -> Response:
        check_name("tag", body.key)
        await w.active_experiment(body.experiment_id)
        tag = event("ExperimentTagSet", experiment_id=body.experiment_id, key=body.key, value=body.value)
        await w.append([tag], experiment_entity(body.experiment_id))
        return ok()

    @router.post("/experiments/delete-experiment-tag")
    async def delete_experiment_tag(body: DeleteExperimentTag) -> Response:
        found = await w.active_experiment(body.experiment_id)
        if body.key not in found["tags"]:
            raise not_found(f"No tag with name: {body.key} in experiment with id {body.experiment_id}")
        deleted = event("ExperimentTagDeleted", experiment_id=body.experiment_id, key=body.key)
        await w.append([deleted], experiment_entity(body.experiment_id))
        return ok()

    @router.post("/runs/create")
    async def create_run(body: CreateRun) -> Response:
        experiment = await w.active_experiment(body.experiment_id)
        tags = {t.key: t.value for t in cut(body.tags, MAX_RUN_TAG_VALUE)}
        for key in tags:
            check_name("tag", key)
        named = tags.get(RUN_NAME_TAG)
        if body.run_name and named and body.run_name != named:
            raise invalid(f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with different values")
        tags[RUN_NAME_TAG] = run_name = body.run_name or named or random_run_name()
        run_id = uuid.uuid4().hex
        parent = tags.get(PARENT_RUN_TAG)
        location = experiment["artifact_location"] or shapes.default_artifact_location(body.experiment_id)
        run = {
            "run_id": run_id,
            "experiment_id": body.experiment_id,
            "run_name": run_name,
            "user_id": body.user_id,
            "start_time": now_ms() if body.start_time is None else body.start_time,
            "artifact_uri": f"{location}/{run_id}/artifacts",
        }
        created = event(
            "RunCreated", **run, tags=tags, parent_run_id=parent if parent and _RUN_ID.match(parent) else None
        )
        await w.append([created], run_entity(run_id))
        info = {**run, "status": "RUNNING", "end_time": None, "lifecycle_stage": "active"}
        w.remember(run_id, RunFacts(deleted=False, info=info))
        response = shapes.run({**info, "metrics": {}, "params": {}, "tags": tags}, [])
        return mlflow_json({"run": response})

    @router.post("/runs/update")
    async def update_run(body: UpdateRun) -> Response:
        run_id = body.id
        async with w.lock(run_id):
            facts = await w.active_run(run_id)
            events = [
                event("RunUpdated", run_id=run_id, status=body.status, end_time=body.end_time, run_name=body.run_name)
            ]
            if body.run_name:
                events.append(event("TagsSet", run_id=run_id, tags={RUN_NAME_TAG: body.run_name}))
            await w.append(events, run_entity(run_id))
            if facts.info is not None:
                changed = {"status": body.status, "end_time": body.end_time, "run_name": body.run_name}
                facts.info = {**facts.info, **{k: v for k, v in changed.items() if v is not None}}
                return mlflow_json({"run_info": shapes.run_info(facts.info)})
        await w.ctx.settled(run_entity(run_id))
        found = await w.ctx.query(queries.run, run_id)
        assert found is not None  # checked above; runs are never removed
        return mlflow_json({"run_info": shapes.run_info(found)})

    async def set_lifecycle(run_id: str, name: str, deleted: bool) -> Response:
        async with w.lock(run_id):
            facts = await w.run(run_id)
            await w.append([event(name, run_id=run_id)], run_entity(run_id))
            facts.deleted = deleted
            facts.info = None
        return ok()

    @router.post("/runs/delete")
    async def delete_run(body: RunRef) -> Response:
        return await set_lifecycle(body.id, "RunDeleted", True)

    @router.post("/runs/restore")
    async def restore_run(body: RunRef) -> Response:
        return await set_lifecycle(body.id, "RunRestored", False)

    @router.post("/runs/log-metric")
    async def log_metric(body: LogMetric) -> Response:
        run_id = body.id
        check_name("metric", body.key)
        await w.active_run(run_id)
        await w.append(metric_events(run_id, [body]), run_entity(run_id))
        return ok()

    @router.post("/runs/log-parameter")
    async def log_param(body: LogParam) -> Response:
        run_id = body.id
        check_name("param", body.key)
        params = {p.key: p.value for p in cut([body], MAX_PARAM_VALUE)}
        async with w.lock(run_id):  # check-then-append, atomic per run
            facts = await w.active_run(run_id)
            events = param_events(run_id, facts, params)
            if events:
                await w.append(events, run_entity(run_id))
                facts.params.update(params)
        return ok()

    @router.post("/runs/set-tag")
    async def set_tag(body: SetTag) -> Response:
        run_id = body.id
        check_name("tag", body.key)
        facts = await w.active_run(run_id)
        tags = {t.key: t.value for t in cut([body], MAX_RUN_TAG_VALUE)}
        await w.append(tag_events(run_id, tags), run_entity(run_id))
        if body.key == RUN_NAME_TAG:
            facts.info = None
        return ok()

    @router.post("/runs/delete-tag")
    async def delete_tag(body: DeleteTag) -> Response:
        run_id = body.id
        await w.active_run(run_id)
        await w.ctx.settled(run_entity(run_id))
        found = await w.ctx.query(queries.run, run_id)
        if found is None or body.key not in found["tags"]:
            raise not_found(f"No tag with name: {body.key} in run with id {run_id}")
        await w.append([event("TagDeleted", run_id=run_id, key=body.key)], run_entity(run_id))
        return ok()

    @router.post("/runs/log-batch")
    async def log_batch(body: LogBatch, request: Request) -> Response:
        size = len(await request.body())
        if size > MAX_BATCH_BYTES:
            raise invalid(f"Batched logging API requests must be at most {MAX_BATCH_BYTES} bytes, got {size}.")
        run_id = body.id
        check_batch_limit("metrics", MAX_METRICS_PER_BATCH, len(body.metrics))
        check_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(body.params))
        check_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(body.tags))
        total = len(body.metrics) + len(body.params) + len(body.tags)
        check_batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, total)
        for kind, items in (("metric", body.metrics), ("param", body.params), ("tag", body.tags)):
            for item in items:
                check_name(kind, item.key)
        params = distinct_params(cut(body.params, MAX_PARAM_VALUE))
        async with w.lock(run_id):  # check-then-append, atomic per run
            facts = await w.active_run(run_id)
            events = param_events(run_id, facts, params)
            if body.tags:
                events += tag_events(run_id, {t.key: t.value for t in cut(body.tags, MAX_RUN_TAG_VALUE)})
                if any(t.key == RUN_NAME_TAG for t in body.tags):
                    facts.info = None
            if body.metrics:
                events += metric_events(run_id, body.metrics)
            if events:  # one append: the batch is durable whole or not at all
                await w.append(events, run_entity(run_id))
                facts.params.update(params)
        return ok()

    @router.post("/runs/log-inputs")
    async def log_inputs(body: LogInputs) -> Response:
        run_id = body.id
        await w.active_run(run_id)
        datasets = [
            {
                "name": d.dataset.name,
                "digest": d.dataset.digest,
                "source_type": d.dataset.source_type,
                "source": d.dataset.source,
                "schema": d.dataset.schema_,
                "profile": d.dataset.profile,
                "tags": {t.key: t.value for t in d.tags},
            }
            for d in body.datasets
        ]
        events = [event("InputsLogged", run_id=run_id, datasets=datasets)] if datasets else []
        if body.models:
            events.append(event("ModelInputsLogged", run_id=run_id, model_ids=[m.model_id for m in body.models]))
        if events:
            await w.append(events, run_entity(run_id))
        return ok()

    return router
