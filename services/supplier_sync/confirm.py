"""Deletes, restores and contradicting states are confirmed with the shop before anything changes.

WooCommerce signs a webhook's body, not its `X-WC-Webhook-Topic` header, so a
captured signed body of order N resent as `order.deleted` would release N,
and an old body resent as `order.restored` would lock a trashed order again.
ingest therefore publishes such an event as one message to confirm
(OrderLineMessage.confirm, shared/orders/intake.py), and here the shop is
asked (GET /orders/N):

- 404: the delete is confirmed; it is published as one.
- `trash`: the order is trashed; its trashed state is published (releasing it).
- any other status: the order is there; its current state is published, as
  the latest state wins (a replayed delete or restore then changes nothing).

What is published goes through OrderIntake like any event, marked
`confirmation`, and is recorded by the next batch. The same question settles
a state that contradicts the recorded one while claiming its date
(services/supplier_sync/lifecycle.py, `contradicts`): the shop's answer, marked
`confirmation`, is recorded even at an equal date. A shop that cannot be
asked (down, or refusing the REST keys) means the message is retried later
on the retry policy's schedule; nothing is ever released on an unconfirmed
delete.
"""
from __future__ import annotations

from shared.clients.shop import WooCommerceClient
from shared.failures import retry
from shared.failures.errors import TransientError
from shared.messaging.messages import OrderLineMessage
from shared.observability.logging import bound_ids, get_logger
from shared.orders.events import InvalidOrder
from shared.orders.intake import OrderIntake
from shared.orders.vocabulary import ShopStatus

log = get_logger(__name__)


class ShopConfirmation:
    def __init__(self, shop: WooCommerceClient | None, intake: OrderIntake | None) -> None:
        self.shop = shop
        self.intake = intake

    def close(self) -> None:
        if self.intake is not None:
            self.intake.publisher.close()

    def __call__(self, message: OrderLineMessage) -> retry.Outcome:
        """Confirm a delete or restore a webhook claimed: publish what the shop says of the order now."""
        return self.ask(message.order_id, message.topic, message_id=message.message_id)

    def ask(self, order_id: int, claimed_topic: str = "order.updated", message_id: str | None = None) -> retry.Outcome:
        """Publish the order as the shop has it now (marked `confirmation`): the state that wins.

        For a delete or restore a webhook claimed, and for a state that
        contradicts the recorded one of the same date (store.record_batch).
        """
        with bound_ids(order_id=order_id, message_id=message_id):
            if self.shop is None or self.intake is None:
                # Never release or lock on the webhook's word: wait for the shop to be configured.
                return retry.RetryLater("the shop cannot be asked: WC_URL, WC_CONSUMER_KEY and WC_CONSUMER_SECRET")
            try:
                order = self.shop.find_order(order_id)
                if order is None:
                    self.intake.submit({"id": order_id}, "order.deleted", source="confirmation")
                    found = "deleted"
                elif order.get("status") == ShopStatus.TRASH:
                    self.intake.submit(order, "order.updated", source="confirmation")
                    found = "trashed"
                else:
                    # Restored for real (or a replayed body): the order as the shop has it now.
                    topic = "order.restored" if claimed_topic == "order.restored" else "order.updated"
                    self.intake.submit(order, topic, source="confirmation")
                    found = "present"
            except InvalidOrder as exc:
                return retry.DeadLetter(f"shop: the order is not valid: {exc}"[:300])
            except Exception as exc:  # the shop, the broker or the database: the failure policy decides
                # Refused shop keys stop none of supplier_sync's other work: this message waits on the schedule.
                outcome = retry.outcome_of(exc, "shop", pause=False)
                if isinstance(outcome, retry.DeadLetter) and not isinstance(exc, TransientError):
                    log.error("order could not be confirmed with the shop", topic=claimed_topic, reason=outcome.reason)
                return outcome
            log.info("order confirmed with the shop", topic=claimed_topic, found=found)
            return retry.Ack()
