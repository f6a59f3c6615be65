"""`python -m services.supplier_sync`: consume order-line messages until SIGTERM.

The adapters (database, supplier, shop) are wired in bootstrap.py.
"""
from __future__ import annotations

from shared.messaging import topology
from shared.messaging.consumer import BatchConsumer
from shared.observability.logging import get_logger
from shared.observability.worker import start_endpoints
from shared.service import run_until_stopped, start, wait_for_dependencies
from services.supplier_sync import send_worker
from services.supplier_sync.bootstrap import order_line_handler, order_send_handler, real_adapters

# Lines coalesced into one supplier call at most; a burst fills it, a trickle does not wait for it.
MAX_BATCH = 200
# With a request budget, the share of it the lock work paces itself to (one `set` per batch at most
# this often): the rest goes to sends and polls. The lock latency it adds is bounded by LONGEST_PACE.
LOCK_SHARE = 0.25
LONGEST_PACE = 1.0
# Send workers: a send is two requests with the database's work between them, so one worker
# alone leaves slots of the budget unused; a few keep it busy while sends are backlogged.
SEND_WORKERS = 3


def lock_pace(requests_per_second: float) -> float:
    """Seconds from one lock batch to the next: none without a budget, else a LOCK_SHARE of it."""
    if requests_per_second <= 0:
        return 0.0
    return min(LONGEST_PACE, 1.0 / (requests_per_second * LOCK_SHARE))


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
        min_interval=lock_pace(settings.supplier_requests_per_second),
        name="supplier_sync",
    )
    senders = [
        BatchConsumer(
            settings.amqp_url,
            topology.ORDER_SENDS,
            order_send_handler(settings, adapters),
            retry_delays=topology.ORDER_SENDS.retry_delays(settings),
            stop=stop,
            max_batch=send_worker.MAX_BATCH,
            name=f"supplier_sync sends {number}",
        )
        for number in range(1, SEND_WORKERS + 1)
    ]
    log.info("supplier_sync started", requests_per_second=settings.supplier_requests_per_second or "unlimited",
             send_workers=SEND_WORKERS)
    run_until_stopped(stop, consumer.run, *(sender.run for sender in senders))
    adapters.close()
    if endpoints is not None:
        endpoints.close()
    log.info("supplier_sync stopped")


if __name__ == "__main__":
    main()
