"""A delete or restore the shop cannot confirm is retried later, never applied on the webhook's word."""
from __future__ import annotations


from shared.clients.shop import WooCommerceClient
from shared.failures import retry
from shared.messaging.messages import OrderLineMessage
from services.supplier_sync.confirm import ShopConfirmation
from tests.support import free_port


class NoIntake:
    """Fails the test if anything would be published."""

    def submit(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be published for an unconfirmed delete")


def _claim(topic: str) -> OrderLineMessage:
    return OrderLineMessage(topic=topic, order_id=41, status="trash", date_modified_gmt=None,
                            deleted=topic == "order.deleted", confirm=True)


def test_a_shop_that_cannot_be_asked_means_retry_later() -> None:
    shop = WooCommerceClient(f"http://127.0.0.1:{free_port()}", "ck", "cs", timeout=1)
    confirm = ShopConfirmation(shop, NoIntake())  # type: ignore[arg-type]
    for topic in ("order.deleted", "order.restored"):
        outcome = confirm(_claim(topic))
        assert isinstance(outcome, retry.RetryLater) and outcome.reason.startswith("shop: ")


def test_without_the_shop_configured_a_claim_waits() -> None:
    outcome = ShopConfirmation(None, None)(_claim("order.deleted"))
    assert isinstance(outcome, retry.RetryLater) and "WC_URL" in outcome.reason


def test_a_shop_refusing_the_keys_makes_the_claim_wait_without_stopping_supplier_sync() -> None:
    from simulators.shop import start_in_thread

    with start_in_thread(consumer_key="ck_right", consumer_secret="cs_right") as sim:
        shop = WooCommerceClient(sim.url, "ck_right", "cs_wrong", timeout=5)
        confirm = ShopConfirmation(shop, NoIntake())  # type: ignore[arg-type]
        outcome = confirm(_claim("order.deleted"))
    # Waits on the schedule (supplier_sync's other messages need no shop), never dead-lettered at once.
    assert isinstance(outcome, retry.RetryLater) and outcome.kind == retry.ACCOUNT_REFUSED and outcome.status == 401
