"""An order for a product the owner maps later goes through: ingest remembers the open orders whose lines
matched nothing, status_poller's pickup loop sends them down the normal path once a mapping (`products
import`, `catalog sync`) makes a line match, `products own` lets the shop's own products go, and `status`
shows what still waits. ingest as a process, supplier_sync's consumer and the pickup and notes loops on
threads, the shop and supplier simulators, a real RabbitMQ and PostgreSQL."""
from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from shared.clients.shop import WooCommerceClient
from shared.failures.errors import TransientError
from shared.messaging import topology
from shared.messaging.amqp import BrokerUnavailable, Publisher
from shared.orders.intake import OrderIntake
from simulators.shop import start_in_thread as start_shop
from simulators.shop.php_json import wp_json_encode
from shared.products.waiting import SENT_AFTER_MAPPING_NOTE
from services.status_poller.budget import RequestBudget
from services.status_poller.shop_watch.mapping_pickup import MappingPickup
from services.status_poller.shop_watch.problem_notes import ProblemNotes
from tests.conftest import drain, queue_depth
from tests.integration.sync_harness import API_KEY, PASSWORD, SyncHarness
from tests.integration.test_admin_views import cli_env, run
from tests.integration.ingest_process import Ingest
from tests.support import TcpProxy, free_port

CK, CS = "ck_pickup", "cs_pickup"
SNEAKER, BAG, SCARF = 1001, 1003, 1005  # stock ids of the supplier simulator's catalog (sync_harness.py)
SNEAKER_LINE = {"product_id": 2101, "variation_id": 2104, "quantity": 1, "sku": "SNK-42", "name": "Sneaker - 42",
                "price": "89.90"}
BAG_LINE = {"product_id": 2205, "variation_id": 0, "quantity": 1, "sku": "BAG-07", "name": "Bag", "price": "49.00"}
# Its SKU is the code of a model the supplier sells (sync_harness.py: "M" + stock_id), not stored here yet.
SCARF_LINE = {"product_id": 2300, "variation_id": 0, "quantity": 1, "sku": f"M{SCARF}", "name": "Scarf",
              "price": "25.00"}
MUG_LINE = {"product_id": 9100, "variation_id": 0, "quantity": 1, "sku": "MUG-OWN", "name": "The shop's mug",
            "price": "9.00"}


def address_of(url: str, default_port: int) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def line(base: dict[str, Any], quantity: int) -> dict[str, Any]:
    return {**base, "quantity": quantity}


class World:
    def __init__(self, db: str, broker: str, ingest: Ingest, tmp_path: Path) -> None:
        self.db, self.broker, self.ingest, self.tmp_path = db, broker, ingest, tmp_path
        self.sync = SyncHarness(broker, db)
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.shop.webhooks.configure(enabled=False)  # deliveries are made by hand, through ingest
        self.shop_client = WooCommerceClient(self.shop.url, CK, CS, timeout=5)
        with self.sync.engine.begin() as c:
            c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (2101, 2104, :s)"),
                      {"s": SNEAKER})
        self.stop = threading.Event()
        self.broker_proxy: TcpProxy | None = None
        self.publisher = Publisher(broker)
        self.pickup = self.make_pickup(self.publisher)
        self.notes = ProblemNotes(db, WooCommerceClient(self.shop.url, CK, CS, timeout=5), interval=0.2)
        self.threads = [threading.Thread(target=loop.run, args=(self.stop,), daemon=True)
                        for loop in (self.pickup, self.notes)]
        for thread in self.threads:
            thread.start()

    def make_pickup(self, publisher: Publisher, shop: WooCommerceClient | None = None) -> MappingPickup:
        return MappingPickup(self.db, shop or self.shop_client, OrderIntake(self.db, publisher), interval=0.2,
                             look_every=0.2, budget=RequestBudget(100))

    def env(self) -> dict[str, str]:
        return cli_env(self.db, self.broker, WC_URL=self.shop.url, WC_CONSUMER_KEY=CK, WC_CONSUMER_SECRET=CS,
                       REWIX_API_URL=self.sync.sim.url, REWIX_API_KEY=API_KEY, REWIX_API_PASSWORD=PASSWORD)

    def order(self, status: str, *lines: dict[str, Any]) -> dict[str, Any]:
        """An order placed in the shop, its order.created webhook delivered to ingest."""
        order = self.shop.state.create_order(status=status, lines=list(lines))
        self.deliver(order, "order.created")
        return order

    def deliver(self, body: dict[str, Any], topic: str = "order.updated") -> dict[str, Any]:
        response = self.ingest.post(wp_json_encode(body), topic)
        assert response.status_code == 200, response.text
        return response.json()

    def import_map(self, *rows: tuple[int, int, int]) -> None:
        path = self.tmp_path / "map.csv"
        path.write_text("wc_product_id,wc_variation_id,stock_id\n" + "".join(f"{p},{v},{s}\n" for p, v, s in rows))
        result = run(["products", "import", str(path)], self.env())
        assert result.exit_code == 0, result.output

    def waiting(self) -> dict[int, list[list[Any]]]:
        return {o: lines for o, lines in self.sync.query("SELECT order_id, lines FROM waiting_orders")}

    def unmatched(self) -> dict[tuple[int, int], dict[str, Any]]:
        listed = json.loads(run(["products", "unmatched", "--json"], self.env()).stdout)
        return {(r["product_id"], r["variation_id"]): r for r in listed}

    def product_map_row(self) -> dict[str, str]:
        result = run(["status", "--json"], self.env())
        rows = {r["name"]: r for r in json.loads(result.stdout)["rows"]}
        return rows["product map"]

    def shop_notes(self, order_id: int) -> list[str]:
        return [n["note"] for n in reversed(self.shop.state.notes(order_id))]

    def settled(self) -> bool:
        return queue_depth(self.broker, topology.ORDER_LINES.name) == 0

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.publisher.close()
        self.sync.close()
        if self.broker_proxy is not None:
            self.broker_proxy.cut()
        self.shop.stop()


