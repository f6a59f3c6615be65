"""The words the system uses for orders, lines and the shop's webhooks, named once.

Shop order statuses are WooCommerce's; line states are ours (the
`order_lines.sync_status` column). Both are `StrEnum`s, so a member is the
plain string it stands for: it compares equal to what the database, the
messages and the shop carry, and binds as a parameter in SQL.
"""
from __future__ import annotations

from enum import StrEnum


class ShopStatus(StrEnum):
    """A WooCommerce order status (`trash` is what a deleted order reads as)."""

    PENDING = "pending"
    ON_HOLD = "on-hold"
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    FAILED = "failed"
    TRASH = "trash"


# Orders in these statuses need their supplier lines held at the supplier.
HOLDING_STATUSES = frozenset({ShopStatus.PENDING, ShopStatus.ON_HOLD, ShopStatus.PROCESSING})
# Paid and not fulfilled yet: the one status in which an order is sent to the supplier.
READY_TO_SEND = ShopStatus.PROCESSING
# Statuses that give up the order: what it held is released, and it is never completed.
# ("completed" needs nothing held either, but it is the end of a sent order, not a release.)
GIVEN_UP_STATUSES = frozenset({ShopStatus.CANCELLED, ShopStatus.REFUNDED, ShopStatus.FAILED, ShopStatus.TRASH})


# The shop webhook topics the system owns, in the order `rewix-sync webhooks install` creates them.
ORDER_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")


class LineState(StrEnum):
    """Where an order line stands with the supplier (`order_lines.sync_status`)."""

    PENDING = "pending"  # recorded, not converged yet
    LOCKED = "locked"  # its units are held at the supplier
    SHORT = "short"  # the supplier could not hold all of the model: this line is not covered
    SENT = "sent"  # part of a dropshipping order sent to the supplier
    RELEASED = "released"  # needs nothing held any more (removed, cancelled, deleted, completed)
    FAILED = "failed"  # the supplier refused its model or its order
    DEAD_LETTERED = "dead_lettered"  # its message went to the dead letters: an operator must act


# Lines that are done with: no later convergence of other orders changes them.
SETTLED_LINE_STATES = frozenset({LineState.SENT, LineState.RELEASED})
# Most urgent first: a row or an order shows the most urgent state among its lines.
LINE_STATES_BY_URGENCY = (
    LineState.DEAD_LETTERED, LineState.FAILED, LineState.SHORT, LineState.PENDING,
    LineState.LOCKED, LineState.SENT, LineState.RELEASED,
)
# States an operator has to look at.
LINE_STATES_NEEDING_ATTENTION = frozenset({LineState.DEAD_LETTERED, LineState.FAILED, LineState.SHORT})
# How the error of a line whose whole order the supplier refused when it was sent begins
# (services/supplier_sync/plan.py writes it; problems and the sync status read it).
REFUSED_ORDER_ERROR = "supplier refused the order"
