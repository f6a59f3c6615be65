"""`python -m services.supplier_sync`: consume order-line messages until SIGTERM."""
from __future__ import annotations

from shared import topology
from shared.consumer import BatchConsumer
from shared.logging import get_logger
from shared.observability.worker import start_endpoints
from shared.rewix import RewixClient
from shared.service import run_until_stopped, start, wait_for_dependencies
from services.supplier_sync.handler import OrderLineHandler

# Lines coalesced into one supplier call at most; a burst fills it, a trickle does not wait for it.
MAX_BATCH = 200


def main() -> None:
    settings, stop = start("supplier_sync", "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD")
    log = get_logger("supplier_sync")
    endpoints = start_endpoints(settings, "supplier_sync")
    wait_for_dependencies(settings, stop)
    client = RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password"))
    handler = OrderLineHandler(settings.database_url, client)
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
    if endpoints is not None:
        endpoints.close()
    log.info("supplier_sync stopped")


if __name__ == "__main__":
    main()