@pytest.fixture
def world(db: str, broker: str, ingest: Ingest, tmp_path: Path) -> Iterator[World]:
    w = World(db, broker, ingest, tmp_path)
    yield w
    w.close()
    drain(broker, topology.ORDER_LINES.name)


def test_open_orders_wait_for_the_map_and_go_through_once_it_is_imported(world: World) -> None:
    pending = world.order("pending", line(BAG_LINE, 2))
    paid = world.order("processing", line(BAG_LINE, 1))
    mixed = world.order("on-hold", line(SNEAKER_LINE, 1), line(BAG_LINE, 1))
    done = world.order("completed", line(BAG_LINE, 1))  # not open: nothing to wait for
    world.sync.wait_until(lambda: world.sync.locks() == {SNEAKER: 1} and world.settled(), what="the sneaker locked")
    assert world.sync.supplier_orders() == []
    assert set(world.waiting()) == {pending["id"], paid["id"], mixed["id"]}
    assert world.unmatched()[(2205, 0)]["waiting_orders"] == 3
    row = world.product_map_row()
    assert row["state"] == "attention" and row["text"].startswith("3 open orders wait for a product map")
    assert f"the oldest #{pending['number']}" in row["text"]

    world.import_map((2205, 0, BAG))
    world.sync.wait_until(lambda: len(world.sync.supplier_orders()) == 1, what="the paid order sent")
    [sent] = world.sync.supplier_orders()
    assert sent["key"] == paid["number"]
    world.sync.wait_until(lambda: world.sync.locks() == {SNEAKER: 1, BAG: 3}, what="the pending and mixed ones locked")
    assert world.waiting() == {}
    world.sync.wait_until(lambda: world.shop_notes(paid["id"]) == [SENT_AFTER_MAPPING_NOTE], what="the one note")
    assert world.product_map_row()["state"] == "ok"
    assert (2205, 0) not in world.unmatched()

    # Nothing more happens: no second send, no second note, and the other orders got none.
    world.sync.wait_until(world.settled, what="settled")
    assert world.pickup.run_once().picked_up == 0
    assert world.notes.run_once() == 0
    assert len(world.sync.supplier_orders()) == 1 and world.shop_notes(paid["id"]) == [SENT_AFTER_MAPPING_NOTE]
    assert world.shop_notes(pending["id"]) == [] and world.shop_notes(mixed["id"]) == []
    assert world.sync.query("SELECT count(*) FROM mapping_pickups")[0][0] == 0
    assert done["id"] not in {o for o, _ in world.sync.query("SELECT id, status FROM shop_orders")}


