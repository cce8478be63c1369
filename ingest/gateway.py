"""The HTTP gateway's native write endpoint: framed Avro events in, log positions out. A request is
acknowledged only once every event in it is durable in the log; a request with any bad event is
refused whole (400), so nothing of it is half-written."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

from ingest.framing import CONTENT_TYPE, unframe
from ingest.log.base import AppendFailed, EventLog, format_token
from runstream.errors import ApiError, invalid, unavailable
from runstream.responses import json_response
from schemas.codec import UndecodableEvent, decode
from schemas.events import partition_key
from schemas.validation import InvalidEvent, validate

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_EVENTS = 10_000

EVENTS = Counter("runstream_gateway_events", "Events written to the log (acknowledged)")
REFUSED = Counter("runstream_gateway_refused_requests", "Write requests refused whole (4xx)")
REQUEST_EVENTS = Histogram(
    "runstream_gateway_request_events", "Events per accepted request", buckets=(1, 10, 100, 1_000, 10_000)
)
APPEND_SECONDS = Histogram("runstream_gateway_append_seconds", "Time until the log acknowledged a request's events")


def keyed_events(body: bytes) -> list[tuple[str, bytes]]:
    """Checks every event; returns (partition key, message) pairs or raises a 400."""
    try:
        messages = unframe(body)
    except ValueError as exc:
        raise invalid(f"malformed body: {exc}") from exc
    if len(messages) > MAX_EVENTS:
        raise ApiError(413, "INVALID_PARAMETER_VALUE", f"more than {MAX_EVENTS} events in one request")
    keyed = []
    for i, message in enumerate(messages):
        try:
            name, record = decode(message)
            validate(name, record)
        except (UndecodableEvent, InvalidEvent) as exc:
            raise invalid(f"event {i}: {exc}") from exc
        keyed.append((partition_key(name, record), message))
    return keyed


def gateway_router(log: EventLog) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["write"])

    @router.post(
        "/events",
        summary="Append events (framed Avro single-object messages) to the log",
        openapi_extra={"requestBody": {"content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def post_events(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ApiError(413, "INVALID_PARAMETER_VALUE", f"body larger than {MAX_BODY_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise ApiError(413, "INVALID_PARAMETER_VALUE", f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            keyed = await run_in_threadpool(keyed_events, bytes(body))
        except ApiError:
            REFUSED.inc()
            raise
        try:
            with APPEND_SECONDS.time():
                positions = await run_in_threadpool(log.append, keyed)
        except AppendFailed as exc:
            raise unavailable(f"the event log did not acknowledge the write: {exc}") from exc
        EVENTS.inc(len(keyed))
        REQUEST_EVENTS.observe(len(keyed))
        return json_response({"events": len(keyed), "token": format_token(positions)})

    return router
