"""Wires the status poller's loops: polling (main thread), the applier, the shop catch-up, verification,
the webhook check, the site check, the problem notes, the pickup of orders that waited for a
product map, the watch on supplier orders waiting for payment, and the sync status written into each
order's meta."""
from __future__ import annotations

import threading
import time

from shared.clients.rewix import RewixClient
from shared.clients.rewix.budget import LEFTOVER
from shared.clients.rewix.from_settings import supplier_client
from shared.clients.shop import WooCommerceClient
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer
from shared.observability.logging import get_logger
from shared.orders.intake import OrderIntake
from shared.settings import Settings
from services.status_poller.applier import StatusChangeApplier
from services.status_poller.budget import RequestBudget
from services.status_poller.payment_watch import PaymentWatch
from services.status_poller.poller import StatusPoller
from services.status_poller.shop_watch.catchup import ShopCatchUp
from services.status_poller.shop_watch.mapping_pickup import MappingPickup
from services.status_poller.shop_watch.problem_notes import ProblemNotes
from services.status_poller.shop_watch.site_check import SiteCheck
from services.status_poller.shop_watch.sync_meta import SHOP_TIMEOUT as META_SHOP_TIMEOUT, SyncMetaWriter
from services.status_poller.shop_watch.verification import VerificationSweep
from services.status_poller.shop_watch.webhook_watch import WebhookWatch

log = get_logger("status_poller")

REQUIRED = ("REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD", "WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET")
# HTTP timeouts short enough that a SIGTERM is honoured within 10 s with a call in flight.
HTTP_TIMEOUT = 5.0
# Status changes handled per batch: they are few, each costs a few shop calls, and a
# batch in hand is finished before a SIGTERM is honoured.
APPLIER_BATCH = 5
# Seconds to wait for the other loops after the poll loop has stopped.
JOIN_TIMEOUT = 8.0


def rewix_client(settings: Settings) -> RewixClient:
    # Status polls take what the growing order's locks leave of the shared budget (budget.py in the client).
    return supplier_client(settings, priority=LEFTOVER, timeout=HTTP_TIMEOUT)


def shop_client(settings: Settings, timeout: float = HTTP_TIMEOUT) -> WooCommerceClient:
    return WooCommerceClient(
        settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"), timeout=timeout
    )


def run(settings: Settings, stop: threading.Event) -> None:
    """Run until `stop` is set; dependencies must already answer (or will, later)."""
    rewix = rewix_client(settings)
    applier = StatusChangeApplier(
        settings.database_url, shop_client(settings), customer_tracking_note=settings.shop_customer_tracking_note
    )
    consumer = BatchConsumer(
        settings.amqp_url, topology.STATUS_CHANGES, applier,
        retry_delays=topology.STATUS_CHANGES.retry_delays(settings), stop=stop, max_batch=APPLIER_BATCH, name="status_applier",
    )
    threads = [threading.Thread(target=consumer.run, name="status-applier", daemon=True)]
    # supplier_sync finds the problems; this process, which already writes to the shop once each, tells them.
    problem_notes = ProblemNotes(settings.database_url, shop_client(settings))
    threads.append(threading.Thread(target=problem_notes.run, args=(stop,), name="problem-notes", daemon=True))
    # Each order's sync status, as `rewix-sync orders` shows it, in its meta for the shop owner. A batch of
    # saves takes the shop long: a write cut short by a stop is read back at the next start, not repeated.
    sync_meta = SyncMetaWriter(settings.database_url, shop_client(settings, META_SHOP_TIMEOUT))
    threads.append(threading.Thread(target=sync_meta.run, args=(stop,), name="sync-meta", daemon=True))
    # Open orders that waited for a product map go down the normal path once a mapping makes them match.
    pickup_publisher = Publisher(settings.amqp_url)
    pickup_shop = shop_client(settings)
    pickup = MappingPickup(settings.database_url, pickup_shop,
                           OrderIntake(settings.database_url, pickup_publisher, shop=pickup_shop))
    threads.append(threading.Thread(target=pickup.run, args=(stop,), name="mapping-pickup", daemon=True))
    catchup_publisher = None
    if settings.shop_catchup_interval_seconds > 0:
        catchup_publisher = Publisher(settings.amqp_url)
        catchup_shop = shop_client(settings)
        catchup = ShopCatchUp(
            settings.database_url, catchup_shop, OrderIntake(settings.database_url, catchup_publisher, shop=catchup_shop),
            settings.shop_catchup_interval_seconds, go_live_at=settings.shop_go_live_at,
        )
        threads.append(threading.Thread(target=catchup.run, args=(stop,), name="shop-catchup", daemon=True))
    verify_publisher = None
    if settings.shop_verify_interval_seconds > 0:
        verify_publisher = Publisher(settings.amqp_url)
        verify_shop = shop_client(settings)
        sweep = VerificationSweep(
            settings.database_url, verify_shop, OrderIntake(settings.database_url, verify_publisher, shop=verify_shop),
            settings.shop_verify_interval_seconds,
        )
        threads.append(threading.Thread(target=sweep.run, args=(stop,), name="shop-verification", daemon=True))
    # Where the shop says it is: ingest accepts webhook deliveries from there (and from WC_URL's site).
    site_check = SiteCheck(settings.database_url, shop_client(settings))
    threads.append(threading.Thread(target=site_check.run, args=(stop,), name="shop-site-check", daemon=True))
    if settings.shop_webhook_check_interval_seconds > 0 and settings.wc_webhook_delivery_url:
        watch = WebhookWatch(settings.database_url, shop_client(settings), settings.wc_webhook_delivery_url,
                             settings.shop_webhook_check_interval_seconds,
                             on_reactivated=catchup.wake.set if catchup_publisher is not None else None)
        threads.append(threading.Thread(target=watch.run, args=(stop,), name="shop-webhook-check", daemon=True))
    # Supplier orders waiting too long for the dropshipper's payment: counted, and one note each.
    payment_watch = PaymentWatch(settings.database_url, settings.supplier_payment_alert_minutes)
    threads.append(threading.Thread(target=payment_watch.run, args=(stop,), name="payment-watch", daemon=True))
    for thread in threads:
        thread.start()

    publisher = Publisher(settings.amqp_url)
    poller = StatusPoller(
        settings.database_url, rewix, publisher,
        interval=settings.poll_interval_seconds,
        budget=RequestBudget(settings.poll_requests_per_second),
    )
    try:
        poller.run(stop)
    finally:
        stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        publisher.close()
        for extra in (catchup_publisher, verify_publisher, pickup_publisher):
            if extra is not None:
                extra.close()
        rewix.close()
