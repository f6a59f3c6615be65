"""The send worker: paid orders go to the supplier at the pace the locks leave.

The dropshipping API takes one order a request and has no batch, so under a
rush sends cannot keep up with the orders while locks, coalesced, can. The
lock work (handler.py) therefore never sends: once a convergence commits, it
publishes a `SendOrderMessage` per paid order whose lines are all locked onto
`rewix.order_sends` (shared/messaging/topology.py), and this worker, a second
consumer in the same process, sends them with a client of LEFTOVER priority
on the shared request budget (shared/clients/rewix/budget.py): a send takes a
request only when the locks leave one. A send request is a durable message:
it survives restarts, waits on the schedule when the supplier fails, and is
dead-lettered with the supplier's reason when it refuses the order.

Each order is sent in a unit of work of its own, under its own models' locks
only (`OrderLineHandler.send_paid`), so a lock batch waits on at most one
send. Before taking those locks the worker reserves the two requests of a
send (the POST and the lookup of its key) on the budget, so it does not hold
them while waiting its turn. The units a send took leave
what is needed: the models are asked of the lock work (a `ConvergeMessage`,
source "send"), which sets them in the call it makes anyway.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from shared.clients.rewix.budget import RequestBudget, Unlimited
from shared.failures import retry
from shared.failures.errors import ExternalError
from shared.messaging import topology
from shared.messaging.amqp import Outgoing, Publisher
from shared.messaging.consumer import Delivery
from shared.messaging.messages import MAX_CONVERGE_STOCK_IDS, ConvergeMessage, SendOrderMessage, parse_send
from shared.observability.logging import bound_ids, get_logger
from shared.orders.vocabulary import LineState
from services.supplier_sync import plan
from services.supplier_sync.handler import OrderLineHandler

log = get_logger(__name__)

# Send requests taken per batch: each order is still sent on its own.
MAX_BATCH = 5
# A first send: the dropshipping POST, then the lookup of its key (sending.py).
REQUESTS_PER_SEND = 2


class OrderSendHandler:
    def __init__(self, sender: OrderLineHandler, ask_to_converge: Callable[[Iterable[int]], None],
                 budget: RequestBudget | None = None) -> None:
        # An OrderLineHandler whose client spends the LEFTOVER priority (bootstrap.py).
        self.sender = sender
        self.ask_to_converge = ask_to_converge
        self.budget = budget or Unlimited()

    def __call__(self, batch: Sequence[Delivery]) -> list[retry.Outcome]:
        outcomes: list[retry.Outcome] = []
        for delivery in batch:
            try:
                request = parse_send(delivery.body)
            except ValueError as exc:
                outcomes.append(retry.outcome_of(exc, "unparseable message"))
                continue
            outcome = self._send(request.order_id, request.message_id)
            outcomes.append(outcome)
            if isinstance(outcome, retry.Paused):
                # The account, not this order: the rest go back to the queue as they were.
                outcomes += [outcome] * (len(batch) - len(outcomes))
                break
        return outcomes

    def _send(self, order_id: int, message_id: str) -> retry.Outcome:
        with bound_ids(order_id=order_id, message_id=message_id):
            # The POST and the lookup after it, reserved before the models' locks are taken.
            self.budget.reserve(REQUESTS_PER_SEND)
            try:
                convergence, sent_models = self.sender.send_paid(order_id)
            except ExternalError as exc:
                outcome = retry.outcome_of(exc, "supplier")
                log.warning("send request not done", error=exc.reason[:200], status=exc.status)
                return outcome
            except SQLAlchemyError as exc:
                log.warning("database unavailable, send request will be retried", error=type(exc).__name__)
                return retry.outcome_of(exc, "database")
            finally:
                self.budget.release()
            if sent_models:
                self.ask_to_converge(sent_models)
            return plan.send_outcome(order_id, convergence)

    def dead_lettering(self, final: Sequence[tuple[Delivery, str]]) -> None:
        """Send requests about to be dead-lettered: their orders' lines show it, and the owner hears of it once,
        as for a line's message given up (handler.py)."""
        reasons: dict[int, str] = {}
        for delivery, reason in final:
            try:
                reasons.setdefault(parse_send(delivery.body).order_id, reason)
            except ValueError:
                continue  # no order to mark
        if not reasons:
            return
        with self.sender.units() as uow:
            dead: dict[tuple[int, int], tuple[LineState, str | None]] = {
                (order_id, line_id): (LineState.DEAD_LETTERED, reason[:500])
                for order_id, reason in reasons.items() for line_id in uow.orders.line_ids(order_id)
            }
            if dead:
                uow.reservations.save(lines=dead)
                OrderLineHandler.note_dead_letters(uow, dead)
            uow.commit()

    def wait_until_workable(self, paused: retry.Paused, stop: threading.Event) -> None:
        """The supplier refused the account: wait, as the lock work does, until it accepts it."""
        self.sender.wait_until_workable(paused, stop)


def send_requests(publisher: Publisher) -> Callable[[Iterable[int]], None]:
    """The lock work's way to hand paid orders to the send worker: one durable request each, confirmed."""

    def ask(order_ids: Iterable[int]) -> None:
        messages = [SendOrderMessage(order_id=order_id) for order_id in order_ids]
        publisher.publish_all([Outgoing(m.to_bytes(), topology.ORDER_SEND, m.message_id) for m in messages])

    return ask


def converge_requests(publisher: Publisher) -> Callable[[Iterable[int]], None]:
    """The send worker's way to ask the lock work to set the models a send took units from."""

    def ask(stock_ids: Iterable[int]) -> None:
        ids = sorted(set(stock_ids))
        messages = [ConvergeMessage(source="send", stock_ids=ids[start:start + MAX_CONVERGE_STOCK_IDS])
                    for start in range(0, len(ids), MAX_CONVERGE_STOCK_IDS)]
        publisher.publish_all([Outgoing(m.to_bytes(), topology.ORDER_LINE, m.message_id) for m in messages])

    return ask
