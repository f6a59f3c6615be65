"""Applies status changes: a history row in PostgreSQL, then the shop update.

Each status of a supplier order reaches the shop once, however often its
message arrives. The history row (unique per supplier order and status)
carries the shop's progress: new -> noting -> done.

    new     nothing written to the shop yet: mark noting, write the note;
            on Dispatched read the order (never complete or tell the customer
            about one given up in the shop), add the tracking to the Shipment
            Tracking plugin where the shop has it, complete the order (the
            completion e-mail then carries the plugin's tracking), add the
            customer's tracking note; mark done
    noting  a previous attempt may have written part of it (a crash, a timeout,
            a failed completion): list the order's notes (and tracking items)
            and write each only if it is not there; complete only if the order
            is not completed with this tracking already
    done    nothing to do

A session advisory lock on the history row keeps two replicas from working
on the same status at once.

What a failure means is the failure policy's (shared/failures/retry.py): a
shop that is down or answers 5xx/429 sends the message to wait on the
schedule, an order the shop refuses is dead-lettered, and a shop refusing the
REST keys (401/403) blames no status change: the batch's messages go back to
the queue untouched (`retry.Paused`), the consumer stops taking status
changes, and `wait_until_workable` waits until the shop takes the keys again
(shared/failures/account_pause.py). The row left at `noting` makes the
resumed write look before it writes, so each status still reaches the shop once.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from shared.clients.rewix import status_name
from shared.clients.shop import WooCommerceClient
from shared.db import get_engine
from shared.failures import account_pause, retry
from shared.failures.errors import ExternalError
from shared.messaging.consumer import Delivery
from shared.messaging.messages import StatusChangeMessage, UnparseableMessage, parse_status_change
from shared.observability import metrics
from shared.observability.logging import bound_ids, get_logger
from shared.orders.vocabulary import GIVEN_UP_STATUSES, ShopStatus
from services.status_poller import store
from services.status_poller.shop_updates import (
    ShopUpdate, TrackingItem, completion_needed, has_note, has_tracking, plan,
)

log = get_logger(__name__)

NEW, NOTING, DONE = "new", "noting", "done"


class StatusChangeApplier:
    """The BatchConsumer handler of rewix.status_changes: one outcome per delivery."""

    def __init__(self, database_url: str, shop: WooCommerceClient, *, customer_tracking_note: bool = True) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop
        self.customer_tracking_note = customer_tracking_note

    def __call__(self, batch: Sequence[Delivery]) -> list[retry.Outcome]:
        outcomes: list[retry.Outcome] = []
        for delivery in batch:
            if outcomes and isinstance(outcomes[-1], retry.Paused):
                outcomes.append(outcomes[-1])  # the shop refuses the keys: the rest go back untried
            else:
                outcomes.append(self.apply_delivery(delivery))
        return outcomes

    def wait_until_workable(self, paused: retry.Paused, stop: threading.Event) -> None:
        """The consumer stopped taking status changes for refused keys: wait until the shop takes them again."""
        account_pause.wait_until_accepted(self.shop.probe_keys, stop, worker="status_applier", reason=paused.reason,
                                          account=paused.account)

    def apply_delivery(self, delivery: Delivery) -> retry.Outcome:
        try:
            message = parse_status_change(delivery.body)
        except UnparseableMessage as exc:
            return retry.outcome_of(exc, "unparseable status change")
        with bound_ids(order_id=message.shop_order_id, message_id=message.message_id):
            try:
                return self.apply(message)
            except SQLAlchemyError as exc:
                log.warning("database unavailable, status change will be retried", error=repr(exc)[:300])
                return retry.outcome_of(exc)

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
            shipped_on=message.observed_at.date(),
            customer_note=self.customer_tracking_note,
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
            metrics.status_change_applied(status_name(message.new_status), message.observed_at)
            log.info(
                "status applied to the shop",
                key=message.order_key,
                status=message.new_status,
                status_name=status_name(message.new_status),
                completed=update.complete,
            )
        return outcome

    def _write_shop(self, shop_order_id: int, update: ShopUpdate, *, uncertain: bool) -> retry.Outcome:
        """Note, tracking, completion, customer note. `uncertain`: a previous attempt may have done any of them."""
        try:
            notes = self.shop.list_notes(shop_order_id) if uncertain else []
            if not (uncertain and has_note(notes, update.note)):
                self.shop.add_note(shop_order_id, update.note)
            if update.complete:
                # Read first: the order may be completed already (a retry) or given up in the shop.
                current = self.shop.get_order(shop_order_id)
                given_up = current.get("status") in GIVEN_UP_STATUSES
                if update.tracking is not None and not given_up:
                    self._write_tracking(shop_order_id, update.tracking, uncertain=uncertain)
                if completion_needed(current, update):
                    self.shop.complete_order(shop_order_id, meta=update.meta)
                elif current.get("status") != ShopStatus.COMPLETED:
                    log.warning("dispatched, but the shop order is not completed", shop_status=current.get("status"))
                if update.customer_note and not given_up and not (uncertain and has_note(notes, update.customer_note)):
                    self.shop.add_note(shop_order_id, update.customer_note, customer_note=True)
        except ExternalError as exc:
            outcome = retry.outcome_of(exc)
            if isinstance(outcome, retry.RetryLater):
                log.warning("shop unavailable, status change will be retried", error=exc.reason[:300], status=exc.status)
            elif isinstance(outcome, retry.DeadLetter):
                log.error("shop refused the status update", error=exc.reason[:300], status=exc.status)
            # Paused: the keys, not this status change; the pause says so, once a minute.
            return outcome
        return retry.Ack()

    def _write_tracking(self, shop_order_id: int, tracking: TrackingItem, *, uncertain: bool) -> None:
        """Into the Shipment Tracking plugin, once; a shop without it keeps the tracking in the order meta."""
        if uncertain:
            items = self.shop.list_shipment_trackings(shop_order_id)
            if items is None or has_tracking(items, tracking.number):
                return
        added = self.shop.add_shipment_tracking(
            shop_order_id, tracking_number=tracking.number, provider=tracking.provider,
            link=tracking.link, date_shipped=tracking.shipped_on,
        )
        if added is None:
            log.info("the shop has no Shipment Tracking plugin: the tracking stays in the order meta")
