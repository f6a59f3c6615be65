"""Two deliveries of one new order at the same instant: the newest state wins, whatever the interleaving.

WooCommerce queues `order.created` and `order.updated` together when an order
is made, and its queue runners can deliver both at the same moment. Here 40
new orders are each delivered twice at once, created (pending) and updated
(paid, a second later), to a real ingest, with supplier_sync behind it and no
catch-up to mend what ingest dropped: every order must be sent, and nothing
left locked.
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from datetime import datetime, timedelta

import pytest

from shared.db import session_scope
from shared.products.mapping import import_product_map
from simulators.shop.orders import make_order, set_status, stamp_modified
from simulators.shop.php_json import wp_json_encode
from tests.integration.sync_harness import SyncHarness
from tests.integration.ingest_process import Ingest

ORDERS = 40
FIRST_ORDER = 8001
LINE = {"product_id": 2101, "variation_id": 0, "quantity": 1, "sku": "SNK", "name": "Sneaker", "price": "89.90"}
STOCK_ID = 1001


@pytest.fixture
def world(db: str, broker: str):
    with session_scope(db) as session:
        import_product_map(session, [(2101, 0, STOCK_ID)])
    ingest = Ingest(AMQP_URL=broker, DATABASE_URL=db)
    sync = SyncHarness(broker, db)
    try:
        yield ingest, sync
    finally:
        sync.close()
        try:
            ingest.stop()
        finally:
            ingest.close()


def created_and_paid(order_id: int) -> tuple[bytes, bytes]:
    """The bodies of order.created (pending) and of order.updated (paid a second later)."""
    made = datetime(2026, 12, 6, 22, 0)  # naive UTC, as the shop documents take it
    created = make_order(order_id, status="pending", lines=[LINE], date_created_gmt=made)
    paid = deepcopy(created)
    set_status(paid, "processing", made + timedelta(seconds=1))
    stamp_modified(paid, made + timedelta(seconds=1))
    return wp_json_encode(created), wp_json_encode(paid)


def test_created_and_updated_delivered_at_once_end_sent_and_nothing_locked(world) -> None:
    ingest, sync = world
    deliveries = []
    for order_id in range(FIRST_ORDER, FIRST_ORDER + ORDERS):
        together = threading.Barrier(2, timeout=30)
        created, paid = created_and_paid(order_id)
        deliveries += [(together, created, "order.created"), (together, paid, "order.updated")]

    def deliver(delivery: tuple[threading.Barrier, bytes, str]) -> int:
        together, body, topic = delivery
        together.wait()  # both deliveries of one order leave at the same instant
        return ingest.post(body, topic).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(deliver, deliveries))
    assert Counter(answers) == {200: len(deliveries)}, ingest.text()[-3000:]

    sync.wait_until(lambda: len(sync.supplier_orders()) == ORDERS, timeout=60, what="every order sent")
    sync.wait_until(lambda: set(sync.line_statuses().values()) == {"sent"}, what="every line sent")
    assert sync.locks() == {}
    sent = sorted(o["key"] for o in sync.supplier_orders())
    assert sent == sorted(str(i) for i in range(FIRST_ORDER, FIRST_ORDER + ORDERS))
