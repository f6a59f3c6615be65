"""Send the shop's recently modified orders down the webhook path again.

For deliveries WooCommerce missed or gave up on: every order modified at or
after a moment goes through OrderIntake, exactly like a webhook, so whatever
it needs of the supplier converges on its latest state.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.order_events import InvalidOrder
from shared.order_intake import OrderIntake
from shared.shop import WooCommerceClient


def parse_since(value: str) -> datetime:
    """An ISO-8601 moment ('2026-11-26T09:00:00Z'); one without an offset is taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)  # ValueError for the caller to report
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def query_bound(since: datetime) -> datetime:
    """WooCommerce's modified_after is exclusive and counts whole seconds: one second earlier
    includes the orders modified at `since` itself."""
    return since.replace(microsecond=0) - timedelta(seconds=1)


@dataclass
class Summary:
    orders: int = 0
    published: int = 0
    skipped: int = 0
    invalid: list[str] = field(default_factory=list)


def orders_since(shop: WooCommerceClient, since: datetime) -> tuple[int, Iterator[dict[str, Any]]]:
    """(how many the shop says there are, the orders one by one)."""
    bound = query_bound(since)
    return shop.count_orders_modified_since(bound), shop.iter_orders_modified_since(bound)


def submit_all(intake: OrderIntake, orders: Iterator[dict[str, Any]], summary: Summary,
               on_order: Callable[[], None] = lambda: None) -> Summary:
    """Submit each order as an order.updated event, counting into `summary`.

    A broker or shop failure stops the run (raised); `summary` then tells how far it got.
    """
    for order in orders:
        summary.orders += 1
        try:
            conversion = intake.submit(order, "order.updated", source="backfill")
        except InvalidOrder as exc:
            summary.skipped += 1
            summary.invalid.append(f"order {order.get('id') if isinstance(order, dict) else '?'}: {exc}")
        else:
            if conversion.messages:
                summary.published += len(conversion.messages)
            else:
                summary.skipped += 1
        on_order()
    return summary
