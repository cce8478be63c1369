"""MLflow's webhooks API, the reads (webhooks list and get) and the test send; the writes are in
mlflow_api/webhook_writes.py, the deliveries in webhooks/. Webhooks are read from ClickHouse once this
process's webhook writes are applied; their secret is never answered."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import uuid4

from clickhouse_connect.driver.client import Client
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from runstream.base.errors import ApiError, invalid, not_found
from runstream.mlflow_api.context import MlflowContext
from runstream.mlflow_api.shapes import mlflow_json
from runstream.schemas.validation import WEBHOOK_EVENTS
from runstream.store.search.paging import decode_page_token, encode_page_token
from runstream.webhooks.payloads import EXAMPLES
from runstream.webhooks.send import Sender, Target

WEBHOOKS = "webhooks"  # the write_marks entity of every webhook write
MAX_WEBHOOK_RESULTS = 1000
_COLUMNS = "webhook_id, name, description, url, events, secret, status, creation_time, last_update_time"


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


def webhook_row(client: Client, webhook_id: str) -> dict[str, Any] | None:
    """The live webhook, secret included."""
    rows = list(
        client.query(
            f"SELECT {_COLUMNS} FROM webhooks_view WHERE webhook_id = {{id:String}}", parameters={"id": webhook_id}
        ).named_results()
    )
    return rows[0] if rows else None


def _page(client: Client, offset: int, limit: int) -> list[dict[str, Any]]:
    return list(
        client.query(
            f"SELECT {_COLUMNS} FROM webhooks_view ORDER BY creation_time DESC, webhook_id "
            "LIMIT {limit:UInt64} OFFSET {offset:UInt64}",
            parameters={"limit": limit, "offset": offset},
        ).named_results()
    )


class WebhookReads:
    def __init__(self, ctx: MlflowContext) -> None:
        self.ctx = ctx

    async def row(self, webhook_id: str) -> dict[str, Any]:
        await self.ctx.settled(WEBHOOKS)
        found = await self.ctx.query(webhook_row, webhook_id)
        if found is None:
            raise webhook_missing(webhook_id)
        return found


class ListWebhooks(BaseModel):
    max_results: int = Field(100, ge=1, le=MAX_WEBHOOK_RESULTS)
    page_token: str | None = None


class TestWebhook(BaseModel):
    event: WebhookEvent | None = None


def webhook_read_router(ctx: MlflowContext) -> APIRouter:
    router = APIRouter(tags=["mlflow-webhooks"])
    reads = WebhookReads(ctx)
    sender = Sender()

    @router.get("/webhooks")
    async def list_webhooks(query: Annotated[ListWebhooks, Query()]) -> Response:
        await ctx.settled(WEBHOOKS)
        offset = decode_page_token(query.page_token)  # 400 for a token it did not make
        rows = await ctx.query(_page, offset, query.max_results + 1)
        token = encode_page_token(offset + query.max_results) if len(rows) > query.max_results else None
        webhooks = [webhook_shape(r) for r in rows[: query.max_results]]
        return mlflow_json({"webhooks": webhooks, "next_page_token": token})

    @router.get("/webhooks/{webhook_id}")
    async def get_webhook(webhook_id: str) -> Response:
        return mlflow_json({"webhook": webhook_shape(await reads.row(webhook_id))})

    @router.post("/webhooks/{webhook_id}/test")
    async def test_webhook(webhook_id: str, body: TestWebhook | None = None) -> Response:
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

    return router
