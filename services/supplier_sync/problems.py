"""Which problems of an order the shop owner hears of, and in which words. No I/O.

A problem is one line the supplier cannot reserve in full (short) or refuses
(refused_model), one order the supplier refused when it was sent
(refused_order, the order itself: line 0), or one line whose message went to
the dead letters for another reason (dead_lettered). Each gets one private
order note when it opens, however often it is retried, and one more when it
clears (the line is reserved in full, the order sent); a line released (the
order cancelled) clears without a note. supplier_sync opens and clears them
(shared/orders/problems.py stores them); status_poller writes the notes
(services/status_poller/shop_watch/problem_notes.py).

Notes are the owner's: product names and quantities are fine, but supplier
texts pass through `stored_reason` (masked: no e-mail, phone or credential).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.orders.text import stored_reason
from shared.orders.vocabulary import REFUSED_ORDER_ERROR, LineState

SHORT = "short"
REFUSED_MODEL = "refused_model"
REFUSED_ORDER = "refused_order"
DEAD_LETTERED = "dead_lettered"
ORDER_ITSELF = 0  # the line_id of a problem about the whole order

REFUSED_ORDER_PREFIX = REFUSED_ORDER_ERROR
_LOCKED_OF = re.compile(r"locked (\d+) of (\d+)")
REASON_LIMIT = 300


@dataclass(frozen=True)
class LineFacts:
    """What a note says of a line: the product as the catalog names it, and the quantity ordered."""

    order_id: int
    line_id: int
    stock_id: int
    quantity: int
    name: str = ""
    size: str = ""
    code: str = ""

    def product(self) -> str:
        name = self.name or f"stock_id {self.stock_id}"
        size = f", size {self.size}" if self.size else ""
        code = f", model code {self.code}" if self.code else f", stock_id {self.stock_id}"
        return f"{name}{size}{code}"


@dataclass(frozen=True)
class Opened:
    order_id: int
    line_id: int
    kind: str
    note: str


@dataclass(frozen=True)
class Cleared:
    order_id: int
    line_id: int
    note: str | None  # None: cleared without telling (the line was released)


@dataclass
class Changes:
    opened: list[Opened]
    cleared: list[Cleared]


def from_line_states(
    states: Mapping[tuple[int, int], tuple[str, str | None]], facts: Mapping[tuple[int, int], LineFacts]
) -> Changes:
    """The problems that open and clear with these new line states."""
    opened: list[Opened] = []
    cleared: list[Cleared] = []
    refused_orders: dict[int, str] = {}
    for key, (state, error) in sorted(states.items()):
        order_id, line_id = key
        fact = facts.get(key, LineFacts(order_id, line_id, 0, 0))
        if state == LineState.SHORT:
            opened.append(Opened(order_id, line_id, SHORT, short_note(fact, error or "")))
        elif state == LineState.FAILED and (error or "").startswith(REFUSED_ORDER_PREFIX):
            refused_orders.setdefault(order_id, error or "")
        elif state == LineState.FAILED:
            opened.append(Opened(order_id, line_id, REFUSED_MODEL, refused_model_note(fact, error or "")))
        elif state in (LineState.LOCKED, LineState.SENT):
            cleared.append(Cleared(order_id, line_id, reserved_note(fact)))
            if state == LineState.SENT:
                cleared.append(Cleared(order_id, ORDER_ITSELF, sent_note()))
        elif state == LineState.RELEASED:
            cleared.append(Cleared(order_id, line_id, None))
    for order_id, error in refused_orders.items():
        opened.append(Opened(order_id, ORDER_ITSELF, REFUSED_ORDER, refused_order_note(error)))
    return Changes(opened, cleared)


def _reason(text: str) -> str:
    return stored_reason(" ".join(text.split()))[:REASON_LIMIT]


def short_note(fact: LineFacts, error: str) -> str:
    match = _LOCKED_OF.search(error)
    held = (
        f"the supplier holds {match.group(1)} of the {match.group(2)} units the open orders need of it"
        if match
        else "the supplier cannot reserve all the units the open orders need of it"
    )
    return (
        f"Supplier stock: {fact.product()} is not reserved in full for this order ({fact.quantity} ordered): {held}. "
        "A paid order is sent to the supplier only once every line is reserved."
    )


def refused_model_note(fact: LineFacts, error: str) -> str:
    return (
        f"Supplier stock: the supplier refuses {fact.product()} ({fact.quantity} ordered), so it is not reserved: "
        f"{_reason(error)}"
    )


def refused_order_note(error: str) -> str:
    return (
        f"Supplier order: the supplier refused this order when it was sent, so it was not created there: "
        f"{_reason(error.removeprefix(REFUSED_ORDER_PREFIX).lstrip(': '))}"
    )


def dead_lettered_note(fact: LineFacts, reason: str) -> str:
    return (
        f"Supplier sync: syncing {fact.product()} ({fact.quantity} ordered) with the supplier gave up and waits "
        f"for an operator (rewix-sync dlq list): {_reason(reason)}"
    )


def reserved_note(fact: LineFacts) -> str:
    return f"Supplier stock: {fact.product()} is now reserved in full for this order ({fact.quantity} ordered)."


def sent_note() -> str:
    return "Supplier order: this order is now sent to the supplier."
