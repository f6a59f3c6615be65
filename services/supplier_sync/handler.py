"""The batch handler: record -> snapshot -> plan -> apply.

Every message's order state is recorded first (its own transaction). Then,
under the per-model locks, the reservations of the models it touched are
loaded, the plan (plan.py) says what to `set` at the supplier, the answers
settle every line, the paid orders whose lines are all locked are sent, and
the sent models converge once more. One batch costs one `orders/sold` call
for all the stock_ids whose totals changed (plus one after sending paid
orders), however many lines it holds. A model the supplier refuses is
isolated by splitting the call, so it fails alone; a transient failure sends
the batch to the wait queues.
"""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from shared import retry
from shared.consumer import Delivery
from shared.db import session_scope
from shared.errors import ExternalError
from shared.logging import bound_ids, get_logger
from shared.messages import OrderLineMessage, parse_order_line
from shared.reservations import repository
from shared.rewix import GrowingOrder, RewixClient
from shared.vocabulary import LineState
from services.supplier_sync import plan, store
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.plan import Convergence, Locked, Send, Sent, StockAnswer
from services.supplier_sync.sending import send_once

log = get_logger(__name__)


class OrderLineHandler:
    def __init__(self, database_url: str, client: RewixClient, confirm: ShopConfirmation | None = None) -> None:
        self.database_url = database_url
        self.client = client
        # Deletes and restores a webhook claimed are asked of the shop first (confirm.py).
        self.confirm = confirm or ShopConfirmation(None, None)

    def __call__(self, batch: Sequence[Delivery]) -> list[retry.Outcome]:
        outcomes: list[retry.Outcome | None] = [None] * len(batch)
        messages: list[tuple[int, OrderLineMessage]] = []
        for index, delivery in enumerate(batch):
            try:
                message = parse_order_line(delivery.body)
            except ValueError as exc:
                outcomes[index] = retry.outcome_of(exc, "unparseable message")
                continue
            if message.confirm:
                outcomes[index] = self.confirm(message)
            else:
                messages.append((index, message))

        recorded = self.record([m for _, m in messages])
        try:
            convergence = self.converge(set(recorded.stock_ids), set(recorded.order_ids))
        except ExternalError as exc:
            failure = retry.outcome_of(exc, "supplier")
            if isinstance(failure, retry.DeadLetter):
                raise  # only a transient supplier failure stops the whole batch; refusals are per model
            log.warning("supplier unavailable, batch will be retried", error=exc.reason[:200], status=exc.status)
            return [o or failure for o in outcomes]
        for index, message in messages:
            outcomes[index] = plan.message_outcome(message, convergence)
        return [o or retry.Ack() for o in outcomes]

    def record(self, messages: list[OrderLineMessage]) -> store.Recorded:
        with session_scope(self.database_url) as session:
            recorded = store.record_batch(session, messages)
        for message, applied in zip(messages, recorded.applied):
            if not applied:
                log.info(
                    "older order state ignored",
                    order_id=message.order_id,
                    message_id=message.message_id,
                    date_modified_gmt=str(message.date_modified_gmt),
                )
        return recorded

    def dead_lettering(self, final: Sequence[tuple[Delivery, str]]) -> None:
        """The consumer is about to dead-letter these messages: their lines show it."""
        dead: dict[tuple[int, int], tuple[LineState, str | None]] = {}
        for delivery, reason in final:
            try:
                message = parse_order_line(delivery.body)
            except ValueError:
                continue  # no line to mark
            if message.line is not None:
                dead[(message.order_id, message.line.line_id)] = (LineState.DEAD_LETTERED, reason[:500])
        if dead:
            with session_scope(self.database_url) as session:
                repository.save(session, lines=dead)

    # --- convergence -----------------------------------------------------------

    def converge(self, stock_ids: set[int], order_ids: set[int]) -> Convergence:
        result = Convergence()
        if not stock_ids and not order_ids:
            return result
        with session_scope(self.database_url) as session:
            repository.lock(session, stock_ids)
            paid = store.paid_orders(session, order_ids)
            states = self._converge_stock(session, stock_ids, order_ids, result)
            sends = plan.orders_to_send(paid, states)
            self._send(session, sends, result)
            sent_stock = plan.sent_stock(sends, result)
            if sent_stock:
                # The sent units left what is needed: set the supplier to the rest.
                self._converge_stock(session, sent_stock, order_ids, result)
            for supplier_order in store.flag_cancelled_after_sending(session, order_ids):
                log.warning(
                    "shop order cancelled after it was sent to the supplier",
                    order_id=supplier_order.shop_order_id,
                    supplier_order_id=supplier_order.supplier_order_id,
                )
            errors = plan.order_errors(order_ids, result)
            store.note_order_sync(session, {o for o, e in errors.items() if e is None}, None)
            for order_id, error in errors.items():
                if error is not None:
                    store.note_order_sync(session, {order_id}, error)
        return result

    def _converge_stock(self, session: Session, stock_ids: set[int], order_ids: set[int], result: Convergence) -> plan.LineStates:
        snapshot = repository.load(session, stock_ids, order_ids)
        wanted = plan.totals_to_set(snapshot, result.stock)
        answers = self._set(wanted) if wanted else {}
        result.stock.update(answers)
        lines = plan.settle_lines(snapshot, result.stock)
        for order_id, why in lines.short.items():
            result.short.setdefault(order_id, why)
        repository.save(session, locks=plan.locks_to_save(wanted, answers), lines=lines.states)
        return lines.states

    def _set(self, to_set: dict[int, int]) -> dict[int, StockAnswer]:
        """One call for all; on a refusal, split to find the culprit(s)."""
        try:
            growing = self.client.modify_growing_order(set=to_set)
        except ExternalError as exc:
            refusal = retry.outcome_of(exc)
            if not isinstance(refusal, retry.DeadLetter):
                raise  # transient: the whole batch waits
            if len(to_set) == 1:
                (sid,) = to_set
                log.error("supplier refused a model", stock_id=sid, status=exc.status, reason=exc.reason[:200])
                return {sid: refusal}
            items = sorted(to_set.items())
            middle = len(items) // 2
            return self._set(dict(items[:middle])) | self._set(dict(items[middle:]))
        return {sid: Locked(growing.locked(sid), _available(growing, sid)) for sid in to_set}

    def _send(self, session: Session, sends: list[Send], result: Convergence) -> None:
        for send in sends:
            order = send.order
            with bound_ids(order_id=order.order_id):
                try:
                    status = send_once(
                        self.client, key=order.key, recipient=order.recipient, note=order.customer_note, items=send.items
                    )
                except ExternalError as exc:
                    outcome = retry.outcome_of(exc)
                    if isinstance(outcome, retry.DeadLetter):
                        log.error("supplier refused the dropshipping order", key=order.key, status=exc.status, reason=exc.reason[:200])
                    else:
                        log.warning("dropshipping order not sent yet", key=order.key, error=exc.reason[:200])
                    result.orders[order.order_id] = outcome  # type: ignore[assignment]
                else:
                    store.record_supplier_order(session, order.order_id, order.key, status.order_id or None, status.status)
                    result.orders[order.order_id] = Sent(status.order_id or None, status.status)
                repository.save(session, lines=plan.lines_after_send(send, result.orders[order.order_id]))


def _available(growing: GrowingOrder, stock_id: int) -> int | None:
    model = growing.models.get(stock_id)
    return model.available if model else None
