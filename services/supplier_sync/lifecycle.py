"""Which order state wins, as a plain rule (docs/interfaces.md, "Order lifecycle"). No I/O.

What a shop order needs locked at the supplier follows from its latest state
alone, so every worker computing it from the database agrees, whatever order
the messages came in. This decides which state is the latest
(batch_changes.py applies it to a batch), and what a state means for an
order already sent to the supplier (`given_up_after_sending`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.orders.vocabulary import GIVEN_UP_STATUSES


@dataclass(frozen=True)
class StoredState:
    date_modified_gmt: datetime | None
    deleted: bool


def supersedes(
    incoming_date: datetime | None, incoming_deleted: bool, topic: str, stored: StoredState | None
) -> bool:
    """Does an incoming order state replace the stored one?

    A newer `date_modified_gmt` wins; an equal one is the same state again (a
    duplicate) and is applied harmlessly. A delete carries no date and always
    applies. Once deleted, only a restore (or a state saved after the last one
    we had) brings the order back, so a stale delivery cannot resurrect it.
    """
    if incoming_deleted or stored is None:
        return True
    if stored.date_modified_gmt is None:
        return topic == "order.restored" or not stored.deleted
    if incoming_date is None:
        return False
    if stored.deleted:
        return incoming_date > stored.date_modified_gmt or (
            topic == "order.restored" and incoming_date >= stored.date_modified_gmt
        )
    return incoming_date >= stored.date_modified_gmt


@dataclass(frozen=True)
class RecordedLine:
    """A line as recorded, and the order state (date_modified_gmt) it was recorded from."""

    stock_id: int
    quantity: int
    version: datetime | None


def contradicts(
    *,
    date: datetime | None,
    status: str,
    line: tuple[int, int] | None,
    line_ids: Sequence[int] | None,
    stored_date: datetime | None,
    stored_status: str,
    stored_line: RecordedLine | None,
    stored_line_ids: Sequence[int],
) -> bool:
    """Does an incoming state differ from the recorded one while claiming the same `date_modified_gmt`?

    WooCommerce keeps the date to the second, so two saves within one second
    carry the same date, and a read can be stale with the right date (seen on
    a shop turning HPOS compatibility sync on: `pending` for a paid order).
    Then neither state can be told newer: the shop is asked again rather than
    letting whichever was read last win. `line` is the incoming (stock_id,
    quantity), `line_ids` the order's supplier line ids when the incoming
    message is the event's head. Line ids recorded as empty are not known yet
    (a line of that state came before its head), so they contradict nothing.
    """
    if date is None or stored_date is None or date != stored_date:
        return False
    if status != stored_status:
        return True
    if line_ids is not None and stored_line_ids and sorted(line_ids) != sorted(stored_line_ids):
        return True
    if line is not None and stored_line is not None and stored_line.version == date:
        return line != (stored_line.stock_id, stored_line.quantity)
    return False


@dataclass(frozen=True)
class FlaggedOrder:
    """A supplier order its shop order gave up or changed after it was sent: a person must act on it."""

    shop_order_id: int
    supplier_order_id: int | None
    reason: str  # why, and what to do (supplier_orders.last_error)


def given_up_after_sending(*, deleted: bool, status: str, sent_as: object, sent_items: Mapping[int, int] | None,
                           wanted: Mapping[int, int]) -> str | None:
    """Why a sent supplier order no longer matches its shop order, and what to do; None while it does.

    Given up: cancelled, refunded, failed or trashed; or changed: wanting other
    units (`wanted`, stock_id -> units of its lines still in the order) than
    it was sent with (`sent_items`; None for an order sent before those were
    kept, judged by its status only), so the supplier would ship what the
    customer no longer pays for, or not what was added. `sent_as` names the
    supplier order (its id, else its key).
    """
    if deleted or status in GIVEN_UP_STATUSES:
        why = f"the shop order was {'trashed' if deleted else status} after supplier order {sent_as} was sent"
        return f"{why}: cancel it on the supplier's platform"
    if sent_items is None:
        return None
    changed = {stock_id: wanted.get(stock_id, 0) - sent_items.get(stock_id, 0)
               for stock_id in sorted(set(sent_items) | set(wanted))}
    changed = {stock_id: delta for stock_id, delta in changed.items() if delta}
    if not changed:
        return None
    which = ", ".join(f"{-delta} of stock_id {stock_id} no longer wanted" if delta < 0
                      else f"{delta} more of stock_id {stock_id} wanted" for stock_id, delta in changed.items())
    why = f"the shop order changed after supplier order {sent_as} was sent (refunded or edited): {which}"
    return f"{why}: change or cancel it on the supplier's platform"
