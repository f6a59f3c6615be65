"""Which order state wins, as a plain rule (docs/interfaces.md, "Order lifecycle"). No I/O.

What a shop order needs locked at the supplier follows from its latest state
alone, so every worker computing it from the database agrees, whatever order
the messages came in. This decides which state is the latest.
"""
from __future__ import annotations

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
