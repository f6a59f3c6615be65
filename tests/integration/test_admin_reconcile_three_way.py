"""`rewix-sync reconcile` three ways: the shop simulator's open orders, the records supplier_sync
keeps (its consumer on a thread, a real RabbitMQ and PostgreSQL) and the supplier simulator."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from services.admin.cli import main
from services.supplier_sync.handler import OrderLineHandler
from shared import topology
from shared.amqp import Publisher
from shared.consumer import BatchConsumer
from shared.db import normalise_url
from shared.order_intake import OrderIntake
from shared.rewix import RewixClient
from simulators.rewix import start_in_thread as start_rewix
from simulators.rewix.control import SimulatorControl
from simulators.shop import start_in_thread as start_shop
from tests.conftest import TEST_RETRY_DELAYS
from tests.integration.test_admin_views import cli_env
from tests.support import wait_until

KEY, PASSWORD = "rec-key", "rec-password"
CK, CS = "ck_rec", "cs_rec"
T_SHIRT, BAG, HAT = 100001, 100002, 100003  # supplier models; the shop's product ids are 1, 2, 3


def line(product_id: int, quantity: int) -> dict[str, Any]:
    return {"product_id": product_id, "variation_id": 0, "quantity": quantity, "sku": f"P{product_id}",
            "name": f"Product {product_id}", "price": "10.00"}


class World:
    def __init__(self, db: str, broker: str) -> None:
        self.db = db
        self.rewix = start_rewix(api_key=KEY, password=PASSWORD)
        self.control = SimulatorControl(self.rewix.url)
        self.control.seed_catalog([{"stock_id": s, "product_id": s, "code": f"M{s}", "barcode": "", "availability": 50}
                                   for s in (T_SHIRT, BAG, HAT)])
        self.supplier = RewixClient(self.rewix.url, KEY, PASSWORD, timeout=5)
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.shop.webhooks.configure(enabled=False)
        self.engine = create_engine(normalise_url(db))
        with self.engine.begin() as c:
            for product_id, stock_id in ((1, T_SHIRT), (2, BAG), (3, HAT)):
                c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (:p, 0, :s)"),
                          {"p": product_id, "s": stock_id})
        self.publisher = Publisher(broker)
        self.intake = OrderIntake(db, self.publisher)
        self.stop = threading.Event()
        consumer = BatchConsumer(broker, topology.ORDER_LINES,
                                 OrderLineHandler(db, RewixClient(self.rewix.url, KEY, PASSWORD, timeout=5)),
                                 retry_delays=TEST_RETRY_DELAYS, stop=self.stop, name="sync-rec")
        self.thread = threading.Thread(target=consumer.run, daemon=True)
        self.thread.start()
        self.env = cli_env(db, broker, REWIX_API_URL=self.rewix.url, REWIX_API_KEY=KEY, REWIX_API_PASSWORD=PASSWORD,
                           WC_URL=self.shop.url, WC_CONSUMER_KEY=CK, WC_CONSUMER_SECRET=CS)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.publisher.close()
        self.supplier.close()
        self.control.close()
        self.rewix.stop()
        self.shop.stop()
        self.engine.dispose()

    def order(self, status: str, *lines: dict[str, Any]) -> dict[str, Any]:
        order = self.shop.state.create_order(status=status, lines=list(lines))
        self.intake.submit(order, "order.created")
        return order

    def locks(self) -> dict[int, int]:
        return {s: m.locked for s, m in self.supplier.get_growing_order().models.items() if m.locked}

    def reconcile(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["reconcile", *args], env=self.env, catch_exceptions=False)


@pytest.fixture
def world(db: str, broker: str) -> Iterator[World]:
    w = World(db, broker)
    yield w
    w.close()


def test_reconcile_finds_a_unit_added_by_hand_and_an_order_cancelled_without_a_webhook_and_apply_agrees(
    world: World,
) -> None:
    kept = world.order("on-hold", line(1, 2))
    cancelled = world.order("pending", line(1, 1), line(2, 1))
    wait_until(lambda: world.locks() == {T_SHIRT: 3, BAG: 1}, timeout=20, what="both orders locked")
    result = world.reconcile("--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"ok": True, "differences": []}

    world.supplier.modify_growing_order(set={HAT: 1})  # a unit added by hand at the supplier
    world.shop.state.admin_edit(cancelled["id"], {"status": "cancelled"})  # no webhook reaches the system

    result = world.reconcile("--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_key = {("order", d["order_id"]) if "order_id" in d else ("stock", d["stock_id"]): d for d in report["differences"]}
    assert set(by_key) == {("order", cancelled["id"]), ("stock", T_SHIRT), ("stock", BAG), ("stock", HAT)}
    order = by_key[("order", cancelled["id"])]
    assert order["wrong"] == "records"
    assert order["shop"] == {"status": "cancelled", "needs": {}}
    assert order["records"] == {"status": "pending", "holds": {str(T_SHIRT): 1, str(BAG): 1}}
    assert {k: by_key[("stock", T_SHIRT)][k] for k in ("shop", "records", "supplier", "wrong")} == \
        {"shop": 2, "records": 3, "supplier": 3, "wrong": "records and supplier"}
    assert {k: by_key[("stock", HAT)][k] for k in ("shop", "records", "supplier", "wrong")} == \
        {"shop": 0, "records": 0, "supplier": 1, "wrong": "supplier"}
    assert "reading the shop's open orders" in result.stderr  # the progress bar, beside the JSON

    text_result = world.reconcile()
    assert text_result.exit_code == 1
    assert "4 difference(s)" in text_result.stdout and "release 1 at the supplier" in text_result.stdout

    applied = world.reconcile("--apply")
    assert applied.exit_code == 0, applied.output
    assert "brought the records of 1 order(s) to the shop" in applied.stdout
    assert "the shop's open orders, the records and the supplier agree" in applied.stdout
    assert world.locks() == {T_SHIRT: 2}
    with world.engine.connect() as c:
        status = c.execute(text("SELECT status FROM shop_orders WHERE id = :id"), {"id": cancelled["id"]}).scalar_one()
    assert status == "cancelled"
    again = world.reconcile()
    assert again.exit_code == 0 and "agree" in again.stdout
    assert kept["id"]


def test_a_supplier_order_whose_shop_order_was_cancelled_after_sending_needs_a_person(world: World) -> None:
    paid = world.order("processing", line(2, 1))
    wait_until(lambda: world.supplier.find_order_by_key(paid["number"]) is not None, timeout=20, what="sent")
    world.shop.state.admin_edit(paid["id"], {"status": "cancelled"})  # after sending, no webhook
    result = world.reconcile("--json", "--apply")
    assert result.exit_code == 1
    [difference] = json.loads(result.stdout)["differences"]
    assert difference["order_id"] == paid["id"] and difference["wrong"] == "supplier"
    assert "a person must" in difference["fix"] and difference["shop"] == "cancelled"
