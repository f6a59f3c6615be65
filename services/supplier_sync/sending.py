"""Sending a paid order to the supplier exactly once.

The key is frozen before the first request (keys.py). An order whose key
was never sent needs no lookup: it cannot exist. After a POST that may have
reached the supplier (a crash, a timeout, a cut connection), the key is
looked up before anything is sent again: found is sent, 404 is absent (send
again), and a 500 is ambiguous (older servers answer it for an unknown key,
any server when it fails): nothing is sent on it, the message waits on the
retry schedule and, when it stays ambiguous, is dead-lettered with a reason
that says what to check at the supplier.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from shared.clients.rewix import BOOKED, DropshippingOrder, Recipient, RewixClient, SupplierOrderStatus
from shared.clients.rewix.fitting import FittedRecipient, fit_recipient
from shared.failures.errors import AmbiguousLookup, TransientError
from shared.observability.logging import get_logger
from shared.observability.metrics import SUPPLIER_ORDERS_SENT

log = get_logger(__name__)


def recipient_for_supplier(recipient: dict[str, Any] | None, note: str) -> FittedRecipient:
    """The recorded recipient (shared.messaging.messages.ShopRecipient) and note in the supplier's fields,
    fitted to what the supplier takes (shared/clients/rewix/fitting.py), with what was shortened."""
    r = recipient or {}
    return fit_recipient(Recipient(
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
    ))


def send_once(
    client: RewixClient,
    *,
    key: str,
    sent_before: bool,
    mark_sending: Callable[[], None],
    recipient: Recipient,
    items: dict[int, int],
    auto_confirm: bool = False,
) -> SupplierOrderStatus:
    """Make sure an order exists at the supplier under `key`; return what it says of it.

    `sent_before`: a POST under this key may have reached the supplier, so
    look first. `mark_sending` records (committed) that a POST is about to
    go. `auto_confirm` asks the supplier to confirm the order at once
    (SUPPLIER_AUTO_CONFIRM); whether it did shows in the status it answers.
    Raises TransientError / PermanentError / AccountRefused when it could not.
    """
    if sent_before:
        existing = _look_up(client, key)
        if existing is not None:
            log.info("supplier order already exists", key=key, supplier_order_id=existing.order_id)
            return existing
    order = DropshippingOrder(
        key=key,
        date=datetime.now(timezone.utc),
        recipient=recipient,
        items=dict(sorted(items.items())),
        auto_confirm=auto_confirm,
    )
    mark_sending()
    try:
        client.send_dropshipping_order(order)
    except TransientError as exc:
        if not exc.outcome_unknown:
            raise
        # The request may have been carried out: look before anyone repeats it.
        found = _look_up(client, key)
        if found is None:
            raise
        SUPPLIER_ORDERS_SENT.inc()
        return found
    SUPPLIER_ORDERS_SENT.inc()
    try:
        created = client.find_order_by_key(key)
    except TransientError:
        created = None  # the POST was accepted: it exists, whatever the lookup says now
    if created is None:
        # Sent, but not visible yet: the poller fills in the id from the key.
        return SupplierOrderStatus(order_id=0, key=key, status=BOOKED)
    log.info("dropshipping order sent", key=key, supplier_order_id=created.order_id, status=created.status)
    return created


def _look_up(client: RewixClient, key: str) -> SupplierOrderStatus | None:
    """The order under `key` after a POST that may have landed; an ambiguous answer says what to check."""
    try:
        return client.find_order_by_key(key)
    except AmbiguousLookup as exc:
        raise AmbiguousLookup(
            f"an earlier send of key {key!r} may have reached the supplier and its lookup answers HTTP 500, "
            f"so nothing is sent until it answers: check on the supplier's platform whether an order with "
            f"key {key!r} exists (replaying this message sends it only if the lookup then answers 404)",
            status=exc.status,
            body=exc.body,
        ) from exc
