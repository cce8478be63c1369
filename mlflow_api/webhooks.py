"""MLflow's webhooks: list, get and a test send; create, update, delete. Webhooks are read from
ClickHouse once this process's webhook writes are applied; their secret is never answered. The
deliveries are webhooks/'s."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from runstream.base.auth import CurrentPrincipal, user_name
from runstream.base.errors import invalid
from runstream.mlflow_api.context import Mlflow
from runstream.mlflow_api.shapes import mlflow_json
from runstream.mlflow_api.webhook_reads import (
    WEBHOOKS,
    ListWebhooks,
    TestWebhook,
    WebhookEvent,
    Webhooks,
    _sender,
    event_name,
    webhook_shape,
)
from runstream.mlflow_api.writer import MlflowWriter, Writer
from runstream.schemas.events import event
from runstream.schemas.validation import WEBHOOK_STATUSES, webhook_name_problem
from runstream.store.search.paging import decode_page_token, encode_page_token
from runstream.store.webhooks import webhooks_page
from runstream.webhooks.payloads import EXAMPLES
from runstream.webhooks.send import Sender, Target
from runstream.webhooks.targets import RefusedTarget, check_target

read_routes = APIRouter(tags=["mlflow-webhooks"])
write_routes = APIRouter(tags=["mlflow-webhooks"])


class CreateWebhook(BaseModel):
    name: str
    url: str
    events: list[WebhookEvent]
    description: str = ""
    secret: str = ""
    status: str = "ACTIVE"


class UpdateWebhook(BaseModel):
    """Fields left out stay as they are; as in MLflow, an empty name, URL or event list does too."""

    name: str = ""
    description: str | None = None
    url: str = ""
    events: list[WebhookEvent] | None = None
    secret: str | None = None
    status: str | None = None


def _events(given: list[WebhookEvent]) -> list[str]:
    """Once each, in MLflow's order (by entity, then action): what its answers and its test send use."""
    return sorted({event_name(e) for e in given})


def _checked(state: dict[str, Any]) -> dict[str, Any]:
    """400 for what MLflow refuses: a bad name, URL, event or status; no events."""
    problem = webhook_name_problem(state["name"])
    if problem is not None:
        raise invalid(problem)
    try:
        check_target(state["url"])
    except RefusedTarget as exc:
        raise invalid(str(exc)) from exc
    if not state["events"]:
        raise invalid("Webhook events must be a non-empty list of WebhookEvent objects.")
    if state["status"] not in WEBHOOK_STATUSES:
        raise invalid(f"Invalid webhook status {state['status']!r}; valid: {', '.join(WEBHOOK_STATUSES)}.")
    return state


async def save(w: MlflowWriter, webhook_id: str, state: dict[str, Any], who: str) -> int:
    """Appends the webhook's state; the save's time."""
    saved = event("WebhookSaved", webhook_id=webhook_id, **_checked(state), user=who)
    await w.append([saved], WEBHOOKS)
    return int(saved[1]["header"]["event_time"])


@read_routes.get("/webhooks")
async def list_webhooks(ctx: Mlflow, query: Annotated[ListWebhooks, Query()]) -> Response:
    await ctx.settled(WEBHOOKS)
    offset = decode_page_token(query.page_token)  # 400 for a token it did not make
    rows = await ctx.query(webhooks_page, offset, query.max_results + 1)
    token = encode_page_token(offset + query.max_results) if len(rows) > query.max_results else None
    webhooks = [webhook_shape(r) for r in rows[: query.max_results]]
    return mlflow_json({"webhooks": webhooks, "next_page_token": token})


@read_routes.get("/webhooks/{webhook_id}")
async def get_webhook(reads: Webhooks, webhook_id: str) -> Response:
    return mlflow_json({"webhook": webhook_shape(await reads.row(webhook_id))})


@read_routes.post("/webhooks/{webhook_id}/test")
async def test_webhook(
    reads: Webhooks, sender: Annotated[Sender, Depends(_sender)], webhook_id: str, body: TestWebhook | None = None
) -> Response:
    """One send of MLflow's example payload of the event (the webhook's first, unless named), not
    retried: the result is the receiver's first answer."""
    row = await reads.row(webhook_id)
    event = event_name(body.event) if body is not None and body.event is not None else row["events"][0]
    target = Target(row["webhook_id"], row["url"], row["secret"])
    outcome = await run_in_threadpool(sender.send, target, event, EXAMPLES[event], str(uuid4()), False)
    result: dict[str, Any] = {"success": outcome.success}
    if outcome.status is not None:
        result |= {"response_status": outcome.status, "response_body": outcome.body}
    if outcome.error is not None:
        result["error_message"] = f"Failed to test webhook: {outcome.error}"
    return mlflow_json({"result": result})


@write_routes.post("/webhooks")
async def create_webhook(w: Writer, body: CreateWebhook, principal: CurrentPrincipal) -> Response:
    state = body.model_dump(exclude={"events"}) | {"events": _events(body.events)}
    webhook_id = str(uuid.uuid4())
    async with w.webhook_lock:
        at = await save(w, webhook_id, state, user_name(principal))
    row = {**state, "webhook_id": webhook_id, "creation_time": at, "last_update_time": at}
    return mlflow_json({"webhook": webhook_shape(row)})


@write_routes.patch("/webhooks/{webhook_id}")
async def update_webhook(
    w: Writer, reads: Webhooks, webhook_id: str, body: UpdateWebhook, principal: CurrentPrincipal
) -> Response:
    async with w.webhook_lock:
        row = await reads.row(webhook_id)
        changes: dict[str, Any] = {
            "name": body.name or None,
            "url": body.url or None,
            "events": _events(body.events) if body.events else None,
            "description": body.description,
            "secret": body.secret,
            "status": body.status,
        }
        state = {k: row[k] for k in ("name", "description", "url", "events", "secret", "status")}
        state |= {k: v for k, v in changes.items() if v is not None}
        at = await save(w, webhook_id, state, user_name(principal))
    return mlflow_json({"webhook": webhook_shape({**row, **state, "last_update_time": at})})


@write_routes.delete("/webhooks/{webhook_id}")
async def delete_webhook(reads: Webhooks, w: Writer, webhook_id: str, principal: CurrentPrincipal) -> Response:
    async with w.webhook_lock:
        await reads.row(webhook_id)  # 404 unless it is live
        await w.append([event("WebhookDeleted", webhook_id=webhook_id, user=user_name(principal))], WEBHOOKS)
    return mlflow_json({})
