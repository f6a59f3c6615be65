"""End to end: ingest fails deliveries until the shop disables a webhook; status_poller's webhook check
re-activates it and the orders WooCommerce dropped arrive through the catch-up.

Real processes (ingest, status_poller), the shop and supplier simulators, the real broker and database.
Ingest reaches RabbitMQ through a proxy that the test cuts: ingest then answers 503 to every order event,
exactly what a broker outage does, and WooCommerce counts each 503 as a failed delivery.
"""
from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine

from shared.db import normalise_url, session_scope
from shared.db.models import ProductMapping
from shared.messaging import topology
from shared.shop_state.webhooks import read_records
from simulators.rewix.server import start_in_thread as start_rewix
from simulators.shop import ShopSimulator, start_in_thread
from tests.conftest import TEST_RETRY_DELAYS, drain
from tests.integration.test_admin_views import cli_env, run
from tests.integration.ingest_process import SECRET as WEBHOOK_SECRET
from tests.integration.ingest_process import Ingest
from tests.integration.worker_processes import ServiceProcess, free_port
from tests.support import TcpProxy, wait_until

KEY, CONSUMER_SECRET = "ck_recovery", "cs_recovery"
REWIX_KEY, REWIX_PASSWORD = "recovery-key", "recovery-password"
LINE = {"product_id": 2101, "variation_id": 2104, "quantity": 1, "sku": "SNK-42", "name": "Sneaker - 42",
        "price": "89.90"}


@pytest.fixture
def stack(db: str, broker: str) -> Iterator[dict[str, Any]]:
    with session_scope(db) as session:
        session.add(ProductMapping(wc_product_id=LINE["product_id"], wc_variation_id=LINE["variation_id"],
                                   stock_id=100001))
    rewix = start_rewix(api_key=REWIX_KEY, password=REWIX_PASSWORD)
    shop = start_in_thread(consumer_key=KEY, consumer_secret=CONSUMER_SECRET)
    broker_address = urllib.parse.urlsplit(broker)
    proxy = TcpProxy((broker_address.hostname or "127.0.0.1", broker_address.port or 5672))
    ingest = Ingest(AMQP_URL=proxy.url_for(broker), DATABASE_URL=db, WC_URL=shop.url)
    parts: dict[str, Any] = {"rewix": rewix, "shop": shop, "proxy": proxy, "ingest": ingest,
                             "delivery_url": ingest.url + "/webhooks/woocommerce"}
    try:
        yield parts
    finally:
        if "poller" in parts:
            parts["poller"].stop()
        ingest.stop()
        ingest.close()
        proxy.cut()
        shop.stop()
        rewix.stop()


