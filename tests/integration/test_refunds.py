"""Refunds on the real path: what an order needs of the supplier is what is still to be delivered.

WooCommerce keeps a line's quantity after a refund and lists the refund apart;
only the shop's refunds route says how many units were given back. ingest
cannot ask the shop, so an order listing refunds goes to supplier_sync to be
read from the shop, refunds included. Real PostgreSQL and RabbitMQ, ingest as a
process, supplier_sync on a thread, both simulators.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import text

from shared.clients.shop import WooCommerceClient
from shared.db import session_scope
from shared.products.mapping import import_product_map
from simulators.shop import start_in_thread as start_shop
from tests.integration.sync_harness import SyncHarness
from tests.integration.ingest_process import SECRET, Ingest
from tests.recordings import RECORDED_SITE, deliveries, rest_answer

CK, CS = "ck_refunds", "cs_refunds"
JEANS, T_SHIRT = 1001, 1002  # models of the supplier simulator (SyncHarness)
JEANS_LINE = {"product_id": 141, "variation_id": 143, "quantity": 3, "sku": "RX-JEANS-M", "name": "Slim jeans - M",
              "price": "32.00"}
T_SHIRT_LINE = {"product_id": 137, "variation_id": 0, "quantity": 1, "sku": "RX-TSHIRT-U", "name": "Basic T-shirt",
                "price": "15.00"}
MUG_LINE = {"product_id": 140, "variation_id": 0, "quantity": 1, "sku": "MUG-1", "name": "Our own mug", "price": "9.00"}


class World:
    def __init__(self, broker: str, db: str, *, site: str | None = None, secret: str = SECRET) -> None:
        with session_scope(db) as session:
            import_product_map(session, [(141, 143, JEANS), (137, 0, T_SHIRT)])
        self.db = db
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.sync = SyncHarness(broker, db, shop=WooCommerceClient(self.shop.url, CK, CS, timeout=5))
        self.ingest = Ingest(AMQP_URL=broker, DATABASE_URL=db, WC_URL=site or self.shop.url, WC_WEBHOOK_SECRET=secret)

    def deliver_to_ingest(self) -> None:
        """The shop fires its webhooks at ingest (as a real shop would)."""
        self.shop.webhooks.configure(url=self.ingest.url + "/webhooks/woocommerce", secret=SECRET, enabled=True)

    def delivered(self) -> None:
        assert self.shop.webhooks.wait_idle(15), "the shop's deliveries still wait"
        assert {d["status"] for d in self.shop.webhooks.deliveries()} <= {200}

    def supplier_order(self, key: str) -> dict:
        self.sync.wait_until(lambda: any(o["key"] == key for o in self.sync.supplier_orders()), what=f"{key} sent")
        [order] = [o for o in self.sync.supplier_orders() if o["key"] == key]
        return order

    def close(self) -> None:
        try:
            assert self.ingest.stop() == 0
        finally:
            self.ingest.close()
            self.sync.close()
            self.shop.stop()


@pytest.fixture
def world(broker: str, db: str) -> Iterator[World]:
    w = World(broker, db)
    w.deliver_to_ingest()
    yield w
    w.close()


def test_the_recorded_order_157_after_its_refund_reserves_and_sends_two_pairs_of_jeans(broker: str, db: str) -> None:
    # The shop as recorded: order 157 paid, 3 pairs of jeans of which 1 refunded (refund 159).
    refunded_delivery = [d for d in deliveries()
                         if not d.is_ping and d.topic == "order.updated" and d.json().get("refunds")][-1]
    world = World(broker, db, site=RECORDED_SITE, secret=refunded_delivery.secret)
    try:
        world.shop.state.load_order(rest_answer("the refunded order").body,
                                    rest_answer("refunds of an order (line quantities negative)").body)
        # WooCommerce's delivery of the refund, byte for byte: the order still says 3 pairs.
        headers = {k: v for k, v in refunded_delivery.headers.items() if k not in ("Host", "Content-Length")}
        answer = requests.post(world.ingest.url + "/webhooks/woocommerce", data=refunded_delivery.body,
                               headers=headers, timeout=15)
        assert answer.status_code == 200, answer.text

        sent = world.supplier_order("157")
        assert sent["items"] == {str(JEANS): 2, str(T_SHIRT): 1}
        # The supplier order is made before the growing order is left: wait for the second step.
        world.sync.wait_until(lambda: world.sync.locks() == {}, what="the sent units left the growing order")
    finally:
        world.close()


def test_a_partial_refund_before_sending_reserves_and_sends_only_what_is_left(world: World) -> None:
    order = world.shop.state.create_order(status="on-hold", lines=[JEANS_LINE, T_SHIRT_LINE, MUG_LINE])
    world.delivered()
    world.sync.wait_until(lambda: world.sync.locks() == {JEANS: 3, T_SHIRT: 1}, what="3 jeans and 1 T-shirt locked")
    jeans, t_shirt, _mug = (line["id"] for line in order["line_items"])

    world.shop.state.refund(order["id"], {jeans: 1}, reason="one pair returned")
    world.delivered()
    world.sync.wait_until(lambda: world.sync.locks() == {JEANS: 2, T_SHIRT: 1}, what="one pair released")
    world.shop.state.refund(order["id"], {t_shirt: 1}, reason="the T-shirt refunded whole")
    world.delivered()
    world.sync.wait_until(lambda: world.sync.locks() == {JEANS: 2}, what="the T-shirt released")

    world.shop.state.admin_edit(order["id"], {"status": "processing"})  # paid
    world.delivered()
    assert world.supplier_order(str(order["id"]))["items"] == {str(JEANS): 2}

    def statuses() -> dict[int, str]:
        return {line_id: state for (order_id, line_id), state in world.sync.line_statuses().items()
                if order_id == order["id"]}

    # supplier_sync makes the supplier order, leaves the growing order, then records the lines: wait for
    # the record too, not only for the growing order.
    world.sync.wait_until(lambda: world.sync.locks() == {} and set(statuses().values()) <= {"sent", "released"},
                          what="the sent units left the growing order and their lines are recorded")
    assert statuses() == {jeans: "sent", t_shirt: "released"}


def test_a_sent_order_refunded_afterwards_needs_a_person_like_one_cancelled(world: World) -> None:
    order = world.shop.state.create_order(status="processing", lines=[JEANS_LINE])
    world.delivered()
    world.supplier_order(str(order["id"]))
    world.shop.state.refund(order["id"], {order["line_items"][0]["id"]: 1}, reason="one pair returned")
    world.delivered()

    def flagged() -> tuple | None:
        """(cancelled_in_shop, last_error); None until supplier_sync records the order it made."""
        with world.sync.engine.connect() as c:
            return c.execute(text("SELECT cancelled_in_shop, last_error FROM supplier_orders WHERE shop_order_id = :id"),
                             {"id": order["id"]}).one_or_none()

    world.sync.wait_until(lambda: (flagged() or (False,))[0], what="the supplier order flagged for a person")
    assert "1 of stock_id 1001 no longer wanted" in flagged()[1]
    assert world.sync.locks() == {}  # nothing locked again for the sent order
