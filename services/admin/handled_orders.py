"""Sent orders the shop gave up afterwards: a person acts at the supplier, then says so.

supplier_sync flags a supplier order `cancelled_in_shop` when its shop order
is cancelled, refunded or trashed after it was sent
(services/supplier_sync/store.py, `flag_cancelled_after_sending`): the
supplier goes on preparing and shipping it until a person cancels it there
(or changes it, for a partial refund). No command can do that for them, so
until the person records it with `rewix-sync orders handled NUMBER`, `status`
(and the page's health panel) shows the order as needing a person and
`reconcile` says what to do, whatever the supplier's status of it, final or not.

Only the flag counts, never the words of its error text: whichever writer
sets it (a cancellation, a trash, a refund) makes the order one to handle.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from shared.orders.text import storable

NOTE_MAX = 500


@dataclass(frozen=True)
class ToHandle:
    """A sent order whose shop order was given up afterwards, not handled yet."""

    order_id: int
    number: str
    shop_status: str
    supplier_order: str  # the supplier's order id, else the key it was sent under
    since: datetime | None  # when it was flagged

    @property
    def fix(self) -> str:
        return what_to_do(self.supplier_order, self.number)


def what_to_do(supplier_order: str, number: str) -> str:
    return (f"cancel supplier order {supplier_order} on the supplier's platform, "
            f"then `rewix-sync orders handled {number}`")


_WAITING = text("""
    SELECT o.id, o.number, o.status, o.deleted, coalesce(s.supplier_order_id::text, s.key) AS supplier_order,
           s.cancelled_in_shop_at
    FROM supplier_orders s JOIN shop_orders o ON o.id = s.shop_order_id
    WHERE s.cancelled_in_shop AND s.handled_at IS NULL
    ORDER BY s.cancelled_in_shop_at NULLS FIRST, o.id
""")


def waiting(connection: Connection | Session) -> list[ToHandle]:
    """Every sent order given up in the shop that nobody has recorded handled, longest waiting first."""
    return [
        ToHandle(int(row.id), row.number or str(row.id), "deleted" if row.deleted else row.status,
                 row.supplier_order, row.cancelled_in_shop_at)
        for row in connection.execute(_WAITING)
    ]


class CannotHandle(ValueError):
    """The order named is unknown, or there is nothing at the supplier for a person to handle."""


@dataclass(frozen=True)
class Handled:
    order_id: int
    number: str
    supplier_order: str
    at: datetime
    by: str
    note: str | None
    already: bool  # recorded before; this run changed nothing


_FIND = text("""
    SELECT o.id, o.number, s.id AS sent, coalesce(s.supplier_order_id::text, s.key) AS supplier_order,
           s.cancelled_in_shop
    FROM shop_orders o LEFT JOIN supplier_orders s ON s.shop_order_id = o.id
    WHERE o.number = :number
    ORDER BY o.id
""")
_FIND_BY_ID = text("""
    SELECT o.id, o.number, s.id AS sent, coalesce(s.supplier_order_id::text, s.key) AS supplier_order,
           s.cancelled_in_shop
    FROM shop_orders o LEFT JOIN supplier_orders s ON s.shop_order_id = o.id
    WHERE o.id = :id
""")
# The first to record it wins; a second run (or a second operator) finds it done.
_MARK = text("""
    UPDATE supplier_orders SET handled_at = now(), handled_by = :by, handled_note = :note, last_error = NULL
    WHERE id = :id AND handled_at IS NULL
""")
_RECORDED = text("SELECT handled_at, handled_by, handled_note FROM supplier_orders WHERE id = :id")


def mark_handled(session: Session, number: str, by: str, note: str | None = None) -> Handled:
    """Record that a person dealt at the supplier with order NUMBER's supplier order; raises CannotHandle.

    NUMBER is the shop's order number as `rewix-sync orders` shows it (a
    leading '#' is allowed); an order whose number is unknown is looked up by
    its id. Recording twice changes nothing: the first record stands. The
    supplier order's error text (what to do) is cleared with it.
    """
    wanted = number.strip().lstrip("#").strip()
    if not wanted:
        raise CannotHandle("give the shop order's number, as `rewix-sync orders` shows it")
    rows = session.execute(_FIND, {"number": wanted}).all()
    if not rows and wanted.isdigit() and len(wanted) < 19:
        rows = session.execute(_FIND_BY_ID, {"id": int(wanted)}).all()
    if not rows:
        raise CannotHandle(f"no shop order numbered {wanted!r} in the records "
                           f"(`rewix-sync orders --search {wanted}` lists the orders whose number starts so)")
    flagged = [row for row in rows if row.cancelled_in_shop]
    if len(flagged) > 1:
        ids = ", ".join(str(row.id) for row in flagged)
        raise CannotHandle(f"several shop orders are numbered {wanted!r} (ids {ids}): give the order id instead")
    if not flagged:
        row = rows[0]
        label = f"order #{row.number or row.id}"
        if row.sent is None:
            raise CannotHandle(f"{label} was never sent to the supplier: there is nothing to handle there")
        raise CannotHandle(f"{label} needs no handling: its shop order was not cancelled, refunded or trashed "
                           f"after supplier order {row.supplier_order} was sent")
    row = flagged[0]
    done = session.execute(_MARK, {"id": row.sent, "by": storable(by)[:200],
                                   "note": storable(note)[:NOTE_MAX] if note else None}).rowcount
    recorded = session.execute(_RECORDED, {"id": row.sent}).one()
    return Handled(int(row.id), row.number or str(row.id), row.supplier_order, recorded.handled_at,
                   recorded.handled_by, recorded.handled_note, already=not done)
