"""MLflow's webhooks as they are read: from ClickHouse, once this process's webhook writes are applied
(the routes are in webhooks.py beside this; the deliveries in webhooks/)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, Field

from runstream.base.errors import ApiError, invalid, not_found
from runstream.mlflow_api.context import Mlflow, MlflowContext
from runstream.schemas.validation import WEBHOOK_EVENTS
from runstream.store.webhooks import webhook_row
from runstream.webhooks.send import Sender

WEBHOOKS = "webhooks"  # the write_marks entity of every webhook write
MAX_WEBHOOK_RESULTS = 1000


class WebhookEvent(BaseModel):
    """MLflow's WebhookEvent as its JSON spells it: {"entity": "MODEL_VERSION", "action": "CREATED"}."""

    entity: str
    action: str


def event_name(e: WebhookEvent) -> str:
    """entity.action, as the log and payloads name it; 400 for a pair MLflow does not have."""
    entity, action = e.entity.lower(), e.action.lower()
    name = f"{entity}.{action}"
    if name not in WEBHOOK_EVENTS:
        valid = sorted(n.partition(".")[2] for n in WEBHOOK_EVENTS if n.startswith(f"{entity}."))
        raise invalid(f"Invalid action '{action}' for entity '{entity}'. Valid actions are: {valid}")
    return name


def event_json(name: str) -> dict[str, str]:
    entity, _, action = name.partition(".")
    return {"entity": entity.upper(), "action": action.upper()}


def webhook_shape(row: dict[str, Any]) -> dict[str, Any]:
    """MLflow's Webhook; no secret (its message has none), and no empty description."""
    shape = {
        "webhook_id": row["webhook_id"],
        "name": row["name"],
        "url": row["url"],
        "events": [event_json(e) for e in row["events"]],
        "status": row["status"],
        "creation_timestamp": row["creation_time"],
        "last_updated_timestamp": row["last_update_time"],
    }
    if row["description"]:
        shape["description"] = row["description"]
    return shape


def webhook_missing(webhook_id: str) -> ApiError:
    return not_found(f"Webhook with ID {webhook_id} not found.")


class WebhookReads:
    def __init__(self, ctx: MlflowContext) -> None:
        self.ctx = ctx

    async def row(self, webhook_id: str) -> dict[str, Any]:
        await self.ctx.settled(WEBHOOKS)
        found = await self.ctx.query(webhook_row, webhook_id)
        if found is None:
            raise webhook_missing(webhook_id)
        return found


def _webhooks(ctx: Mlflow) -> WebhookReads:
    return WebhookReads(ctx)


Webhooks = Annotated[WebhookReads, Depends(_webhooks)]


@cache
def _sender() -> Sender:
    """One HTTP client for the process's test sends."""
    return Sender()


class ListWebhooks(BaseModel):
    max_results: int = Field(100, ge=1, le=MAX_WEBHOOK_RESULTS)
    page_token: str | None = None


class TestWebhook(BaseModel):
    event: WebhookEvent | None = None
