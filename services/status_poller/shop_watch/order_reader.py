"""What the catch-up and the verification sweep both start from: the shop, read into the webhook path.

Both ask the shop for orders (listing every status it has plus `trash`,
shop_statuses.py) and submit what they find through the OrderIntake, as a
webhook would be, every `interval` seconds.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from shared.clients.shop import WooCommerceClient
from shared.db import get_engine
from shared.orders.events import InvalidOrder, parse_gmt
from shared.orders.intake import OrderIntake
from services.status_poller.shop_watch.shop_statuses import ListedStatuses


class ShopOrderReader:
    def __init__(self, database_url: str, shop: WooCommerceClient, intake: OrderIntake, interval: float) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop
        self.intake = intake
        self.interval = float(interval)
        self.statuses = ListedStatuses(shop)


Item = TypeVar("Item")


def batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    """`items` in slices of `size` (the shop answers at most 100 ids a request)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def newer_in_the_shop(order: dict[str, Any], recorded: datetime | None) -> bool:
    """The shop's state of an order is newer than the recorded one (or the record has no date to compare)."""
    try:
        modified = parse_gmt(order.get("date_modified_gmt"))
    except InvalidOrder:
        return False
    if recorded is None:
        return True
    if recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=timezone.utc)
    return modified > recorded
