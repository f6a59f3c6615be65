"""The batch handler: record every message's order state, then converge the supplier.

One batch costs one `orders/sold` call for all the stock_ids whose totals
changed (plus one after sending paid orders), however many lines it holds.
A model the supplier refuses is isolated by splitting the call, so it fails
alone; a transient failure sends the batch to the wait queues.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.orm import Session

from shared import holdings, retry
from shared.consumer import Delivery
from shared.db import session_scope
from shared.errors import PermanentError, TransientError
from shared.logging import bound_ids, get_logger
from shared.messages import OrderLineMessage, parse_order_line
from shared.rewix import GrowingOrder, RewixClient
from services.supplier_sync import store
from services.supplier_sync.dispatch import send_once
from services.supplier_sync.lifecycle import HOLDING_STATUSES, allocate, is_released

log = get_logger(__name__)


@dataclass
class Convergence:
    """What went wrong for whom while converging one batch."""

    failed_stock: dict[int, PermanentError] = field(default_factory=dict)
    failed_orders: dict[int, PermanentError] = field(default_factory=dict)
    retry_orders: dict[int, TransientError] = field(default_factory=dict)
    short: dict[int, str] = field(default_factory=dict)  # order_id -> why it cannot be sent yet
    calls: int = 0


class OrderLineHandler:
    def __init__(self, database_url: str, client: RewixClient, retry_delays: list[int]) -> None:
        self.database_url = database_url
        self.client = client
        self.retry_delays = retry_delays

    def __call__(self, batch: Sequence[Delivery]) -> list[retry.Outcome]:
        outcomes: list[retry.Outcome | None] = [None] * len(batch)
        messages: list[tuple[int, OrderLineMessage]] = []
        for index, delivery in enumerate(batch):
            try:
                messages.append((index, parse_order_line(delivery.body)))
            except (ValidationError, ValueError) as exc:
                outcomes[index] = retry.DeadLetter(f"unparseable message: {_first_error(exc)}")

        with session_scope(self.database_url) as session:
            recorded = store.record_batch(session, [m for _, m in messages])
        for (_, message), applied in zip(messages, recorded.applied):
            if not applied:
                log.info(
                    "older order state ignored",
                    order_id=message.order_id,
                    message_id=message.message_id,
                    date_modified_gmt=str(message.date_modified_gmt),
                )

        try:
            result = self.converge(set(recorded.stock_ids), set(recorded.order_ids))
        except TransientError as exc:
            log.warning("supplier unavailable, batch will be retried", error=exc.reason[:200], status=exc.status)
            failure = retry.RetryLater(f"supplier: {exc.reason}", exc.status, exc.retry_after)
            return [o or failure for o in outcomes]

        for index, message in messages:
            outcomes[index] = self._outcome(message, result)
        self._mark_final_failures(batch, outcomes, messages)
        return [o or retry.Ack() for o in outcomes]

    # --- convergence -----------------------------------------------------------

    def converge(self, stock_ids: set[int], order_ids: set[int]) -> Convergence:
        result = Convergence()
        if not stock_ids and not order_ids:
            return result
        with session_scope(self.database_url) as session:
            holdings.lock_stock_ids(session, stock_ids)
            self._set_to_needed(session, stock_ids, order_ids, result)
            sent_stock = self._send_paid(session, order_ids, result)
            if sent_stock:
                # The sent units left what is needed: set the supplier to the rest.
                self._set_to_needed(session, sent_stock, order_ids, result)
            for supplier_order in store.flag_cancelled_after_sending(session, order_ids):
                log.warning(
                    "shop order cancelled after it was sent to the supplier",
                    order_id=supplier_order.shop_order_id,
                    supplier_order_id=supplier_order.supplier_order_id,
                )
            failed = {**result.failed_orders}
            store.note_order_sync(session, order_ids - failed.keys(), None)
            for order_id, exc in failed.items():
                store.note_order_sync(session, {order_id}, exc.reason[:500])
        return result

    def _set_to_needed(self, session: Session, stock_ids: set[int], order_ids: set[int], result: Convergence) -> None:
        held = store.held_lines(session, stock_ids)
        needed = {sid: sum(l.quantity for l in lines) for sid, lines in held.items()}
        known = store.known_locks(session, stock_ids)
        to_set = {
            sid: total
            for sid, total in needed.items()
            if sid not in result.failed_stock
            and (known[sid].needed != total or known[sid].locked != total if sid in known else total > 0)
        }
        locked = {sid: k.locked for sid, k in known.items()}
        if to_set:
            answers = self._set(to_set, result)
            store.save_locks(
                session,
                {
                    sid: (to_set[sid], growing.locked(sid), _available(growing, sid))
                    for sid, growing in answers.items()
                },
            )
            locked.update({sid: growing.locked(sid) for sid, growing in answers.items()})
        self._update_line_statuses(session, stock_ids, order_ids, held, locked, result)

    def _set(self, to_set: dict[int, int], result: Convergence) -> dict[int, GrowingOrder]:
        """One call for all; on a permanent refusal, split to find the culprit(s)."""
        try:
            result.calls += 1
            growing = self.client.modify_growing_order(set=to_set)
            return {sid: growing for sid in to_set}
        except PermanentError as exc:
            if len(to_set) == 1:
                (sid,) = to_set
                result.failed_stock[sid] = exc
                log.error("supplier refused a model", stock_id=sid, status=exc.status, reason=exc.reason[:200])
                return {}
            items = sorted(to_set.items())
            middle = len(items) // 2
            return self._set(dict(items[:middle]), result) | self._set(dict(items[middle:]), result)

    def _update_line_statuses(self, session, stock_ids, order_ids, held, locked, result: Convergence) -> None:
        statuses: dict[tuple[int, int], tuple[str, str | None]] = {}
        for sid, lines in held.items():
            if sid in result.failed_stock:
                reason = f"supplier refused stock_id {sid}: {result.failed_stock[sid].reason}"[:500]
                for line in lines:
                    statuses[(line.order_id, line.line_id)] = ("failed", reason)
                continue
            have = locked.get(sid, 0)
            covered, short = allocate(have, lines)
            need = sum(l.quantity for l in lines)
            for key in covered:
                statuses[key] = ("locked", None)
            for key in short:
                statuses[key] = ("short", f"supplier locked {have} of {need} for stock_id {sid}")
                result.short.setdefault(key[0], statuses[key][1])  # type: ignore[arg-type]
        for order_id, line_id, removed, status, deleted, sent in store.lines_of_stock(session, stock_ids, order_ids):
            key = (order_id, line_id)
            if sent:
                continue
            if key not in statuses and (removed or is_released(status, deleted) or status not in HOLDING_STATUSES):
                statuses[key] = ("released", None)
        store.set_line_statuses(session, statuses)

    def _send_paid(self, session: Session, order_ids: set[int], result: Convergence) -> set[int]:
        sent_stock: set[int] = set()
        for candidate in store.send_candidates(session, order_ids):
            order = candidate.order
            key = order.number or str(order.id)
            with bound_ids(order_id=order.id):
                try:
                    result.calls += 1
                    status = send_once(
                        self.client, key=key, recipient=order.recipient, note=order.customer_note, items=candidate.items
                    )
                except PermanentError as exc:
                    result.failed_orders[order.id] = exc
                    store.mark_lines(session, candidate.line_keys, "failed", f"supplier refused the order: {exc.reason}"[:500])
                    log.error("supplier refused the dropshipping order", key=key, status=exc.status, reason=exc.reason[:200])
                    continue
                except TransientError as exc:
                    result.retry_orders[order.id] = exc
                    log.warning("dropshipping order not sent yet", key=key, error=exc.reason[:200])
                    continue
                store.record_supplier_order(session, order.id, key, status.order_id or None, status.status)
                store.mark_lines(session, candidate.line_keys, "sent", None)
                sent_stock |= candidate.items.keys()
        return sent_stock

    # --- outcomes ---------------------------------------------------------------

    def _outcome(self, message: OrderLineMessage, result: Convergence) -> retry.Outcome:
        if message.line is not None and message.line.stock_id in result.failed_stock:
            exc = result.failed_stock[message.line.stock_id]
            return retry.DeadLetter(f"supplier refused stock_id {message.line.stock_id}: {exc.reason}", exc.status)
        if message.order_id in result.failed_orders:
            exc = result.failed_orders[message.order_id]
            return retry.DeadLetter(f"supplier refused the dropshipping order: {exc.reason}", exc.status)
        if message.order_id in result.retry_orders:
            exc = result.retry_orders[message.order_id]
            return retry.RetryLater(f"dropshipping order not sent: {exc.reason}", exc.status, exc.retry_after)
        if message.status == "processing" and not message.deleted and message.order_id in result.short:
            # A paid order waits for its goods; it is retried, then reported.
            return retry.RetryLater(result.short[message.order_id])
        return retry.Ack()

    def _mark_final_failures(self, batch, outcomes, messages) -> None:
        """Lines whose message goes to the dead letters now show it."""
        dead: dict[tuple[int, int], str] = {}
        for index, message in messages:
            outcome = outcomes[index]
            if message.line is None:
                continue
            final = isinstance(outcome, retry.DeadLetter) or (
                isinstance(outcome, retry.RetryLater) and batch[index].attempts >= len(self.retry_delays)
            )
            if final:
                dead[(message.order_id, message.line.line_id)] = outcome.reason[:500]  # type: ignore[union-attr]
        if dead:
            with session_scope(self.database_url) as session:
                store.set_line_statuses(session, {k: ("dead_lettered", r) for k, r in dead.items()})


def _available(growing: GrowingOrder, stock_id: int) -> int | None:
    model = growing.models.get(stock_id)
    return model.available if model else None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"[:300]
    return str(exc)[:300]
