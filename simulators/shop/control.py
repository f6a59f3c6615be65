"""Client for the simulator's /_control API, for tests that run it as a separate process."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import requests


class ShopControl:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/") + "/_control"
        self.timeout = timeout
        self._session = requests.Session()

    def create_order(self, **kwargs: Any) -> dict[str, Any]:
        """make_order's keyword arguments (status, lines, shipping, billing, customer_note, number,
        date_created_gmt); fires order.created and returns the order."""
        if isinstance(kwargs.get("date_created_gmt"), datetime):
            kwargs["date_created_gmt"] = kwargs["date_created_gmt"].isoformat()
        return self._call("POST", "/orders", kwargs)

    def edit_order(self, order_id: int, *, status: str | None = None, lines: list[dict[str, Any]] | None = None,
                   quantity: dict[int, int] | None = None, **fields: Any) -> dict[str, Any]:
        """An admin edit (status, replaced lines, quantities by line id; 0 removes the line,
        billing/shipping/customer_note); fires order.updated."""
        body: dict[str, Any] = dict(fields)
        if status is not None:
            body["status"] = status
        if lines is not None:
            body["lines"] = lines
        if quantity is not None:
            body["quantity"] = {str(line_id): q for line_id, q in quantity.items()}
        return self._call("POST", f"/orders/{order_id}", body)

    def refund(self, order_id: int, lines: dict[int, int] | None = None, *, reason: str = "",
               amount: str | None = None) -> dict[str, Any]:
        """A refund on the order screen of `lines` ({line item id: quantity}); the amount is their price
        with tax unless given ("10.00"). Returns the refund as GET /orders/{id}/refunds/{refund_id}
        shows it (line quantities negative); the order keeps its lines, lists the refund under
        `refunds`, fires order.updated and, when nothing is left to refund, becomes `refunded`."""
        body: dict[str, Any] = {"lines": {str(line_id): q for line_id, q in (lines or {}).items()}, "reason": reason}
        if amount is not None:
            body["amount"] = amount
        return self._call("POST", f"/orders/{order_id}/refunds", body)

    def trash(self, order_id: int) -> dict[str, Any]:
        return self._call("POST", f"/orders/{order_id}/trash")

    def restore(self, order_id: int) -> dict[str, Any]:
        return self._call("POST", f"/orders/{order_id}/restore")

    def delete(self, order_id: int) -> dict[str, Any]:
        """Delete the order permanently: no webhook, and GET /orders/{id} answers 404 from now on."""
        return self._call("POST", f"/orders/{order_id}/delete")

    def on_listing(self, order_id: int, *, after: int = 1, action: str = "edit",
                   changes: dict[str, Any] | None = None) -> None:
        """Change an order right after the `after`-th GET /orders from now is answered, so a
        client paging through the listing sees the set change under it. `action` is "edit"
        (with `changes` as for edit_order's body), "trash", "restore" or "delete"."""
        body: dict[str, Any] = {"order_id": order_id, "after": after, "action": action}
        if changes is not None:
            body["changes"] = changes
        self._call("POST", "/listing-hooks", body)

    def writes(self, order_id: int) -> list[dict[str, Any]]:
        """Every note and update written through REST for this order, oldest first."""
        return self._call("GET", f"/orders/{order_id}/writes")

    def deliveries(self) -> list[dict[str, Any]]:
        return self._call("GET", "/deliveries")

    def set_webhooks(self, *, enabled: bool | None = None, url: str | None = None,
                     secret: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"enabled": enabled, "url": url, "secret": secret}.items() if v is not None}
        return self._call("POST", "/webhooks", body)

    def ping(self) -> dict[str, Any]:
        return self._call("POST", "/webhooks/ping")

    def faults(self, *, fail_notes: dict[str, Any] | None = None, fail_updates: dict[str, Any] | None = None,
               fail_batch_items: dict[str, Any] | None = None, latency_ms: int | None = None) -> None:
        """Arm faults for REST writes, e.g. fail_updates={"status": 500, "count": 2}, or
        fail_batch_items={"order_ids": [1002], "status": 500} (that order's item in a batch fails)."""
        body = {k: v for k, v in {"fail_notes": fail_notes, "fail_updates": fail_updates,
                                  "fail_batch_items": fail_batch_items, "latency_ms": latency_ms}.items()
                if v is not None}
        self._call("POST", "/faults", body)

    def add_products(self, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Products for GET /products: {"name", "sku"?, "variations"?: [{"sku", "size"?}]} each."""
        return self._call("POST", "/products", {"products": products})

    def revoke_keys(self, revoked: bool = True) -> None:
        """The shop owner revokes the REST key (every REST request answers 401), or restores it (False)."""
        self._call("POST", "/keys", {"revoked": revoked})

    def clear_faults(self) -> None:
        self._call("POST", "/faults/clear")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def wait_deliveries(self, timeout: float = 5.0) -> bool:
        """True once the webhook queue is empty; False if it was not within `timeout` seconds."""
        result = self._call("GET", "/wait-deliveries", params={"timeout": timeout}, read_timeout=timeout + self.timeout)
        return bool(result["idle"])

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              params: dict[str, Any] | None = None, read_timeout: float | None = None) -> Any:
        response = self._session.request(method, self.base_url + path, json=body, params=params,
                                         timeout=read_timeout or self.timeout)
        response.raise_for_status()
        return response.json()
