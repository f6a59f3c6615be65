"""Convergence as a plan: what to set at the supplier, what becomes of each line, which paid orders go out. No I/O.

The handler (handler.py) runs record -> snapshot -> plan -> apply; the supplier's
answers feed the next step of the plan:

    snapshot = repository.load(stock_ids, order_ids)    # held lines, known locks, lines that may change
    wanted   = totals_to_set(snapshot, answers)          # stock_id -> units: one `set` call for all
    answers  = what the supplier said per stock_id       # Locked, or a refusal (retry.DeadLetter)
    lines    = settle_lines(snapshot, answers)           # locked / short / released / failed, and who is short
    sends    = orders_to_send(paid, lines.states)        # paid orders whose every line is locked
    outcomes per order sent                              # Sent, or retry.DeadLetter / retry.RetryLater
    (the sent units leave what is needed: the sent models converge once more)
    message_outcome(message, convergence)                # what the consumer does with each message

Per-item failures are the failure policy's outcomes (shared/failures/retry.py decides
what an exception means and what kind of failure it is), kept per stock_id and
per order in `Convergence`, so one model or one order failing never decides
for the others; a message's outcome keeps the kind of the failure it stands for.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.failures import retry
from shared.messaging.messages import OrderLineMessage
from shared.orders.vocabulary import READY_TO_SEND, REFUSED_ORDER_ERROR, LineState
from shared.reservations.model import LineKey, Lock, Snapshot, allocate, releases
from services.supplier_sync.keys import choose_key

# Line states to write: (order_id, line_id) -> (state, error).
LineStates = dict[LineKey, tuple[LineState, str | None]]


@dataclass(frozen=True)
class Locked:
    """The supplier answered a `set` of the model: it holds `locked` units now."""

    locked: int
    available: int | None = None


# What became of a model asked of the supplier. A refusal (a model it does not
# sell) is a retry.DeadLetter; a 5xx for this model alone (the others of the
# call went through) is a retry.RetryLater: its messages wait on the schedule.
StockAnswer = Locked | retry.DeadLetter | retry.RetryLater


def model_failure(exc: BaseException) -> retry.DeadLetter | retry.RetryLater | None:
    """A `set` failure that may be about one of the models named, or None when it is about the server.

    The failure policy decides both (shared/failures/retry.py, `about_the_item`):
    a refusal or a 5xx may name a model, and is isolated by splitting the call;
    a 429, a timeout, a cut connection or a refused account are about the
    server or the account, whatever the call named.
    """
    outcome = retry.outcome_of(exc)
    if isinstance(outcome, (retry.DeadLetter, retry.RetryLater)) and retry.about_the_item(outcome):
        return outcome
    return None


@dataclass(frozen=True)
class Sent:
    """A dropshipping order exists at the supplier for this shop order."""

    supplier_order_id: int | None  # None while the supplier does not show it yet
    status: int


# What became of a paid order: sent, refused (retry.DeadLetter), or not now (retry.RetryLater).
SendOutcome = Sent | retry.DeadLetter | retry.RetryLater


@dataclass
class Convergence:
    """What the supplier made of one batch, per stock_id and per order."""

    stock: dict[int, StockAnswer] = field(default_factory=dict)
    orders: dict[int, SendOutcome] = field(default_factory=dict)
    short: dict[int, str] = field(default_factory=dict)  # order_id -> why it cannot be sent yet
    lines: dict[LineKey, tuple[LineState, str | None]] = field(default_factory=dict)  # every line state written, last wins
    # order_id -> (stock_id, its failure): the order has a line in a model that failed with a 5xx.
    held_up: dict[int, tuple[int, retry.RetryLater]] = field(default_factory=dict)
    # Paid orders found ready to send, when sending is the send worker's: asked of it once this commits.
    to_send: list[int] = field(default_factory=list)

    def refused_orders(self) -> dict[int, retry.DeadLetter]:
        return {o: a for o, a in self.orders.items() if isinstance(a, retry.DeadLetter)}


def totals_to_set(snapshot: Snapshot, answers: Mapping[int, StockAnswer]) -> dict[int, int]:
    """stock_id -> units the supplier must be set to: the models not in step, but for refused ones."""
    wanted = {}
    for stock_id in snapshot.held:
        reservation = snapshot.reservation(stock_id)
        if not isinstance(answers.get(stock_id), (retry.DeadLetter, retry.RetryLater)) and not reservation.in_step():
            wanted[stock_id] = reservation.needed
    return wanted


def locks_to_save(wanted: Mapping[int, int], answers: Mapping[int, StockAnswer]) -> list[Lock]:
    """The stock_locks rows after a `set`: what was asked and what the supplier then held."""
    return [
        Lock(stock_id, wanted[stock_id], answer.locked, answer.available)
        for stock_id, answer in sorted(answers.items())
        if stock_id in wanted and isinstance(answer, Locked)
    ]


@dataclass(frozen=True)
class LinePlan:
    states: LineStates
    short: dict[int, str]  # order_id -> why (its first short line)


def settle_lines(snapshot: Snapshot, answers: Mapping[int, StockAnswer]) -> LinePlan:
    """The state of every line of the snapshot's models after the supplier answered.

    Held lines of a refused model fail; the others share what the supplier
    holds (its answer, else the lock last seen), oldest order first, and the
    rest are short. Lines not held any more are released; lines already sent
    are left alone.
    """
    states: LineStates = {}
    short_orders: dict[int, str] = {}
    for stock_id, lines in snapshot.held.items():
        answer = answers.get(stock_id)
        if isinstance(answer, retry.DeadLetter):
            reason = f"supplier refused stock_id {stock_id}: {answer.reason}"[:500]
            for line in lines:
                states[line.key] = (LineState.FAILED, reason)
            continue
        have = answer.locked if isinstance(answer, Locked) else snapshot.reservation(stock_id).locked
        covered, short = allocate(have, lines)
        need = sum(line.quantity for line in lines)
        for key in covered:
            states[key] = (LineState.LOCKED, None)
        why = f"supplier locked {have} of {need} for stock_id {stock_id}"
        for key in sorted(short):
            states[key] = (LineState.SHORT, why)
            short_orders.setdefault(key[0], why)
    for line in snapshot.tracked:
        if not line.sent and line.key not in states and releases(line):
            states[line.key] = (LineState.RELEASED, None)
    return LinePlan(states, short_orders)


@dataclass(frozen=True)
class PaidLine:
    line_id: int
    stock_id: int
    quantity: int
    version: datetime | None  # the order state it was recorded from
    state: str


@dataclass(frozen=True)
class PaidOrder:
    """A paid order not sent yet, with its lines still in the order."""

    order_id: int
    number: str | None
    date_modified_gmt: datetime | None
    supplier_line_ids: tuple[int, ...]
    lines: tuple[PaidLine, ...]
    recipient: dict[str, Any] | None = None
    customer_note: str = ""

    @property
    def key(self) -> str:
        """The key a first send chooses (keys.choose_key); once frozen, the recorded key is used instead."""
        return choose_key(self.number, self.order_id)


@dataclass(frozen=True)
class Send:
    order: PaidOrder
    items: dict[int, int]  # stock_id -> quantity
    line_keys: list[LineKey]


def orders_to_send(paid: Iterable[PaidOrder], states: Mapping[LineKey, tuple[str, str | None]]) -> list[Send]:
    """Paid orders whose every supplier line is recorded, of their latest state, and locked.

    `states` are the lines' new states; a line not in it keeps its stored state.
    A line with nothing left to deliver (refunded whole) is neither waited for
    nor sent; an order left with no such line needs nothing of the supplier.
    """
    sends = []
    for order in paid:
        if not order.lines or {l.line_id for l in order.lines} != set(order.supplier_line_ids):
            continue  # some lines of this state have not arrived yet
        if any(l.version != order.date_modified_gmt for l in order.lines):
            continue  # some lines are of an older state
        lines = tuple(l for l in order.lines if l.quantity > 0)
        if not lines or any(
            states.get((order.order_id, l.line_id), (l.state, None))[0] != LineState.LOCKED for l in lines
        ):
            continue
        items: dict[int, int] = {}
        for l in lines:
            items[l.stock_id] = items.get(l.stock_id, 0) + l.quantity
        sends.append(Send(order, items, [(order.order_id, l.line_id) for l in lines]))
    return sends


def send_outcome(order_id: int, convergence: Convergence) -> retry.Outcome:
    """What the send worker does with a send request once its order was looked at.

    Sent, or nothing to send (sent already, cancelled, not every line locked:
    the lock work asks again once it is ready): done. A refusal is dead-lettered
    with its reason; a send that may work later waits on the schedule.
    """
    sent = convergence.orders.get(order_id)
    if isinstance(sent, retry.DeadLetter):
        return sent.saying(f"supplier refused the dropshipping order: {sent.reason}")
    if isinstance(sent, retry.RetryLater):
        return sent.saying(f"dropshipping order not sent: {sent.reason}")
    if order_id in convergence.held_up:
        stock_id, failure = convergence.held_up[order_id]
        return failure.saying(f"supplier failed on stock_id {stock_id}: {failure.reason}")
    return retry.Ack()


def lines_after_send(send: Send, outcome: SendOutcome) -> LineStates:
    """Sent lines are done; lines of a refused order fail; a send to retry changes nothing."""
    if isinstance(outcome, Sent):
        return {key: (LineState.SENT, None) for key in send.line_keys}
    if isinstance(outcome, retry.DeadLetter):
        reason = f"{REFUSED_ORDER_ERROR}: {outcome.reason}"[:500]
        return {key: (LineState.FAILED, reason) for key in send.line_keys}
    return {}


def sent_stock(sends: Iterable[Send], convergence: Convergence) -> set[int]:
    """The models whose units left what is needed because their order was sent."""
    return {s for send in sends if isinstance(convergence.orders.get(send.order.order_id), Sent) for s in send.items}


def order_errors(order_ids: Iterable[int], convergence: Convergence) -> dict[int, str | None]:
    """order_id -> the error to show on the shop order (None: it synced)."""
    refused = convergence.refused_orders()
    return {o: refused[o].reason[:500] if o in refused else None for o in sorted(set(order_ids))}


def models_outcome(stock_ids: Iterable[int], convergence: Convergence) -> retry.Outcome:
    """What the consumer does with a convergence request (shared/messaging/messages.py, ConvergeMessage).

    Like a line's message: a model that failed with a 5xx sends it to wait on
    the schedule (first, so that model is set again; a refused one is then
    refused again), a model the supplier refused dead-letters it with the reason.
    """
    answers = [(stock_id, convergence.stock.get(stock_id)) for stock_id in sorted(set(stock_ids))]
    for stock_id, answer in answers:
        if isinstance(answer, retry.RetryLater):
            return answer.saying(f"supplier failed on stock_id {stock_id}: {answer.reason}")
    for stock_id, answer in answers:
        if isinstance(answer, retry.DeadLetter):
            return answer.saying(f"supplier refused stock_id {stock_id}: {answer.reason}")
    return retry.Ack()


def message_outcome(message: OrderLineMessage, convergence: Convergence) -> retry.Outcome:
    """What the consumer does with one message once its batch converged."""
    if message.line is not None:
        answer = convergence.stock.get(message.line.stock_id)
        if isinstance(answer, retry.DeadLetter):
            return answer.saying(f"supplier refused stock_id {message.line.stock_id}: {answer.reason}")
        if isinstance(answer, retry.RetryLater):
            return answer.saying(f"supplier failed on stock_id {message.line.stock_id}: {answer.reason}")
    if message.order_id in convergence.held_up:
        stock_id, failure = convergence.held_up[message.order_id]
        return failure.saying(f"supplier failed on stock_id {stock_id}: {failure.reason}")
    sent = convergence.orders.get(message.order_id)
    if isinstance(sent, retry.DeadLetter):
        return sent.saying(f"supplier refused the dropshipping order: {sent.reason}")
    if isinstance(sent, retry.RetryLater):
        return sent.saying(f"dropshipping order not sent: {sent.reason}")
    if message.status == READY_TO_SEND and not message.deleted and message.order_id in convergence.short:
        # A paid order waits for its goods; it is retried, then reported.
        return retry.RetryLater(convergence.short[message.order_id], kind=retry.SHORT)
    return retry.Ack()
