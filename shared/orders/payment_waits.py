"""Supplier orders waiting for the dropshipper's payment (Booked), and since when.

A dropshipping order is created Booked and stays so until the dropshipper pays
for it on the supplier's platform; only then does the supplier prepare the
parcel (Confirmed, Working on...). Nothing in the shop says so: a customer's
paid order can wait for days because nobody paid. `rewix-sync pay` lists these
orders (services/admin/payments.py), `rewix-sync status` shows those waiting
longer than SUPPLIER_PAYMENT_ALERT_MINUTES, and status_poller's payment watch
(services/status_poller/payment_watch.py) counts them for the alert and asks
for one private note on each shop order (`NOTICE_KIND`, shared/orders/notices.py).

An order waits since it was first seen Booked: since it was recorded as sent
when it was Booked from the start (`supplier_orders.sent_at`), else since the
poll that saw it move into Booked (its `supplier_status_history` row). Once the
poller records another status the order is no longer listed: it clears by itself.
A supplier order whose shop order was cancelled after sending is listed by `pay`
(it must not be paid) but is no customer's wait, so it raises no alert.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, text

from shared.clients.rewix import BOOKED

# shared/orders/notices.py kind of the one note a shop order gets when its supplier order waits too long.
NOTICE_KIND = "payment_wait"

_WAITING = text(
    """
    SELECT s.id, s.shop_order_id, o.number, s.supplier_order_id, s.key, s.status,
           COALESCE((SELECT min(h.observed_at) FROM supplier_status_history h
                      WHERE h.supplier_order_id = s.id AND h.new_status = :booked
                        AND h.old_status IS NOT NULL AND h.old_status <> :booked),
                    s.sent_at) AS waiting_since,
           COALESCE(NULLIF(o.recipient->>'name', ''), o.recipient->>'company', '') AS customer,
           s.cancelled_in_shop OR o.deleted AS cancelled_in_shop,
           now() AS db_now
    FROM supplier_orders s
    JOIN shop_orders o ON o.id = s.shop_order_id
    WHERE s.status = :booked AND NOT s.final
    ORDER BY waiting_since, s.id
    """
)


@dataclass(frozen=True)
class PaymentWait:
    """One supplier order waiting for payment, with its shop order."""

    supplier_row: int  # supplier_orders.id
    shop_order_id: int
    number: str  # the shop order's number
    supplier_order_id: int | None  # None until the poller learns it from the key
    key: str
    status: int
    waiting_since: datetime
    waited_seconds: float
    customer: str  # the recipient's name (or company) as recorded
    cancelled_in_shop: bool  # the shop order was cancelled or deleted after sending: not to be paid

    @property
    def label(self) -> str:
        """`#1001` (the shop order), as the owner knows it."""
        return f"#{self.number or self.shop_order_id}"

    @property
    def supplier_label(self) -> str:
        return str(self.supplier_order_id) if self.supplier_order_id else f"key {self.key}"


def waiting_for_payment(connection: Connection) -> list[PaymentWait]:
    """Every open supplier order in Booked, the longest waiting first (one query, the database's clock)."""
    waits = []
    for row in connection.execute(_WAITING, {"booked": BOOKED}):
        since = row.waiting_since
        waits.append(PaymentWait(
            supplier_row=int(row.id), shop_order_id=int(row.shop_order_id), number=row.number or "",
            supplier_order_id=int(row.supplier_order_id) if row.supplier_order_id else None, key=row.key,
            status=int(row.status), waiting_since=since,
            waited_seconds=max(0.0, (row.db_now - since).total_seconds()),
            customer=row.customer or "", cancelled_in_shop=bool(row.cancelled_in_shop),
        ))
    return waits


def customers_waiting(waits: Sequence[PaymentWait]) -> list[PaymentWait]:
    """The waits a customer is behind: every one but those whose shop order was cancelled after sending."""
    return [w for w in waits if not w.cancelled_in_shop]


def alert_after_seconds(minutes: float) -> float:
    """SUPPLIER_PAYMENT_ALERT_MINUTES in seconds."""
    return float(minutes) * 60.0


def overdue(waits: Sequence[PaymentWait], alert_after: float) -> list[PaymentWait]:
    """The customers' waits longer than `alert_after` seconds, the longest first: each needs a person."""
    return [w for w in customers_waiting(waits) if w.waited_seconds > alert_after]


def utc_text(moment: datetime) -> str:
    """`2026-12-08 09:14 UTC`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def note_text(wait: PaymentWait) -> str:
    """The private note on the shop order, written once (it stays true after the payment)."""
    return (f"Waiting for payment at the supplier since {utc_text(wait.waiting_since)}: supplier order "
            f"{wait.supplier_label} is Booked, and the supplier prepares the parcel only once the dropshipper "
            "pays for it on the supplier's platform (`rewix-sync pay` lists what to pay).")
