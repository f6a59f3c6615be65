"""The batch handler: record -> snapshot -> plan -> apply.

Every message's order state is recorded first (its own transaction; a
message the database refuses is split off and dead-lettered alone,
recording.py). Then,
under the per-model locks, the reservations of the models it touched are
loaded, the plan (plan.py) says what to `set` at the supplier, the answers
settle every line, the paid orders whose lines are all locked are sent, and
the sent models converge once more. One batch costs one `orders/sold` call
for all the stock_ids whose totals changed (plus one after sending paid
orders), however many lines it holds. A model the supplier refuses is
isolated by splitting the call, so it fails alone; a transient failure sends
the batch to the wait queues. A convergence request on the same queue
(shared/messaging/messages.py, ConvergeMessage: `rewix-sync reconcile --apply` sends
it) adds its models to the batch's convergence: supplier_sync is the one
writer of the growing order.

Every transaction is a unit of work (unit_of_work.py) the handler opens from
its factory and commits explicitly, `with self.units() as uow: ... uow.commit()`:

1. recording the batch (recording.py; one unit per part when it is split);
2. before each call that changes what the supplier holds, the models it
   touches marked "supplier state not known" (`_forget_before_calling`);
3. before a dropshipping order's first request, its key frozen, and before
   each POST, the mark that it may exist at the supplier (keys.py, sending.py);
4. the convergence itself: the per-model locks, the snapshot, the supplier's
   answers, the line states, the orders sent, the problems, in one unit that
   commits at its end or not at all;
5. the lines of the messages dead-lettered (`dead_lettering`).

Nothing here opens a database connection: bootstrap.py wires the SQL units,
the unit tests an in-memory fake.
"""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from shared.clients.rewix import GrowingOrder, RewixClient
from shared.failures import account_pause, retry
from shared.failures.errors import ExternalError
from shared.messaging.consumer import Delivery
from shared.messaging.messages import ConvergeMessage, OrderLineMessage, parse_order_line, parse_order_lines_message
from shared.observability.logging import bound_ids, get_logger
from shared.observability.metrics import UNITS_SHORT
from shared.orders.vocabulary import LineState
from shared.reservations.model import LineKey
from services.supplier_sync import notices, plan, problems, recording
from services.supplier_sync.batch_changes import Recorded
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.plan import Convergence, Locked, Send, Sent, StockAnswer
from services.supplier_sync.sending import recipient_for_supplier, send_once
from services.supplier_sync.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = get_logger(__name__)


