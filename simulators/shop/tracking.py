"""The WooCommerce Shipment Tracking plugin's REST API, switchable on and off.

Routes under /wp-json/wc-shipment-tracking/v3 as the plugin registers them:
`GET|POST /orders/{id}/shipment-trackings`. A create takes `tracking_provider`
(one of the plugin's provider slugs) or `custom_tracking_provider` with
`custom_tracking_link`, a required `tracking_number` and `date_shipped`, and
answers 201 with `{tracking_id, tracking_provider, tracking_link,
tracking_number, date_shipped}`; an unknown order is 404
`woocommerce_rest_order_invalid_id`. With the plugin off (the default, as on a
shop without it) the namespace does not exist: WordPress answers 404
`rest_no_route`.
"""
from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from simulators.shop.wire import ApiError, Handler, Query, Reply, no_route, object_body

TRACKING_PREFIX = "/wp-json/wc-shipment-tracking/v3"
_TEXT_FIELDS = ("tracking_provider", "custom_tracking_provider", "custom_tracking_link", "tracking_number", "date_shipped")


class ShipmentTracking:
    """The plugin's stored items per order. Every method takes the lock; everything handed out is a copy."""

    def __init__(self, order_exists: Callable[[int], bool]) -> None:
        self._order_exists = order_exists
        self._lock = threading.Lock()
        self.reset()
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/orders/(\d+)/shipment-trackings"), self._list),
            ("POST", re.compile(r"/orders/(\d+)/shipment-trackings"), self._create),
        ]

    def reset(self) -> None:
        with self._lock:
            self.enabled = False
            self._items: dict[int, list[dict[str, Any]]] = {}

    def set_enabled(self, enabled: bool) -> None:
        with self._lock:
            self.enabled = bool(enabled)

    def items(self, order_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._items.get(order_id, [])]

    def routes_if_enabled(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        """The plugin's routes, or none at all while it is not installed."""
        if not self.enabled:
            raise no_route()
        return self.routes

    def _order(self, match: re.Match[str]) -> int:
        order_id = int(match.group(1))
        if not self._order_exists(order_id):
            raise ApiError(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
        return order_id

    def _list(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        return Reply(200, [_view(item) for item in self.items(self._order(match))])

    def _create(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        order_id = self._order(match)
        fields = object_body(body)
        if not str(fields.get("tracking_number") or "").strip():
            raise ApiError(400, "rest_missing_callback_param", "Missing parameter(s): tracking_number",
                           params={"tracking_number": "tracking_number"})
        item = {name: str(fields.get(name) or "") for name in _TEXT_FIELDS}
        item["tracking_id"] = uuid.uuid4().hex
        with self._lock:
            self._items.setdefault(order_id, []).append(item)
        return Reply(201, _view(item))


def _view(item: dict[str, Any]) -> dict[str, Any]:
    """What the plugin answers: the provider shown is the custom one when there is one."""
    return {
        "tracking_id": item["tracking_id"],
        "tracking_provider": item["custom_tracking_provider"] or item["tracking_provider"],
        "tracking_link": item["custom_tracking_link"],
        "tracking_number": item["tracking_number"],
        "date_shipped": item["date_shipped"],
    }
