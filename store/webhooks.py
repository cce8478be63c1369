"""MLflow's webhooks as the registry tables hold them (webhooks_view, migrations/008): one, a page of
them, and the active ones that deliveries go to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

_COLUMNS = "webhook_id, name, description, url, events, secret, status, creation_time, last_update_time"


def webhook_row(client: Client, webhook_id: str) -> dict[str, Any] | None:
    """The live webhook, secret included."""
    rows = list(
        client.query(
            f"SELECT {_COLUMNS} FROM webhooks_view WHERE webhook_id = {{id:String}}", parameters={"id": webhook_id}
        ).named_results()
    )
    return rows[0] if rows else None


def webhooks_page(client: Client, offset: int, limit: int) -> list[dict[str, Any]]:
    return list(
        client.query(
            f"SELECT {_COLUMNS} FROM webhooks_view ORDER BY creation_time DESC, webhook_id "
            "LIMIT {limit:UInt64} OFFSET {offset:UInt64}",
            parameters={"limit": limit, "offset": offset},
        ).named_results()
    )


def active_webhooks(client: Client) -> list[Sequence[Any]]:
    """(webhook_id, url, secret, events, creation_time) of each active webhook."""
    return list(
        client.query(
            "SELECT webhook_id, url, secret, events, creation_time FROM webhooks_view WHERE status = 'ACTIVE'"
        ).result_rows
    )
