"""The order lifecycle as plain rules (docs/interfaces.md, "Order lifecycle"). No I/O.

What a shop order needs locked at the supplier follows from its latest state
alone, so every worker computing it from the database agrees, whatever order
the messages came in.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.holdings import HOLDING_STATUSES
PAID_STATUSES = frozenset({"processing"})
# Statuses that let go of whatever was held; "completed" needs nothing more either.
RELEASING_STATUSES = frozenset({"cancelled", "refunded", "failed", "trash"})


def holds_stock(status: str, deleted: bool) -> bool:
    return not deleted and status in HOLDING_STATUSES


def is_released(status: str, deleted: bool) -> bool:
    return deleted or status in RELEASING_STATUSES


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
class HeldLine:
    order_id: int
    line_id: int
    quantity: int


def allocate(locked: int, lines: Iterable[HeldLine]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Share the units the supplier locked among the lines needing them, oldest order first.

    Returns (covered, short) as sets of (order_id, line_id).
    """
    covered: set[tuple[int, int]] = set()
    short: set[tuple[int, int]] = set()
    remaining = locked
    for line in sorted(lines, key=lambda l: (l.order_id, l.line_id)):
        if line.quantity <= remaining:
            remaining -= line.quantity
            covered.add((line.order_id, line.line_id))
        else:
            short.add((line.order_id, line.line_id))
    return covered, short
