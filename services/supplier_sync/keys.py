"""The key a paid order is sent under: chosen once, frozen in the database before the first request.

Why frozen: the supplier knows an order only by our key, and a shop plugin
may renumber orders (sequential order numbers), so a key read afresh at each
attempt could send one order twice under two keys. The key is the order's
`number` when it is first sent, or `order-{id}` when the number would not
stay one path segment of the lookup URL, one XML text, one column value. A
number longer than its column was cut for storage and ends with a mark
(shared/orders/events.py): it is not the shop's number any more and gets the
fallback, so no key is ever longer than KEY_LIMIT.

`freeze` and `mark_sending` work in the session they are given; the handler
reaches them through its unit of work (unit_of_work.py, `keys`) and commits
each in a unit of its own before the request it guards.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import SupplierKey

# The unreserved characters of a URL (RFC 3986) but "~": letters, digits, "-", "_", ".".
_SAFE = re.compile(r"[A-Za-z0-9._-]+")
KEY_LIMIT = 100  # supplier_keys.key, supplier_orders.key and the supplier's own limit (xml.TEXT_LIMITS)


def fallback_key(order_id: int) -> str:
    return f"order-{int(order_id)}"


def is_safe_key(text: str | None) -> bool:
    """A number usable as it is: plain ASCII that no URL, XML or database changes, and not a dot segment."""
    return bool(text) and len(text) <= KEY_LIMIT and _SAFE.fullmatch(text) is not None and text.strip(".") != ""


def choose_key(number: str | None, order_id: int) -> str:
    """The key for an order sent for the first time: its number if that is safe, else `order-{id}`."""
    return number if number is not None and is_safe_key(number) else fallback_key(order_id)


@dataclass(frozen=True)
class FrozenKey:
    key: str
    sent_before: bool  # a POST under this key may have reached the supplier


def freeze(session: Session, order_id: int, number: str | None) -> FrozenKey:
    """The order's key: the one recorded, or a new one recorded now. Commit before using it.

    A number another order's key already took (a renumbering plugin reusing
    numbers) gets the fallback instead, which no other order can hold.
    """
    existing = session.get(SupplierKey, order_id)
    if existing is None:
        key = choose_key(number, order_id)
        taken = session.scalar(select(SupplierKey.shop_order_id).where(SupplierKey.key == key))
        if taken is not None and taken != order_id:
            key = fallback_key(order_id)
        session.execute(insert(SupplierKey).values(shop_order_id=order_id, key=key).on_conflict_do_nothing())
        session.flush()
        existing = session.get(SupplierKey, order_id, populate_existing=True)
        assert existing is not None
    return FrozenKey(existing.key, existing.first_sent_at is not None)


def mark_sending(session: Session, order_id: int) -> None:
    """About to POST: from now on the order may exist at the supplier. Commit before the request."""
    session.execute(
        update(SupplierKey)
        .where(SupplierKey.shop_order_id == order_id, SupplierKey.first_sent_at.is_(None))
        .values(first_sent_at=datetime.now(timezone.utc))
    )