def poller_env(db: str, broker: str, parts: dict[str, Any], metrics_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWIX_", "WC_", "POLL_", "SHOP_"))}
    env.update(
        AMQP_URL=broker, DATABASE_URL=db,
        REWIX_API_URL=parts["rewix"].url, REWIX_API_KEY=REWIX_KEY, REWIX_API_PASSWORD=REWIX_PASSWORD,
        WC_URL=parts["shop"].url, WC_CONSUMER_KEY=KEY, WC_CONSUMER_SECRET=CONSUMER_SECRET,
        WC_WEBHOOK_DELIVERY_URL=parts["delivery_url"],
        SHOP_WEBHOOK_CHECK_INTERVAL_SECONDS="1",
        # Only the re-activation's rewind brings the dropped orders in: no regular pass comes in time.
        SHOP_CATCHUP_INTERVAL_SECONDS="3600", SHOP_VERIFY_INTERVAL_SECONDS="0",
        POLL_INTERVAL_SECONDS="5", METRICS_PORT=str(metrics_port),
        SYNC_RETRY_DELAYS=",".join(str(d) for d in TEST_RETRY_DELAYS), LOG_FORMAT="json", LOG_LEVEL="INFO",
    )
    return env


def created_hook(shop: ShopSimulator) -> dict[str, Any]:
    [hook] = [h for h in shop.webhooks.inside() if h["topic"] == "order.created"]
    return hook


def test_a_webhook_disabled_by_failed_deliveries_is_reactivated_and_the_dropped_orders_caught_up(
        db: str, broker: str, stack: dict[str, Any]) -> None:
    shop: ShopSimulator = stack["shop"]
    cli = cli_env(db, broker, WC_URL=shop.url, WC_CONSUMER_KEY=KEY, WC_CONSUMER_SECRET=CONSUMER_SECRET,
                  WC_WEBHOOK_SECRET=WEBHOOK_SECRET, WC_WEBHOOK_DELIVERY_URL=stack["delivery_url"])
    assert run(["webhooks", "install"], cli).exit_code == 0

    metrics_port = free_port()
    poller = stack["poller"] = ServiceProcess("services.status_poller", poller_env(db, broker, stack, metrics_port))
    engine = create_engine(normalise_url(db))

    def records() -> dict:
        with engine.connect() as conn:
            return read_records(conn)

    try:
        # The check has seen all four active, and the catch-up has made its first pass (nothing to read).
        wait_until(lambda: len(records()) == 4 and all(r.last_seen_active_at for r in records().values()), 30,
                   "the webhook check to see the four webhooks")
        wait_until(lambda: poller.events("shop catch-up pass done"), 30, "the first catch-up pass")

        arrived: dict[int, str] = {}  # order id -> the source of its first message on RabbitMQ

        def arrived_all(order_ids: list[int]) -> bool:
            for _, body in drain(broker, topology.ORDER_LINES.name):
                message = json.loads(body)
                arrived.setdefault(message["order_id"], message["source"])
            return set(order_ids) <= set(arrived)

        before = shop.state.create_order(status="pending", lines=[LINE])["id"]
        wait_until(lambda: arrived_all([before]), 15, "an order by webhook")
        assert arrived[before] == "webhook"

        # RabbitMQ out of ingest's reach: every delivery is answered 503, and the 7th in a row disables.
        stack["proxy"].cut()
        during = []
        while created_hook(shop)["status"] == "active" and len(during) < 7:
            during.append(shop.state.create_order(status="pending", lines=[LINE])["id"])
            assert shop.webhooks.wait_idle(10)
        deliveries = [d for d in shop.webhooks.deliveries() if d["order_id"] in during]
        assert len(during) == 7 and all(d["status"] == 503 for d in deliveries)
        # Disabled now; the check re-activates it within a second, then one more failure disables it
        # again (WooCommerce's count stays at 6): the orders keep being dropped while ingest fails.
        for _ in range(3):
            during.append(shop.state.create_order(status="pending", lines=[LINE])["id"])
            assert shop.webhooks.wait_idle(10)
            time.sleep(0.3)
        assert any(not d["sent"] for d in shop.webhooks.deliveries() if d["order_id"] in during)

        wait_until(lambda: poller.events("shop webhook re-activated"), 30, "a re-activation")
        warning = poller.events("shop webhook re-activated")[0]
        assert warning["level"] == "warning" and warning["topic"] == "order.created"
        assert warning["webhook_id"] == created_hook(shop)["id"]
        record = records()[created_hook(shop)["id"]]
        assert record.reactivated_count >= 1 and record.last_found_status == "disabled"

        # The catch-up, woken by the check, reads from when the webhook was last seen active:
        # every order dropped or refused during the outage reaches RabbitMQ.
        wait_until(lambda: arrived_all(during), 30, "the orders of the outage to arrive")
        assert {arrived[order_id] for order_id in during} == {"catchup"}

        # RabbitMQ back: the check keeps the webhook active, and the next order comes by webhook again.
        stack["proxy"].restore()
        wait_until(lambda: created_hook(shop)["status"] == "active", 10, "the webhook active")
        after = shop.state.create_order(status="pending", lines=[LINE])["id"]
        assert shop.webhooks.wait_idle(10)
        # Delivered and answered 200: ingest took it. Which message reaches RabbitMQ first is a race
        # with a catch-up pass that may read the same new order (ingest then keeps the first only).
        delivered = [d for d in shop.webhooks.deliveries() if d["order_id"] == after]
        assert delivered and all(d["sent"] and d["status"] == 200 for d in delivered), delivered

        wait_until(lambda: arrived_all([after]), 20, "the order after the outage")
        assert created_hook(shop)["failure_count"] == 0  # a success resets WooCommerce's count

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            served = response.read().decode()
        [sample] = [line for line in served.splitlines()
                    if line.startswith('rewix_shop_webhooks_reactivated_total{topic="order.created"}')]
        assert float(sample.rsplit(" ", 1)[1]) >= 1

        status = run(["webhooks", "status"], cli)
        assert status.exit_code == 0, status.output
        [row] = [line for line in status.output.splitlines() if "order.created" in line]
        assert "found disabled" in row
    finally:
        engine.dispose()
