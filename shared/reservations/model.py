"""The reservation rules, as plain data and functions. No I/O.

A line is *held* while it is still in its order with units to deliver (a
line refunded whole needs none), the order is in one of the HOLDING_STATUSES,
not deleted, and not yet turned into a supplier order (`repository.load`
selects exactly those). Per stock_id the supplier must hold
the sum of its held lines; the units it did lock cover the lines oldest order
first, the rest are short. A line that is no longer held is released.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.orders.vocabulary import HOLDING_STATUSES, READY_TO_SEND, LineState, ShopStatus

LineKey = tuple[int, int]  # (order_id, line_id)


@dataclass(frozen=True)
class HeldLine:
    """A line the supplier must hold units for."""

    order_id: int
    line_id: int
    stock_id: int
    quantity: int
    order_status: str = ShopStatus.PENDING
    # What operators see of the line; the rules do not read these.
    order_number: str | None = None
    product_id: int = 0
    variation_id: int = 0
    state: str = LineState.PENDING
    error: str | None = None

    @property
    def key(self) -> LineKey:
        return (self.order_id, self.line_id)


@dataclass(frozen=True)
class Lock:
    """What the supplier was last seen to hold of a model (a `stock_locks` row)."""

    stock_id: int
    needed: int
    locked: int
    available: int | None = None
    synced_at: datetime | None = None


@dataclass(frozen=True)
class TrackedLine:
    """Any line of a converged model whose state may change, held or not."""

    order_id: int
    line_id: int
    removed: bool
    order_status: str
    deleted: bool
    sent: bool  # its order was turned into a supplier order
    quantity: int = 1  # what is still to be delivered (a line refunded whole: 0)

    @property
    def key(self) -> LineKey:
        return (self.order_id, self.line_id)


def releases(line: TrackedLine) -> bool:
    """Is a line not held any more: removed from its order, refunded whole, or its order deleted or out of
    the holding statuses?"""
    return line.removed or line.quantity == 0 or line.deleted or line.order_status not in HOLDING_STATUSES


def allocate(locked: int, lines: Iterable[HeldLine]) -> tuple[set[LineKey], set[LineKey]]:
    """Share the units the supplier locked among the lines needing them, oldest order first.

    Returns (covered, short) as sets of (order_id, line_id).
    """
    covered: set[LineKey] = set()
    short: set[LineKey] = set()
    remaining = locked
    for line in sorted(lines, key=lambda l: (l.order_id, l.line_id)):
        if line.quantity <= remaining:
            remaining -= line.quantity
            covered.add(line.key)
        else:
            short.add(line.key)
    return covered, short


@dataclass(frozen=True)
class Reservation:
    """One model: the lines it is held for and what the supplier was last seen to hold."""

    stock_id: int
    lines: tuple[HeldLine, ...] = ()
    lock: Lock | None = None

    @property
    def needed(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def needed_paid(self) -> int:
        return sum(line.quantity for line in self.lines if line.order_status == READY_TO_SEND)

    @property
    def locked(self) -> int:
        return self.lock.locked if self.lock else 0

    def in_step(self) -> bool:
        """Does the supplier hold, as last seen, exactly what is needed?

        A model never set before is in step while nothing is needed of it.
        """
        if self.lock is None:
            return self.needed == 0
        return self.lock.needed == self.needed and self.lock.locked == self.needed


@dataclass(frozen=True)
class Snapshot:
    """What the rules read, as loaded under the per-model locks."""

    held: Mapping[int, tuple[HeldLine, ...]]  # stock_id -> its held lines (every loaded stock_id, maybe none)
    locks: Mapping[int, Lock]
    tracked: tuple[TrackedLine, ...] = field(default=())

    def reservation(self, stock_id: int) -> Reservation:
        return Reservation(stock_id, tuple(self.held.get(stock_id, ())), self.locks.get(stock_id))

    def reservations(self) -> dict[int, Reservation]:
        """Every model needed by some order or still locked at the supplier, by stock_id."""
        stock_ids = {s for s, lines in self.held.items() if lines} | {s for s, l in self.locks.items() if l.locked > 0}
        return {s: self.reservation(s) for s in sorted(stock_ids)}

    def needed_by_stock(self) -> dict[int, int]:
        """stock_id -> units the open orders need the supplier to hold (only ids needing some)."""
        return {s: self.reservation(s).needed for s, lines in sorted(self.held.items()) if lines}
