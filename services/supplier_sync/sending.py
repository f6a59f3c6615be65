"""Sending a paid order to the supplier exactly once.

The key is the shop order's `number`. Before sending, and after any failure
whose outcome is unknown, the key is looked up: an order found under it was
sent. So a crash or a repeat anywhere around the POST never creates a second
supplier order.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from shared.errors import TransientError
from shared.rewix import BOOKED, DropshippingOrder, Recipient, RewixClient, SupplierOrderStatus
from shared.logging import get_logger
from shared.observability.metrics import SUPPLIER_ORDERS_SENT

log = get_logger(__name__)


def recipient_for_supplier(recipient: dict[str, Any] | None, note: str) -> Recipient:
    r = recipient or {}
    return Recipient(
        name=r.get("name") or r.get("company") or "",
        careof=r.get("company", "") if r.get("name") else "",
        phone=r.get("phone", ""),
        address_1=r.get("address_1", ""),
        address_2=r.get("address_2", ""),
        postcode=r.get("postcode", ""),
        city=r.get("city", ""),
        province=r.get("state", ""),
        countrycode=r.get("country", ""),
        notes=note,
    )


def send_once(
    client: RewixClient,
    *,
    key: str,
    recipient: dict[str, Any] | None,
    note: str,
    items: dict[int, int],
) -> SupplierOrderStatus:
    """Make sure an order exists at the supplier under `key`; return what it says of it.

    Raises TransientError / PermanentError from the client when it could not.
    """
    existing = client.find_order_by_key(key)
    if existing is not None:
        log.info("supplier order already exists", key=key, supplier_order_id=existing.order_id)
        return existing
    order = DropshippingOrder(
        key=key,
        date=datetime.now(timezone.utc),
        recipient=recipient_for_supplier(recipient, note),
        items=dict(sorted(items.items())),
    )
    try:
        client.send_dropshipping_order(order)
    except TransientError as exc:
        if not exc.outcome_unknown:
            raise
        # The request may have been carried out: look before anyone repeats it.
        found = client.find_order_by_key(key)
        if found is None:
            raise
        SUPPLIER_ORDERS_SENT.inc()
        return found
    SUPPLIER_ORDERS_SENT.inc()
    created = client.find_order_by_key(key)
    if created is None:
        # Sent, but not visible yet: the poller fills in the id from the key.
        return SupplierOrderStatus(order_id=0, key=key, status=BOOKED)
    log.info("dropshipping order sent", key=key, supplier_order_id=created.order_id, status=created.status)
    return created