def test_a_line_mapped_after_its_order_was_sent_is_told_to_the_owner(world: World) -> None:
    paid = world.order("processing", line(SNEAKER_LINE, 1), line(BAG_LINE, 1))
    # Sent, and the sent sneaker out of the growing order: supplier_sync leaves the growing order
    # after the supplier order is made, and the check at the end must not see that step still to come.
    world.sync.wait_until(lambda: len(world.sync.supplier_orders()) == 1 and world.sync.locks() == {},
                          what="sent with the sneaker alone, which left the growing order")
    assert set(world.waiting()) == {paid["id"]}

    world.import_map((2205, 0, BAG))
    world.sync.wait_until(lambda: len(world.shop_notes(paid["id"])) == 1, what="the note")
    [note] = world.shop_notes(paid["id"])
    assert "product 2205 (SKU BAG-07) now matches a supplier model" in note and "by hand" in note
    world.sync.wait_until(lambda: world.waiting() == {} and world.settled(), what="it waits no more")
    assert len(world.sync.supplier_orders()) == 1 and world.sync.locks() == {}


def test_products_own_lets_the_shop_s_own_mug_go(world: World) -> None:
    mug_only = world.order("pending", MUG_LINE)
    mixed = world.order("processing", line(SNEAKER_LINE, 1), MUG_LINE)
    world.sync.wait_until(lambda: len(world.sync.supplier_orders()) == 1, what="the sneaker sent")
    assert set(world.waiting()) == {mug_only["id"], mixed["id"]}
    assert (9100, 0) in world.unmatched()
    assert world.product_map_row()["state"] == "attention"

    result = run(["products", "own", "MUG-OWN"], world.env())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ("marked SKU MUG-OWN as the shop's own: its order lines are never the supplier's, "
                        "and `products unmatched` no longer lists it")
    assert "seen in orders: product 9100 (SKU MUG-OWN)" in lines
    assert "2 open orders waited only on it and wait for a product map no more" in lines
    assert world.waiting() == {} and (9100, 0) not in world.unmatched()
    assert world.product_map_row()["state"] == "ok"
    assert run(["products", "own"], world.env()).output.splitlines() == ["SKU MUG-OWN"]

    # A later order with the mug waits for nothing, and the mug stays off the list.
    again = world.order("pending", line(MUG_LINE, 3))
    assert world.deliver(again)["status"] == "ignored"
    assert world.waiting() == {} and (9100, 0) not in world.unmatched()
    assert "is marked as the shop's own already" in run(["products", "own", "MUG-OWN"], world.env()).output

    undone = run(["products", "own", "MUG-OWN", "--undo"], world.env())
    assert undone.output.startswith("SKU MUG-OWN is no longer marked as the shop's own")
    world.deliver(world.shop.state.admin_edit(again["id"], {"customer_note": "gift wrap"}))
    assert set(world.waiting()) == {again["id"]}


def test_products_own_accepts_what_it_has_not_seen_and_says_what_wins(world: World) -> None:
    unseen = run(["products", "own", "5150:7"], world.env())
    assert unseen.exit_code == 0 and unseen.output.splitlines() == [
        "marked product 5150 variation 7 as the shop's own: its order lines are never the supplier's, "
        "and `products unmatched` no longer lists it",
        "not seen in any order yet: marked anyway, for when it sells",
    ]
    mapped = run(["products", "own", "2101"], world.env())
    assert ("note: the product map maps product 2101 variation 2104 to stock_id 1001, and the product map wins "
            "over this mark: those lines stay the supplier's") in mapped.output
    world.order("pending", line(SNEAKER_LINE, 2))
    world.sync.wait_until(lambda: world.sync.locks() == {SNEAKER: 2}, what="the mapped sneaker still locked")

    digits = world.order("pending", {**BAG_LINE, "sku": "12345"})
    assert world.waiting() == {digits["id"]: [[2205, 0, "12345"]]}
    guessed = run(["products", "own", "12345"], world.env())
    assert "if you meant the SKU, run `rewix-sync products own --sku 12345`" in guessed.output
    assert run(["products", "own", "12345", "--undo"], world.env()).exit_code == 0
    assert "1 open order waited only on it" in run(["products", "own", "--sku", "12345"], world.env()).output
    missing = run(["products", "own", "NOPE", "--undo"], world.env())
    assert missing.output.startswith("SKU NOPE was not marked as the shop's own: nothing to undo (marked: ")
    bad = run(["products", "own", " "], world.env())
    assert bad.exit_code == 2 and "give a SKU, a PRODUCT_ID or PRODUCT_ID:VARIATION_ID" in bad.output


