"""What the catch-up and the verification sweep both start from: the shop, read into the webhook path.

Both ask the shop for orders (listing every status it has plus `trash`,
shop_statuses.py) and submit what they find through the OrderIntake, as a
webhook would be, every `interval` seconds.
"""
from __future__ import annotations

from shared.clients.shop import WooCommerceClient
from shared.db import get_engine
from shared.orders.intake import OrderIntake
from services.status_poller.shop_watch.shop_statuses import ListedStatuses


class ShopOrderReader:
    def __init__(self, database_url: str, shop: WooCommerceClient, intake: OrderIntake, interval: float) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop
        self.intake = intake
        self.interval = float(interval)
        self.statuses = ListedStatuses(shop)
