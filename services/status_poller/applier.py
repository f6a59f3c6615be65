"""Applies status changes: a history row in PostgreSQL, then the shop update.

Each status of a supplier order reaches the shop once, however often its
message arrives. The history row (unique per supplier order and status)
carries the shop's progress: new -> noting -> done.

    new     nothing written to the shop yet: mark noting, write the note,
            complete the order if the status says so (read it first: never
            complete one cancelled in the shop), mark done
    noting  a previous attempt may have written part of it (a crash, a timeout,
            a failed completion): list the order's notes and write the note
            only if it is not there; complete only if the order is not
            completed with this tracking already
    done    nothing to do

A session advisory lock on the history row keeps two replicas from working
on the same status at once.
"""
from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from shared import retry
from shared.consumer import Delivery
from shared.db import get_engine
from shared.errors import PermanentError, TransientError
from shared.logging import bound_ids, get_logger
from shared.messages import StatusChangeMessage, parse_status_change
from shared.rewix import status_name
from shared.shop import WooCommerceClient
from services.status_poller import store
from services.status_poller.shop_updates import ShopUpdate, completion_needed, has_note, plan

log = get_logger(__name__)

NEW, NOTING, DONE = "new", "noting", "done"


class StatusChangeApplier:
    """The BatchConsumer handler of rewix.status_changes: one outcome per delivery."""

    def __init__(self, database_url: str, shop: WooCommerceClient) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop

    def __call__(self, batch: Sequence[Delivery]) -> list[retry.Outcome]:
        return [self.apply_delivery(delivery) for delivery in batch]

    def apply_delivery(self, delivery: Delivery) -> retry.Outcome:
        try:
            message = parse_status_change(delivery.body)
        except (ValidationError, ValueError) as exc:
            return retry.DeadLetter(f"unparseable status change: {str(exc)[:300]}")
        with bound_ids(order_id=message.shop_order_id, message_id=message.message_id):
            try:
                return self.apply(message)
            except SQLAlchemyError as exc:
                log.warning("database unavailable, status change will be retried", error=repr(exc)[:300])
                return retry.RetryLater(f"database error: {exc!r}"[:300])

    def apply(self, message: StatusChangeMessage) -> retry.Outcome:
        with self.engine.begin() as conn:
            order = store.find_supplier_order(conn, message.order_key)
            if order is None:
                return retry.DeadLetter(f"no supplier order with key {message.order_key!r}")
            history = store.ensure_history(
                conn,
                order.id,
                old_status=message.old_status,
                new_status=message.new_status,
                tracking_code=message.tracking_code,
                tracking_url=message.tracking_url,
                carrier_name=message.carrier_name,
                observed_at=message.observed_at,
            )
        if history.shop_state == DONE:
            log.info("status already applied", key=message.order_key, status=message.new_status)
            return retry.Ack()
        update = plan(
            message.supplier_order_id or order.supplier_order_id or 0,
            message.new_status,
            tracking_code=history.tracking_code,
            tracking_url=history.tracking_url,
            carrier_name=history.carrier_name,
        )
        with self.engine.connect() as conn:
            if not store.try_lock_history(conn, history.id):
                conn.rollback()
                return retry.RetryLater("another worker is applying this status")
            conn.commit()
            try:
                state = store.history_state(conn, history.id)
                conn.commit()
                if state == DONE:
                    return retry.Ack()
                if state == NEW:
                    store.set_history_state(conn, history.id, NOTING)
                    conn.commit()
                outcome = self._write_shop(order.shop_order_id, update, uncertain=state == NOTING)
                if isinstance(outcome, retry.Ack):
                    store.set_history_state(conn, history.id, DONE)
                elif isinstance(outcome, retry.DeadLetter):
                    store.note_shop_failure(conn, order.id, f"shop update for status {message.new_status} failed: {outcome.reason}")
                conn.commit()
            finally:
                try:
                    store.unlock_history(conn, history.id)
                    conn.commit()
                except SQLAlchemyError:
                    # The lock dies with the session: make sure the pool drops it.
                    conn.invalidate()
        if isinstance(outcome, retry.Ack):
            log.info(
                "status applied to the shop",
                key=message.order_key,
                status=message.new_status,
                status_name=status_name(message.new_status),
                completed=update.complete,
            )
        return outcome

    def _write_shop(self, shop_order_id: int, update: ShopUpdate, *, uncertain: bool) -> retry.Outcome:
        """Note, then completion. `uncertain`: a previous attempt may have done either already."""
        try:
            if not (uncertain and has_note(self.shop.list_notes(shop_order_id), update.note)):
                self.shop.add_note(shop_order_id, update.note)
            if update.complete:
                # Read first: the order may be completed already (a retry) or given up in the shop.
                current = self.shop.get_order(shop_order_id)
                if completion_needed(current, update):
                    self.shop.complete_order(shop_order_id, meta=update.meta)
                elif current.get("status") != "completed":
                    log.warning("dispatched, but the shop order is not completed", shop_status=current.get("status"))
        except TransientError as exc:
            log.warning("shop unavailable, status change will be retried", error=exc.reason[:300], status=exc.status)
            return retry.RetryLater(exc.reason[:300], status=exc.status, retry_after=exc.retry_after)
        except PermanentError as exc:
            log.error("shop refused the status update", error=exc.reason[:300], status=exc.status)
            return retry.DeadLetter(exc.reason[:300], status=exc.status)
        return retry.Ack()