def test_a_catalog_sync_that_brings_the_sku_picks_the_order_up(world: World) -> None:
    order = world.order("on-hold", line(SCARF_LINE, 2))
    assert set(world.waiting()) == {order["id"]}
    result = run(["catalog", "sync"], world.env())
    assert result.exit_code == 0, result.output
    world.sync.wait_until(lambda: world.sync.locks() == {SCARF: 2}, what="the scarf locked by its code")
    assert world.waiting() == {}


def test_a_held_paid_order_stays_held_once_mapped_until_the_owner_sends_it(world: World) -> None:
    paid = world.shop.state.create_order(status="processing", lines=[BAG_LINE])  # paid before going live
    result = run(["backfill", "--order", str(paid["id"])], world.env())
    assert result.exit_code == 0, result.output
    assert f"held #{paid['number']} processing: no supplier line -> nothing yet, waits for a product map; " \
           "hold: paid already, not sent without --send-paid once mapped" in result.output.splitlines()
    assert set(world.waiting()) == {paid["id"]}

    world.import_map((2205, 0, BAG))
    # More patience than the harness's 20 s: on a busy machine a pickup pass that failed (the shop or the
    # database slow to answer) is tried again after a backoff.
    world.sync.wait_until(lambda: world.sync.locks() == {BAG: 1}, timeout=60, what="locked once mapped")
    world.sync.wait_until(lambda: world.waiting() == {} and world.settled(), what="picked up")
    assert world.sync.supplier_orders() == [] and world.shop_notes(paid["id"]) == []

    sent = run(["backfill", "--order", str(paid["id"]), "--send-paid"], world.env())
    assert sent.exit_code == 0, sent.output
    world.sync.wait_until(lambda: len(world.sync.supplier_orders()) == 1, what="sent when the owner says so")
    world.sync.wait_until(lambda: world.shop_notes(paid["id"]) == [SENT_AFTER_MAPPING_NOTE], what="the one note")


def test_a_shop_or_broker_down_leaves_the_orders_waiting_until_it_is_back(world: World) -> None:
    # Stop the running loop: this test drives passes by hand, through a broker it can cut.
    world.stop.set()
    for thread in world.threads:
        thread.join(timeout=10)
    pending = world.order("pending", line(BAG_LINE, 1))
    world.import_map((2205, 0, BAG))

    shop_down = WooCommerceClient(f"http://127.0.0.1:{free_port()}", CK, CS, timeout=2)  # nothing listens there
    with pytest.raises(TransientError):
        world.make_pickup(world.publisher, shop_down).run_once()
    assert set(world.waiting()) == {pending["id"]}

    world.broker_proxy = TcpProxy(address_of(world.broker, 5672))
    cut_publisher = Publisher(world.broker_proxy.url_for(world.broker))
    try:
        pickup = world.make_pickup(cut_publisher)
        world.broker_proxy.cut()
        with pytest.raises(BrokerUnavailable):
            pickup.run_once()
        assert set(world.waiting()) == {pending["id"]}
        world.broker_proxy.restore()
        assert pickup.run_once().picked_up == 1
    finally:
        cut_publisher.close()
    world.sync.wait_until(lambda: world.sync.locks() == {BAG: 1}, what="locked once both are back")
    assert world.waiting() == {}


def test_a_waiting_order_cancelled_without_a_word_reaching_us_leaves_the_list(world: World) -> None:
    order = world.order("pending", BAG_LINE)
    world.shop.state.admin_edit(order["id"], {"status": "cancelled"})  # its webhook is lost
    with world.sync.engine.begin() as c:
        c.execute(text("UPDATE waiting_orders SET checked_at = now() - interval '2 hours'"))
    world.sync.wait_until(lambda: world.waiting() == {}, what="the hourly look let it go")
    assert world.product_map_row()["state"] == "ok"
