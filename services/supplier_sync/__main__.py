"""`python -m services.supplier_sync`: consume order-line messages until SIGTERM."""
from __future__ import annotations

from shared.clients.rewix import RewixClient
from shared.clients.shop import WooCommerceClient
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer
from shared.observability.logging import get_logger
from shared.observability.worker import start_endpoints
from shared.orders.intake import OrderIntake
from shared.service import run_until_stopped, start, wait_for_dependencies
from shared.settings import Settings
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.handler import OrderLineHandler

# Lines coalesced into one supplier call at most; a burst fills it, a trickle does not wait for it.
MAX_BATCH = 200
# Short enough that a SIGTERM is honoured with a confirmation in flight.
SHOP_TIMEOUT = 5.0


def main() -> None:
    settings, stop = start("supplier_sync", "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD")
    log = get_logger("supplier_sync")
    endpoints = start_endpoints(settings, "supplier_sync")
    wait_for_dependencies(settings, stop)
    client = RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password"))
    confirmation = shop_confirmation(settings)
    handler = OrderLineHandler(settings.database_url, client, confirmation, auto_confirm=settings.supplier_auto_confirm)
    if settings.supplier_auto_confirm:
        log.info("dropshipping orders ask the supplier to confirm them at once (SUPPLIER_AUTO_CONFIRM)")
    consumer = BatchConsumer(
        settings.amqp_url,
        topology.ORDER_LINES,
        handler,
        retry_delays=topology.ORDER_LINES.retry_delays(settings),
        stop=stop,
        max_batch=MAX_BATCH,
        name="supplier_sync",
    )
    log.info("supplier_sync started")
    run_until_stopped(stop, consumer.run)
    client.close()
    confirmation.close()
    if endpoints is not None:
        endpoints.close()
    log.info("supplier_sync stopped")


def shop_confirmation(settings: Settings) -> ShopConfirmation:
    """Asks the shop before a webhook's delete or restore counts; without the shop's keys those wait."""
    if not (settings.wc_url and settings.wc_consumer_key and settings.wc_consumer_secret):
        get_logger("supplier_sync").warning("WC_URL or its keys are not set: deletes and restores wait unconfirmed")
        return ShopConfirmation(None, None)
    shop = WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"),
                             timeout=SHOP_TIMEOUT)
    return ShopConfirmation(shop, OrderIntake(settings.database_url, Publisher(settings.amqp_url), shop=shop))


if __name__ == "__main__":
    main()
