"""Which order state wins, as a plain rule (docs/interfaces.md, "Order lifecycle"). No I/O.

What a shop order needs locked at the supplier follows from its latest state
alone, so every worker computing it from the database agrees, whatever order
the messages came in. This decides which state is the latest.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


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
