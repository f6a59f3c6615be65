"""`python -m services.supplier_sync`: consume order-line messages until SIGTERM.

The adapters (database, supplier, shop) are wired in bootstrap.py.
"""
from __future__ import annotations

from shared.messaging import topology
from shared.messaging.consumer import BatchConsumer
from shared.observability.logging import get_logger
from shared.observability.worker import start_endpoints
from shared.service import run_until_stopped, start, wait_for_dependencies
from services.supplier_sync.bootstrap import order_line_handler, real_adapters

# Lines coalesced into one supplier call at most; a burst fills it, a trickle does not wait for it.
MAX_BATCH = 200


def main() -> None:
    settings, stop = start("supplier_sync", "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD")
    log = get_logger("supplier_sync")
    endpoints = start_endpoints(settings, "supplier_sync")
    wait_for_dependencies(settings, stop)
    adapters = real_adapters(settings)
    handler = order_line_handler(settings, adapters)
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
    adapters.close()
    if endpoints is not None:
        endpoints.close()
    log.info("supplier_sync stopped")


if __name__ == "__main__":
    main()