class OrderLineHandler:
    def __init__(self, units: UnitOfWorkFactory, client: RewixClient, confirm: ShopConfirmation | None = None, *,
                 auto_confirm: bool = False, ask_to_send: Callable[[Iterable[int]], None] | None = None) -> None:
        # A new unit of work, one transaction, per call (bootstrap.py: on PostgreSQL).
        self.units = units
        self.client = client
        # SUPPLIER_AUTO_CONFIRM: each dropshipping order asks the supplier to confirm it at once.
        self.auto_confirm = auto_confirm
        # Deletes and restores a webhook claimed are asked of the shop first (confirm.py).
        self.confirm = confirm or ShopConfirmation(None, None)
        # With a send worker (send_worker.py, bootstrap.py), the paid orders a convergence finds ready are
        # handed to it, once committed, instead of sent here: the lock work never waits on a send.
        self.ask_to_send = ask_to_send

    def __call__(self, batch: Sequence[Delivery]) -> list[retry.Outcome]:
        outcomes: list[retry.Outcome | None] = [None] * len(batch)
        messages: list[tuple[int, OrderLineMessage]] = []
        requests: list[tuple[int, ConvergeMessage]] = []
        for index, delivery in enumerate(batch):
            try:
                message = parse_order_lines_message(delivery.body)
            except ValueError as exc:
                outcomes[index] = retry.outcome_of(exc, "unparseable message")
                continue
            if isinstance(message, ConvergeMessage):
                # Its models join this batch's convergence, as if an order line had touched them.
                log.info("convergence asked", message_id=message.message_id, source=message.source,
                         models=len(message.stock_ids))
                requests.append((index, message))
            elif message.confirm:
                outcomes[index] = self.confirm(message)
            else:
                messages.append((index, message))

        try:
            recorded = self.record([m for _, m in messages])
        except SQLAlchemyError as exc:
            # The database, not a message (those are isolated in record): the whole batch waits.
            failure = retry.outcome_of(exc, "database")
            log.warning("database unavailable, batch will be retried", error=type(exc).__name__, size=len(batch))
            return [o or failure for o in outcomes]
        for position, refusal in recorded.refused.items():
            outcomes[messages[position][0]] = refusal
        self._ask_shop(messages, recorded, outcomes)
        try:
            asked = {stock_id for _, request in requests for stock_id in request.stock_ids}
            convergence = self.converge(set(recorded.stock_ids) | asked, set(recorded.order_ids))
        except ExternalError as exc:
            failure = retry.outcome_of(exc, "supplier")
            if isinstance(failure, retry.DeadLetter):
                raise  # only a transient supplier failure stops the whole batch; refusals are per model
            if isinstance(failure, retry.Paused):
                # The account, not a message: every message goes back to the queue as it was.
                return [failure if o is None else o for o in outcomes]
            log.warning("supplier unavailable, batch will be retried", error=exc.reason[:200], status=exc.status)
            return [o or failure for o in outcomes]
        for position, (index, message) in enumerate(messages):
            if position not in recorded.refused and position not in recorded.ask_shop:
                outcomes[index] = plan.message_outcome(message, convergence)
        for index, request in requests:
            outcomes[index] = plan.models_outcome(request.stock_ids, convergence)
        return [o or retry.Ack() for o in outcomes]

    def _ask_shop(self, messages: list[tuple[int, OrderLineMessage]], recorded: Recorded,
                  outcomes: list[retry.Outcome | None]) -> None:
        """Messages contradicting the recorded state of the same date: the shop is asked, once per order.

        Each such message is acked once the shop's answer is published (it is
        recorded by a later batch), or waits on the schedule with the answer's failure.
        """
        asked: dict[int, retry.Outcome] = {}
        for position in sorted(recorded.ask_shop):
            index, message = messages[position]
            if message.order_id not in asked:
                log.info("same date, another state: asking the shop", order_id=message.order_id,
                         message_id=message.message_id, date_modified_gmt=str(message.date_modified_gmt))
                asked[message.order_id] = self.confirm.ask(message.order_id, message_id=message.message_id)
            outcomes[index] = asked[message.order_id]

    def wait_until_workable(self, paused: retry.Paused, stop: threading.Event) -> None:
        """The consumer stopped taking messages for a refused account: wait until the supplier accepts it."""
        account_pause.wait_until_accepted(self.client.get_growing_order, stop, worker="supplier_sync", reason=paused.reason)

    def record(self, messages: list[OrderLineMessage]) -> Recorded:
        """Record the messages' order states; a message the database refuses fails alone (recording.py)."""
        recorded = recording.record_isolating(self.units, messages)
        for position, (message, applied) in enumerate(zip(messages, recorded.applied)):
            if not applied and position not in recorded.refused and position not in recorded.ask_shop:
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
            with self.units() as uow:
                uow.reservations.save(lines=dead)
                self.note_dead_letters(uow, dead)
                uow.commit()

    @staticmethod
    def note_dead_letters(uow: UnitOfWork, dead: dict[LineKey, tuple[LineState, str | None]]) -> None:
        """A dead-lettered line is a problem for the owner, unless its order has one open already
        (a short or refused line whose message gave up is the same problem, told once)."""
        already = {o for o, _, _ in uow.owner.open_problems({o for o, _ in dead})}
        facts = uow.owner.line_facts(dead)
        for key, (_, reason) in sorted(dead.items()):
            if key[0] in already:
                continue
            fact = facts.get(key, problems.LineFacts(key[0], key[1], 0, 0))
            uow.owner.open_problem(key[0], key[1], problems.DEAD_LETTERED, problems.dead_lettered_note(fact, reason or ""))

    # --- convergence -----------------------------------------------------------

    def converge(self, stock_ids: set[int], order_ids: set[int]) -> Convergence:
        result = Convergence()
        if not stock_ids and not order_ids:
            return result
        with self.units() as uow:
            self._converge_in(uow, stock_ids, order_ids, result, set())
            uow.commit()
        if result.to_send and self.ask_to_send is not None:
            # After the commit, so the send worker finds the lines locked; before the batch is acked,
            # so a crash in between brings the messages, and so the request, back.
            log.info("paid orders handed to the send worker", orders=len(result.to_send))
            self.ask_to_send(result.to_send)
        return result

    def send_paid(self, order_id: int) -> tuple[Convergence, set[int]]:
        """The send worker's turn for one paid order: sent now if it still must be, as the inline path would.

        Under its models' locks the order is read again: one sent, cancelled or
        changed since the request was made is left alone (the lock work asks
        again once a new state is ready). Its models are set first only if
        their supplier state is not known (a send of another order took units
        out, say); then it is sent exactly once (`_send`: the key, the marks,
        the lookup after a send that may have landed). Returns the
        convergence and the models whose units the send took: the caller
        asks the lock work to set those to what the unsent orders need.
        """
        result = Convergence()
        asked: set[int] = set()
        with self.units() as uow:
            seen = uow.orders.paid_orders({order_id})
            stock_ids = {line.stock_id for order in seen for line in order.lines}
            if not stock_ids:
                return result, set()
            uow.reservations.lock(stock_ids)
            paid = [o for o in uow.orders.paid_orders({order_id}) if {l.stock_id for l in o.lines} <= stock_ids]
            states = self._converge_stock(uow, stock_ids, {order_id}, result, asked)
            sends = plan.orders_to_send(paid, states)
            self._send(uow, sends, result, asked)
            self._hold_up_orders_of_failed_models(uow, {order_id}, result)
            self._record_problems(uow, result.lines)
            errors = plan.order_errors({order_id}, result)
            uow.orders.note_order_sync({o for o, e in errors.items() if e is None}, None)
            for refused, error in errors.items():
                if error is not None:
                    uow.orders.note_order_sync({refused}, error)
            uow.commit()
        return result, plan.sent_stock(sends, result)

    def _forget_before_calling(self, stock_ids: set[int], asked: set[int]) -> None:
        """Commit "supplier state not known" for these models before a call that changes what it holds.

        The convergence's own transaction saves what the supplier answered; if
        it never commits (a SIGKILL, a lost database, any error after the
        call), stock_locks keeps its old row, which may one day equal what is
        needed again while the supplier holds what the call set: the model
        would then pass for in step and stay wrong. A row saying "not known"
        is set again by whoever converges the model next. `asked` holds the
        models marked already in this convergence: those rows may be written
        by its transaction now, and marking them from another would wait on it.
        """
        todo = stock_ids - asked
        if todo:
            with self.units() as marker:
                marker.reservations.forget_supplier_state(todo)
                marker.commit()
            asked.update(todo)

    def _converge_in(self, uow: UnitOfWork, stock_ids: set[int], order_ids: set[int], result: Convergence,
                     asked: set[int]) -> None:
        uow.reservations.lock(stock_ids)
        paid = uow.orders.paid_orders(order_ids)
        states = self._converge_stock(uow, stock_ids, order_ids, result, asked)
        sends = plan.orders_to_send(paid, states)
        if self.ask_to_send is not None:
            result.to_send = sorted(send.order.order_id for send in sends)
            sends = []
        self._send(uow, sends, result, asked)
        sent_stock = plan.sent_stock(sends, result)
        if sent_stock:
            # The sent units left what is needed: set the supplier to the rest.
            self._converge_stock(uow, sent_stock, order_ids, result, asked)
        self._find_orders_sent_before_a_crash(uow, order_ids - {p.order_id for p in paid}, result)
        for flagged in uow.orders.flag_cancelled_after_sending(order_ids):
            log.warning(
                "shop order given up or changed after it was sent to the supplier: a person must act",
                order_id=flagged.shop_order_id,
                supplier_order_id=flagged.supplier_order_id,
                reason=flagged.reason,
            )
        self._hold_up_orders_of_failed_models(uow, order_ids, result)
        self._record_problems(uow, result.lines)
        errors = plan.order_errors(order_ids, result)
        uow.orders.note_order_sync({o for o, e in errors.items() if e is None}, None)
        for order_id, error in errors.items():
            if error is not None:
                uow.orders.note_order_sync({order_id}, error)

    def _converge_stock(self, uow: UnitOfWork, stock_ids: set[int], order_ids: set[int], result: Convergence,
                        asked: set[int]) -> plan.LineStates:
        snapshot = uow.reservations.load(stock_ids, order_ids)
        wanted = plan.totals_to_set(snapshot, result.stock)
        self._forget_before_calling(set(wanted), asked)
        answers = self._set(wanted) if wanted else {}
        # Units asked for that the supplier could not lock: what "short" costs, for the metrics.
        UNITS_SHORT.inc(sum(max(0, wanted[sid] - a.locked) for sid, a in answers.items()
                            if isinstance(a, plan.Locked) and sid in wanted))
        result.stock.update(answers)
        lines = plan.settle_lines(snapshot, result.stock)
        for order_id, why in lines.short.items():
            result.short.setdefault(order_id, why)
        result.lines.update(lines.states)
        uow.reservations.save(locks=plan.locks_to_save(wanted, answers), lines=lines.states)
        return lines.states

    def _set(self, to_set: dict[int, int]) -> dict[int, StockAnswer]:
        """One call for all; a refusal or a 5xx is isolated by splitting the call."""
        return self._set_split(to_set, _Calls())

    def _set_split(self, to_set: dict[int, int], seen: "_Calls") -> dict[int, StockAnswer]:
        """Set `to_set`; a model that fails alone gets its own answer (plan.model_failure says which failures may).

        A 5xx may be about one model or about the whole server. Until some call
        of this batch has worked, a 5xx is split into two plain calls: both
        failing means the server is down and the whole batch waits (an outage
        costs three calls, not one per model).
        """
        try:
            growing = self.client.modify_growing_order(set=to_set)
        except ExternalError as exc:
            failure = plan.model_failure(exc)
            if failure is None:
                raise  # about the server or the account, not a model: the whole batch waits
            if len(to_set) == 1:
                (sid,) = to_set
                if isinstance(failure, retry.DeadLetter):
                    log.error("supplier refused a model", stock_id=sid, status=exc.status, reason=exc.reason[:200])
                else:
                    log.warning("supplier failed on one model, retried on the schedule", stock_id=sid, status=exc.status,
                                reason=exc.reason[:200])
                return {sid: failure}
            items = sorted(to_set.items())
            halves = [dict(items[: len(items) // 2]), dict(items[len(items) // 2 :])]
            if isinstance(failure, retry.RetryLater) and not seen.worked:
                return self._server_or_model(halves, exc, seen)
            return self._set_split(halves[0], seen) | self._set_split(halves[1], seen)
        seen.worked = True
        return {sid: Locked(growing.locked(sid), _available(growing, sid)) for sid in to_set}

    def _server_or_model(self, halves: list[dict[int, int]], first: ExternalError, seen: "_Calls") -> dict[int, StockAnswer]:
        """Each half once: both failing with a 5xx is the server's failure; otherwise bisect the failing half."""
        answers: dict[int, StockAnswer] = {}
        failed: list[tuple[dict[int, int], ExternalError]] = []
        for half in halves:
            try:
                growing = self.client.modify_growing_order(set=half)
            except ExternalError as exc:
                if plan.model_failure(exc) is None:
                    raise
                failed.append((half, exc))
            else:
                seen.worked = True
                answers.update({sid: Locked(growing.locked(sid), _available(growing, sid)) for sid in half})
        if len(failed) == len(halves) and all(isinstance(plan.model_failure(e), retry.RetryLater) for _, e in failed):
            raise first  # every part fails: the server, not a model
        for half, exc in failed:
            if len(half) == 1:
                answers.update({sid: plan.model_failure(exc) for sid in half})  # type: ignore[misc]
            else:
                answers.update(self._set_split(half, seen))
        return answers

    def _send(self, uow: UnitOfWork, sends: list[Send], result: Convergence, asked: set[int]) -> None:
        for send in sends:
            order = send.order
            with bound_ids(order_id=order.order_id):
                # A dropshipping order takes its units out of the growing order.
                self._forget_before_calling(set(send.items), asked)
                # The key is frozen (committed) before any request: keys.py says why.
                with self.units() as key_unit:
                    frozen = key_unit.keys.freeze(order.order_id, order.number)
                    key_unit.commit()
                # Texts longer than the supplier takes are fitted, the same way at every attempt.
                fitted = recipient_for_supplier(order.recipient, order.customer_note)
                try:
                    status = send_once(
                        self.client,
                        key=frozen.key,
                        sent_before=frozen.sent_before,
                        mark_sending=lambda: self._mark_sending(order.order_id),
                        recipient=fitted.recipient,
                        items=send.items,
                        auto_confirm=self.auto_confirm,
                    )
                except ExternalError as exc:
                    outcome = retry.outcome_of(exc)
                    if isinstance(outcome, retry.Paused):
                        raise  # the account, not this order: the whole batch goes back
                    if isinstance(outcome, retry.DeadLetter):
                        log.error("supplier refused the dropshipping order", key=frozen.key, status=exc.status, reason=exc.reason[:200])
                    else:
                        log.warning("dropshipping order not sent yet", key=frozen.key, error=exc.reason[:200])
                    result.orders[order.order_id] = outcome
                else:
                    # The order took its units out of the growing order: whatever this convergence saved of
                    # these models before the POST (a `set` of them) is no longer what the supplier holds,
                    # and would pass for "in step" once new orders needed exactly the units it took. Whoever
                    # converges them next sets them. (A failed send leaves the row as it was: its retry looks
                    # the key up first, and an order found there is marked here then.)
                    uow.reservations.forget_supplier_state(set(send.items))
                    uow.orders.record_supplier_order(order.order_id, frozen.key, status.order_id or None, status.status,
                                                     send.items)
                    # An order that waited for its product map says so once, now that it is sent.
                    if uow.owner.tell_if_picked_up(order.order_id):
                        log.info("order sent once its product was mapped", key=frozen.key)
                    result.orders[order.order_id] = Sent(status.order_id or None, status.status)
                    if fitted.shortened:
                        # Once per order, with the send it describes: the owner reads what was cut.
                        uow.owner.tell_once(order.order_id, notices.FITTED, notices.fitted_note(fitted.shortened))
                        # Which texts and their lengths only: the values are the customer's.
                        log.info("sent with shortened fields", key=frozen.key,
                                 shortened=[f"{s.field}: {s.before} -> {s.after}" for s in fitted.shortened])
                after_send = plan.lines_after_send(send, result.orders[order.order_id])
                result.lines.update(after_send)
                uow.reservations.save(lines=after_send)

    def _find_orders_sent_before_a_crash(self, uow: UnitOfWork, order_ids: set[int], result: Convergence) -> None:
        """Record the supplier orders a worker sent and died before recording, of orders not to be sent now.

        Such an order (cancelled while its message waited to come back, say)
        would otherwise exist at the supplier unknown to us: recorded, the
        poller follows it and, if the shop order was given up, the owner is
        told to cancel it at the supplier (`orders.flag_cancelled_after_sending`).
        """
        for order_id, key in uow.orders.sent_but_not_recorded(order_ids):
            with bound_ids(order_id=order_id):
                try:
                    found = self.client.find_order_by_key(key)
                except ExternalError as exc:
                    outcome = retry.outcome_of(exc)
                    if isinstance(outcome, retry.Paused):
                        raise
                    log.warning("could not look up a key sent before a crash", key=key, error=exc.reason[:200])
                    # Its messages wait, then say what to check: nothing is sent again for such an order.
                    result.orders[order_id] = dataclasses.replace(outcome, reason=(
                        f"a send under key {key!r} may have reached the supplier before a crash, and its lookup "
                        f"failed ({exc.reason[:200]}): check on the supplier's platform whether an order with "
                        f"key {key!r} exists"))
                    continue
                if found is None:
                    continue  # the POST never reached the supplier
                uow.orders.record_supplier_order(order_id, key, found.order_id or None, found.status)
                sent = {(order_id, line_id): (LineState.SENT, None) for line_id in uow.orders.line_ids(order_id)}
                result.lines.update(sent)
                uow.reservations.save(lines=sent)
                log.warning("supplier order sent before a crash found and recorded", key=key,
                            supplier_order_id=found.order_id)

    @staticmethod
    def _hold_up_orders_of_failed_models(uow: UnitOfWork, order_ids: set[int], result: Convergence) -> None:
        """The batch's orders with a line (held, removed or released) in a model that failed with a 5xx.

        Their messages wait on the schedule, whatever line they carry: the
        model may still hold what a cancelled order or a removed line released,
        and only a retried message brings the supplier back to it.
        """
        failed = {sid: a for sid, a in result.stock.items() if isinstance(a, retry.RetryLater)}
        if not failed or not order_ids:
            return
        for order_id, stock_id in uow.orders.orders_in_models(order_ids, failed):
            result.held_up.setdefault(order_id, (stock_id, failed[stock_id]))

    @staticmethod
    def _record_problems(uow: UnitOfWork, states: dict[LineKey, tuple[LineState, str | None]]) -> None:
        """Open and clear the problems the shop owner hears of (problems.py); the notes are status_poller's."""
        if not states:
            return
        already = uow.owner.open_problems({order_id for order_id, _ in states})
        open_lines = {(o, l) for o, l, _ in already}
        # Only lines whose problem opens or clears now need their product's name: most need nothing.
        relevant = {
            key: value for key, value in states.items()
            if (value[0] in (LineState.SHORT, LineState.FAILED) and not _told_already(key, value[0], already))
            or key in open_lines or (key[0], problems.ORDER_ITSELF) in open_lines
        }
        if not relevant:
            return
        changes = problems.from_line_states(relevant, uow.owner.line_facts(relevant))
        for problem in changes.opened:
            if (problem.order_id, problem.line_id, problem.kind) not in already:
                uow.owner.open_problem(problem.order_id, problem.line_id, problem.kind, problem.note)
                log.info("problem for the shop owner", order_id=problem.order_id, line_id=problem.line_id, kind=problem.kind)
        for cleared in changes.cleared:
            if (cleared.order_id, cleared.line_id) in open_lines:
                uow.owner.clear_problem(cleared.order_id, cleared.line_id, cleared.note)

    def _mark_sending(self, order_id: int) -> None:
        """Committed before the POST (sending.py): from now on the order may exist at the supplier."""
        with self.units() as uow:
            uow.keys.mark_sending(order_id)
            uow.commit()


def _told_already(key: LineKey, state: str, already: set[tuple[int, int, str]]) -> bool:
    """Is the problem this state would open open already? (Then a retry costs no query for it.)"""
    order_id, line_id = key
    if state == LineState.SHORT:
        return (order_id, line_id, problems.SHORT) in already
    return (order_id, line_id, problems.REFUSED_MODEL) in already or (order_id, problems.ORDER_ITSELF, problems.REFUSED_ORDER) in already


class _Calls:
    """Whether any `set` call of this convergence has worked: then a 5xx is about a model, not the server."""

    worked = False


def _available(growing: GrowingOrder, stock_id: int) -> int | None:
    model = growing.models.get(stock_id)
    return model.available if model else None
