"""The HTTP gateway's native write endpoint: framed Avro events in, log positions out. A request is
acknowledged only once every event in it is durable in the log; a request with any bad event is
refused whole (400), so nothing of it is half-written."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

from runstream.base.auth import CurrentPrincipal, require
from runstream.base.clickhouse import ClickHouse
from runstream.base.errors import ApiError, invalid, unavailable
from runstream.base.responses import json_response
from runstream.eventlog.base import AppendFailed, EventLog, format_token
from runstream.eventlog.write_marks import WriteMarks, experiment_entity, run_entity
from runstream.schemas.codec import UndecodableEvent, decode
from runstream.schemas.events import partition_key
from runstream.schemas.framing import CONTENT_TYPE, MAX_EVENTS, unframe
from runstream.schemas.validation import InvalidEvent, validate
from runstream.store.queries import run_experiments

MAX_BODY_BYTES = 64 * 1024 * 1024

EVENTS = Counter("runstream_gateway_events", "Events written to the log (acknowledged)")
REFUSED = Counter("runstream_gateway_refused_requests", "Write requests refused whole (4xx)")
REQUEST_EVENTS = Histogram(
    "runstream_gateway_request_events", "Events per accepted request", buckets=(1, 10, 100, 1_000, 10_000)
)
APPEND_SECONDS = Histogram("runstream_gateway_append_seconds", "Time until the log acknowledged a request's events")


@dataclass
class Checked:
    keyed: list[tuple[str, bytes]]  # (partition key, message) per event
    experiments: set[str]  # experiments the events name
    runs: set[str]  # runs whose events name no experiment
    created: dict[str, str]  # run → experiment, for the runs these events create


def keyed_events(body: bytes) -> Checked:
    """Checks every event, or raises a 400."""
    try:
        messages = unframe(body)
    except ValueError as exc:
        raise invalid(f"malformed body: {exc}") from exc
    if len(messages) > MAX_EVENTS:
        raise ApiError(413, "INVALID_PARAMETER_VALUE", f"more than {MAX_EVENTS} events in one request")
    checked = Checked([], set(), set(), {})
    for i, message in enumerate(messages):
        try:
            name, record = decode(message)
            validate(name, record)
        except (UndecodableEvent, InvalidEvent) as exc:
            raise invalid(f"event {i}: {exc}") from exc
        checked.keyed.append((partition_key(name, record), message))
        if "experiment_id" in record:
            checked.experiments.add(record["experiment_id"])
            if name == "RunCreated":
                checked.created[record["run_id"]] = record["experiment_id"]
        elif "run_id" in record:
            checked.runs.add(record["run_id"])
    return checked


class RunOwners:
    """Which experiment each run written to belongs to: the store's answer first (so naming another
    experiment in a RunCreated never claims an existing run), then runs created through this gateway
    and not projected yet. A run found in neither counts as None: the user's default access decides."""

    def __init__(self, store: ClickHouse | None, remembered: int = 100_000) -> None:
        self._store = store
        self._created: OrderedDict[str, str] = OrderedDict()
        self._remembered = remembered

    def of(self, checked: Checked) -> list[str | None]:
        touched = list(checked.runs | checked.created.keys())
        stored = run_experiments(self._store.client, touched) if self._store is not None and touched else {}
        for run_id, experiment_id in checked.created.items():
            if run_id not in stored:
                self._created[run_id] = experiment_id
                self._created.move_to_end(run_id)
        while len(self._created) > self._remembered:
            self._created.popitem(last=False)
        owners: list[str | None] = [*checked.experiments, *stored.values()]
        for run_id in touched:
            if run_id not in stored:
                owners.append(self._created.get(run_id))
        return owners


@dataclass
class Gateway:
    """What the write route is given (server/app.py puts it in the app's state): the log, who owns the
    runs written to, and `marks`, the record of what each write touched, so that MLflow's API in this
    process reads a run the SDK just wrote to."""

    log: EventLog
    owners: RunOwners
    marks: WriteMarks | None = None


def _gateway(request: Request) -> Gateway:
    return cast(Gateway, request.app.state.gateway)


routes = APIRouter(prefix="/api/v1", tags=["write"])


@routes.post(
    "/events",
    summary="Append events (framed Avro single-object messages) to the log",
    openapi_extra={"requestBody": {"content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def post_events(
    gateway: Annotated[Gateway, Depends(_gateway)], request: Request, principal: CurrentPrincipal
) -> Response:
    # With auth on, a write needs write access to every experiment it touches.
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "INVALID_PARAMETER_VALUE", f"body larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "INVALID_PARAMETER_VALUE", f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        checked = await run_in_threadpool(keyed_events, bytes(body))
        if principal is not None:
            require(principal, "write", await run_in_threadpool(gateway.owners.of, checked))
    except ApiError:
        REFUSED.inc()
        raise
    keyed = checked.keyed
    try:
        with APPEND_SECONDS.time():
            positions = await run_in_threadpool(gateway.log.append, keyed)
    except AppendFailed as exc:
        raise unavailable(f"the event log did not acknowledge the write: {exc}") from exc
    if gateway.marks is not None:
        runs = map(run_entity, checked.runs | checked.created.keys())
        gateway.marks.record(positions, *runs, *map(experiment_entity, checked.experiments))
    EVENTS.inc(len(keyed))
    REQUEST_EVENTS.observe(len(keyed))
    return json_response({"events": len(keyed), "token": format_token(positions)})
