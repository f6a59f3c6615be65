"""Which statuses the catch-up lists, so that one listing covers live and trashed orders.

WooCommerce reads a status list that holds `any` as `any` alone (WordPress's
`post_status=any`, which leaves trash out), so `status=any,trash` does not
list the trash. Naming every registered status plus `trash` does, in one
request. The registered statuses (plugins add their own) come from
GET /reports/orders/totals, asked once an hour at most and again when the shop
refuses the list (a 400 after a plugin that added a status was removed).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from shared.clients.shop import WooCommerceClient

REFRESH_SECONDS = 3600.0
TRASH = "trash"


class ListedStatuses:
    def __init__(self, shop: WooCommerceClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._shop = shop
        self._clock = clock
        self._statuses: list[str] | None = None
        self._asked_at = 0.0

    def current(self) -> list[str]:
        """Every registered status and `trash`, asking the shop when the list is old or unknown."""
        if self._statuses is None or self._clock() - self._asked_at > REFRESH_SECONDS:
            registered = [s for s in self._shop.order_statuses() if s not in ("any", TRASH)]
            self._statuses = [*registered, TRASH]
            self._asked_at = self._clock()
        return list(self._statuses)

    def forget(self) -> None:
        """The shop refused the list: ask it again before the next listing."""
        self._statuses = None
