"""What the webhook check remembers of the shop's webhooks (table shop_webhooks).

WooCommerce keeps no history of a webhook's status, so every check records
each of the system's webhooks as it found it: when it was last seen active
(the catch-up looks back to there after a webhook was found off) and every
re-activation (shown by `rewix-sync webhooks status` and the operator page).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class WebhookRecord:
    webhook_id: int
    topic: str
    delivery_url: str
    status: str
    last_checked_at: datetime
    last_seen_active_at: datetime | None
    reactivated_count: int
    last_reactivated_at: datetime | None
    last_found_status: str | None
    last_off_since: datetime | None


def read_records(connection: Connection) -> dict[int, WebhookRecord]:
    rows = connection.execute(text(
        "SELECT webhook_id, topic, delivery_url, status, last_checked_at, last_seen_active_at, reactivated_count,"
        " last_reactivated_at, last_found_status, last_off_since FROM shop_webhooks"
    ))
    return {row.webhook_id: WebhookRecord(**row._mapping) for row in rows}


def record_seen(connection: Connection, webhook: dict[str, Any], *, status: str, at: datetime) -> None:
    """The check saw `webhook` in `status` (after any re-activation) at `at`."""
    connection.execute(
        text(
            """
            INSERT INTO shop_webhooks (webhook_id, topic, delivery_url, status, last_checked_at, last_seen_active_at)
            VALUES (:id, :topic, :url, :status, :at, CASE WHEN :status = 'active' THEN CAST(:at AS timestamptz) END)
            ON CONFLICT (webhook_id) DO UPDATE SET
                topic = EXCLUDED.topic, delivery_url = EXCLUDED.delivery_url, status = EXCLUDED.status,
                last_checked_at = EXCLUDED.last_checked_at,
                last_seen_active_at = COALESCE(EXCLUDED.last_seen_active_at, shop_webhooks.last_seen_active_at)
            """
        ),
        {"id": webhook["id"], "topic": str(webhook.get("topic") or ""), "url": str(webhook.get("delivery_url") or ""),
         "status": status, "at": at},
    )


def record_reactivated(connection: Connection, webhook: dict[str, Any], *, found_status: str, off_since: datetime,
                       at: datetime) -> None:
    """The check found `webhook` in `found_status` and set it active at `at`; it had been off since `off_since`."""
    record_seen(connection, webhook, status="active", at=at)
    connection.execute(
        text(
            "UPDATE shop_webhooks SET reactivated_count = reactivated_count + 1, last_reactivated_at = :at,"
            " last_found_status = :found, last_off_since = :since WHERE webhook_id = :id"
        ),
        {"id": webhook["id"], "at": at, "found": found_status, "since": off_since},
    )


def forget_others(connection: Connection, keep: list[int]) -> None:
    """Webhooks no longer in the shop (or no longer delivering here) are not the system's any more."""
    connection.execute(text("DELETE FROM shop_webhooks WHERE NOT (webhook_id = ANY(:keep))"),
                       {"keep": [int(i) for i in keep]})
