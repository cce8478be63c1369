"""MLflow's webhooks API, the writes (create, update, delete) → WebhookSaved / WebhookDeleted events
appended to the event log. A save carries the webhook's whole state, so an update reads the webhook
(after this process's earlier webhook writes are applied), changes the fields given, and saves it all;
one lock keeps each read-then-append atomic within the process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from runstream.base.auth import CurrentPrincipal, user_name
from runstream.base.errors import invalid
from runstream.mlflow_api.shapes import mlflow_json
from runstream.mlflow_api.webhook_routes import (
    WEBHOOKS,
    WebhookEvent,
    WebhookReads,
    event_name,
    webhook_shape,
)
from runstream.mlflow_api.writes import MlflowWriter
from runstream.schemas.events import event
from runstream.schemas.validation import WEBHOOK_STATUSES, webhook_name_problem
from runstream.webhooks.targets import RefusedTarget, check_target


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


def mlflow_webhook_write_router(w: MlflowWriter) -> APIRouter:
    router = APIRouter(tags=["mlflow-webhooks"])
    reads = WebhookReads(w.ctx)
    lock = asyncio.Lock()

    async def save(webhook_id: str, state: dict[str, Any], who: str) -> int:
        """Appends the webhook's state; the save's time."""
        saved = event("WebhookSaved", webhook_id=webhook_id, **_checked(state), user=who)
        await w.append([saved], WEBHOOKS)
        return int(saved[1]["header"]["event_time"])

    @router.post("/webhooks")
    async def create_webhook(body: CreateWebhook, principal: CurrentPrincipal) -> Response:
        state = body.model_dump(exclude={"events"}) | {"events": _events(body.events)}
        webhook_id = str(uuid.uuid4())
        async with lock:
            at = await save(webhook_id, state, user_name(principal))
        row = {**state, "webhook_id": webhook_id, "creation_time": at, "last_update_time": at}
        return mlflow_json({"webhook": webhook_shape(row)})

    @router.patch("/webhooks/{webhook_id}")
    async def update_webhook(webhook_id: str, body: UpdateWebhook, principal: CurrentPrincipal) -> Response:
        async with lock:
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
            at = await save(webhook_id, state, user_name(principal))
        return mlflow_json({"webhook": webhook_shape({**row, **state, "last_update_time": at})})

    @router.delete("/webhooks/{webhook_id}")
    async def delete_webhook(webhook_id: str, principal: CurrentPrincipal) -> Response:
        async with lock:
            await reads.row(webhook_id)  # 404 unless it is live
            await w.append([event("WebhookDeleted", webhook_id=webhook_id, user=user_name(principal))], WEBHOOKS)
        return mlflow_json({})

    return router
