"""Paying the supplier: `rewix-sync pay`, the `payments` row of `status`, the payment watch's note and gauge,
and `SUPPLIER_AUTO_CONFIRM`. Both simulators over HTTP, a real RabbitMQ and PostgreSQL, supplier_sync's
consumer on a thread (as the other tests run it) or as its own process."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from shared.clients.rewix import BOOKED, CONFIRMED, RewixClient
from shared.clients.shop import WooCommerceClient
from shared.db import normalise_url
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer
from shared.observability.metrics import REGISTRY
from shared.orders.intake import OrderIntake
from services.admin.cli import main
from services.status_poller.budget import RequestBudget
from services.status_poller.payment_watch import PaymentWatch
from services.status_poller.poller import StatusPoller
from services.status_poller.shop_watch.problem_notes import ProblemNotes
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units
from simulators.rewix import start_in_thread as start_rewix
from simulators.rewix.control import SimulatorControl
from simulators.shop import start_in_thread as start_shop
from tests.conftest import TEST_RETRY_DELAYS, queue_depth
from tests.integration.test_admin_views import cli_env
from tests.integration.worker_processes import REWIX_KEY, REWIX_PASSWORD, WC_KEY, WC_SECRET, ServiceProcess, \
    worker_env
from tests.support import wait_until

T_SHIRT, BAG, HAT = 100001, 100002, 100003  # supplier models; the shop's product ids are 1, 2, 3
CATALOG = [
    {"stock_id": T_SHIRT, "product_id": 501, "code": "TS-M", "name": "T-shirt", "size": "M", "price": 12.5},
    {"stock_id": BAG, "product_id": 502, "code": "BAG-1", "name": "Bag", "size": "", "price": 30},
    {"stock_id": HAT, "product_id": 503, "code": "HAT-L", "name": "Hat", "size": "L"},  # the export gives no price
]
PAY_URL = "https://supplier.example.com/account/orders-to-pay"
WAITING_NOTE = "Waiting for payment at the supplier since"


def line(product_id: int, quantity: int) -> dict[str, Any]:
    return {"product_id": product_id, "variation_id": 0, "quantity": quantity, "sku": f"P{product_id}",
            "name": f"Product {product_id}", "price": "10.00"}


class World:
    def __init__(self, db: str, broker: str, *, sync_thread: bool = True) -> None:
        self.db, self.broker = db, broker
        self.rewix = start_rewix(api_key=REWIX_KEY, password=REWIX_PASSWORD)
        self.control = SimulatorControl(self.rewix.url)
        self.control.seed_catalog([{**m, "barcode": "", "availability": 50, "currency": "EUR"} for m in CATALOG])
        self.supplier = RewixClient(self.rewix.url, REWIX_KEY, REWIX_PASSWORD, timeout=5)
        self.shop = start_shop(consumer_key=WC_KEY, consumer_secret=WC_SECRET)
        self.shop.webhooks.configure(enabled=False)  # deliveries are made here, through the intake
        self.engine = create_engine(normalise_url(db))
        with self.engine.begin() as c:
            for product_id, stock_id in ((1, T_SHIRT), (2, BAG), (3, HAT)):
                c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (:p, 0, :s)"),
                          {"p": product_id, "s": stock_id})
        self.publisher = Publisher(broker)
        self.intake = OrderIntake(db, self.publisher)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        if sync_thread:
            consumer = BatchConsumer(broker, topology.ORDER_LINES,
                                     OrderLineHandler(sql_units(db), RewixClient(self.rewix.url, REWIX_KEY, REWIX_PASSWORD, timeout=5)),
                                     retry_delays=TEST_RETRY_DELAYS, stop=self.stop, name="sync-pay")
            self.threads.append(threading.Thread(target=consumer.run, daemon=True))
            self.threads[-1].start()
        self.env = cli_env(db, broker, REWIX_API_URL=self.rewix.url, REWIX_API_KEY=REWIX_KEY,
                           REWIX_API_PASSWORD=REWIX_PASSWORD, WC_URL=self.shop.url, WC_CONSUMER_KEY=WC_KEY,
                           WC_CONSUMER_SECRET=WC_SECRET, SUPPLIER_PAYMENT_URL=PAY_URL, INGEST_URL="http://127.0.0.1:1")
        # The catalog as `rewix-sync catalog sync` stores it, prices included.
        assert self.cli("catalog", "sync").exit_code == 0

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.publisher.close()
        self.supplier.close()
        self.control.close()
        self.rewix.stop()
        self.shop.stop()
        self.engine.dispose()

    def order(self, status: str, *lines: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        order = self.shop.state.create_order(status=status, lines=list(lines), **kwargs)
        self.intake.submit(order, "order.created")
        return order

    def booked(self, order: dict[str, Any]) -> dict[str, Any]:
        """The order's supplier order once it is recorded (as the supplier first reported it)."""
        def recorded() -> dict[str, Any] | None:
            with self.engine.connect() as c:
                row = c.execute(text("SELECT * FROM supplier_orders WHERE shop_order_id = :id"),
                                {"id": order["id"]}).mappings().one_or_none()
            return dict(row) if row else None

        wait_until(lambda: recorded() is not None, timeout=20, what=f"order {order['number']} sent")
        return recorded()  # type: ignore[return-value]

    def line_states(self, order: dict[str, Any]) -> set[str]:
        with self.engine.connect() as c:
            return set(c.execute(text("SELECT sync_status FROM order_lines WHERE order_id = :id"),
                                 {"id": order["id"]}).scalars())

    def locks(self) -> dict[int, int]:
        return {s: m.locked for s, m in self.supplier.get_growing_order().models.items() if m.locked}

    def settled(self) -> bool:
        return queue_depth(self.broker, topology.ORDER_LINES.name) == 0

    def cli(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(main, list(args), env={**self.env, **env}, catch_exceptions=False)

    def pay(self, **env: str) -> tuple[int, dict[str, Any]]:
        result = self.cli("pay", "--json", **env)
        assert result.exit_code in (0, 1), result.output
        return result.exit_code, json.loads(result.stdout)

    def payments_row(self, **env: str) -> dict[str, Any]:
        result = self.cli("status", "--json", **env)
        rows = {r["name"]: r for r in json.loads(result.stdout)["rows"]}
        return rows["payments"]

    def payment_notes(self, order_id: int) -> list[str]:
        return [n["note"] for n in self.shop.state.notes(order_id) if WAITING_NOTE in n["note"]]


@pytest.fixture
def world(db: str, broker: str) -> Iterator[World]:
    w = World(db, broker)
    yield w
    w.close()


def test_two_booked_orders_are_listed_ready_to_pay_until_a_unit_is_locked_by_hand(world: World) -> None:
    first = world.order("processing", line(1, 2))
    second = world.order("processing", line(2, 1), line(3, 1), shipping={"first_name": "Ana", "last_name": "Lima"})
    open_order = world.order("on-hold", line(1, 1))  # still open: its unit stays in the growing order
    first_sent, second_sent = world.booked(first), world.booked(second)
    assert first_sent["status"] == second_sent["status"] == BOOKED
    wait_until(lambda: world.settled() and world.locks() == {T_SHIRT: 1}, timeout=20, what="the open order locked")

    code, report = world.pay()
    assert code == 0 and report["ready_to_pay"] is True, report
    assert report["differences"] == [] and report["compared"] == "the shop's open orders, the records and the supplier"
    assert report["payment_url"] == PAY_URL
    orders = {o["shop_order"]: o for o in report["orders"]}
    assert set(orders) == {first["number"], second["number"]}
    one, two = orders[first["number"]], orders[second["number"]]
    assert one["supplier_order_id"] == first_sent["supplier_order_id"] and one["status"] == "Booked"
    assert one["customer"] == "Zoë Müller-Ørsted" and two["customer"] == "Ana Lima"
    assert one["items"] == [{"stock_id": T_SHIRT, "quantity": 2, "code": "TS-M", "name": "T-shirt", "size": "M",
                             "unit_price": "12.50", "currency": "EUR"}]
    assert one["amount"] == "25.00" and one["currency"] == "EUR"
    assert [(i["stock_id"], i["quantity"]) for i in two["items"]] == [(BAG, 1), (HAT, 1)]
    assert two["amount"] is None  # the hat has no price in the catalog
    assert report["total"] is None
    for order, sent in ((one, first_sent), (two, second_sent)):
        assert order["waiting_since"] == sent["sent_at"].isoformat().replace("+00:00", "Z")
        assert order["overdue"] is False

    text_result = world.cli("pay")
    assert text_result.exit_code == 0
    assert "Ready to pay" in text_result.stdout and f"Pay at {PAY_URL}" in text_result.stdout
    assert "amount unknown" in text_result.stdout and "Ana Lima" in text_result.stdout

    world.control.lock_by_hand({HAT: 1})  # someone adds a hat to the growing order on the supplier's site
    code, report = world.pay()
    assert code == 1 and report["ready_to_pay"] is False
    [difference] = report["differences"]
    assert {k: difference[k] for k in ("kind", "stock_id", "shop", "records", "supplier", "wrong")} == \
        {"kind": "stock", "stock_id": HAT, "shop": 0, "records": 0, "supplier": 1, "wrong": "supplier"}
    assert difference["fix"].startswith("release 1 at the supplier") and "reconcile --apply" in difference["fix"]
    assert len(report["orders"]) == 2  # still listed: what to pay once it is fixed
    text_result = world.cli("pay")
    assert text_result.exit_code == 1
    assert "Not ready to pay: 1 difference to fix first." in text_result.stdout
    assert f"Remote ID {HAT}" in text_result.stdout

    # Without the shop's keys: the records against the supplier only, and it says so.
    code, report = world.pay(WC_CONSUMER_KEY="", WC_CONSUMER_SECRET="")
    assert code == 1 and report["compared"] == "the records and the supplier"
    assert [(d["stock_id"], d["supplier"]) for d in report["differences"]] == [(HAT, 1)]
    assert any("the shop was not compared" in note for note in report["notes"])
    assert open_order["id"]


def test_a_paid_order_not_booked_makes_it_not_ready(world: World) -> None:
    booked = world.order("processing", line(1, 1))
    world.booked(booked)
    world.control.seed_catalog([{"stock_id": BAG, "availability": 0}])  # nothing left to lock: it stays short
    short = world.order("processing", line(2, 1))
    wait_until(lambda: world.line_states(short) == {"short"}, timeout=20, what="the paid order short")
    code, report = world.pay()
    assert code == 1 and report["ready_to_pay"] is False
    by_order = {d.get("order_id"): d for d in report["differences"]}
    assert by_order[short["id"]]["kind"] == "paid_not_booked"
    assert by_order[short["id"]]["shop_order"] == short["number"]
    assert "could not lock" in by_order[short["id"]]["fix"]


def test_nothing_waiting_for_payment_exits_0(world: World) -> None:
    world.order("on-hold", line(1, 1))
    wait_until(lambda: world.settled() and world.locks() == {T_SHIRT: 1}, timeout=20, what="locked")
    code, report = world.pay()
    assert code == 0 and report == {**report, "ready_to_pay": False, "orders": [], "differences": [], "compared": None}
    assert world.cli("pay").stdout.strip() == "No supplier order waits for payment: nothing to pay."
    assert world.payments_row()["state"] == "ok"


def test_an_order_booked_past_the_threshold_needs_a_person_once_and_clears_when_paid(world: World) -> None:
    threshold = "0.02"  # minutes: 1.2 seconds
    order = world.order("processing", line(1, 1))
    sent = world.booked(order)
    watch = PaymentWatch(world.db, float(threshold))
    shop = WooCommerceClient(world.shop.url, WC_KEY, WC_SECRET, timeout=5)
    notes = ProblemNotes(world.db, shop)

    wait_until(lambda: watch.run_once().overdue == 1, timeout=20, what="the wait past the threshold")
    row = world.payments_row(SUPPLIER_PAYMENT_ALERT_MINUTES=threshold)
    assert row["state"] == "attention", row
    assert f"#{order['number']}" in row["text"] and "the oldest" in row["text"] and "`rewix-sync pay`" in row["text"]
    assert REGISTRY.get_sample_value("rewix_supplier_orders_payment_overdue") == 1
    assert REGISTRY.get_sample_value("rewix_supplier_order_payment_wait_oldest_seconds") >= 1.2
    notes.run_once()
    [note] = world.payment_notes(order["id"])
    assert f"supplier order {sent['supplier_order_id']} is Booked" in note
    # Looked at again and again: no second note.
    for _ in range(3):
        assert watch.run_once().noted == 0
        notes.run_once()
    assert len(world.payment_notes(order["id"])) == 1
    code, report = world.pay(SUPPLIER_PAYMENT_ALERT_MINUTES=threshold)
    assert code == 0 and report["orders"][0]["overdue"] is True

    world.control.set_status(sent["supplier_order_id"], CONFIRMED)  # paid on the supplier's platform
    publisher = Publisher(world.broker)
    client = RewixClient(world.rewix.url, REWIX_KEY, REWIX_PASSWORD, timeout=5)
    poller = StatusPoller(world.db, client, publisher, interval=0.3, budget=RequestBudget(50))
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: world.booked(order)["status"] == CONFIRMED, timeout=20, what="Confirmed recorded")
    finally:
        stop.set()
        thread.join(timeout=10)
        publisher.close()
        client.close()
    assert world.payments_row(SUPPLIER_PAYMENT_ALERT_MINUTES=threshold)["state"] == "ok"
    assert watch.run_once().overdue == 0
    assert REGISTRY.get_sample_value("rewix_supplier_orders_payment_overdue") == 0
    assert REGISTRY.get_sample_value("rewix_supplier_order_payment_wait_oldest_seconds") == 0
    notes.run_once()
    assert len(world.payment_notes(order["id"])) == 1  # the note stays: it said something true
    assert world.pay()[1]["orders"] == []


def test_the_operator_page_shows_what_to_pay_and_where(world: World) -> None:
    from tests.integration.web_process import TOKEN, WebServer, bearer

    paid = world.order("processing", line(1, 2), shipping={"first_name": "<b>Ana</b>", "last_name": "Lima"})
    world.booked(paid)
    wait_until(world.settled, timeout=20, what="settled")
    web = WebServer({**world.env, "ADMIN_TOKEN": TOKEN, "ADMIN_PORT": "0"})
    try:
        page = requests.get(web.url + "/", headers=bearer(), timeout=30).text
    finally:
        web.stop()
    section = page[page.index('<section id="payments">'):]
    assert "Waiting for payment" in section and f"#{paid['number']}" in section
    assert "&lt;b&gt;Ana&lt;/b&gt; Lima" in section and "<b>Ana</b>" not in page
    assert "100001 TS-M T-shirt M ×2" in section and "EUR 25.00" in section
    assert "Ready to pay" in section and f'<a href="{PAY_URL}"' in section


def test_auto_confirm_is_sent_and_the_supplier_confirms_what_the_e_credit_covers(db: str, broker: str) -> None:
    world = World(db, broker, sync_thread=False)
    sync = ServiceProcess("services.supplier_sync",
                          worker_env(db, broker, world.rewix.url, world.shop.url, SUPPLIER_AUTO_CONFIRM="true"))
    try:
        world.control.set_account(e_credit=30)
        covered = world.order("processing", line(1, 2))  # 25.00: paid from the e-credit
        covered_sent = world.booked(covered)
        uncovered = world.order("processing", line(1, 1))  # 12.50, with 5.00 left: stays Booked
        uncovered_sent = world.booked(uncovered)
        assert sync.alive(), sync.output()
        state = world.control.state()
    finally:
        sync.stop()
        world.close()
    assert (covered_sent["status"], uncovered_sent["status"]) == (CONFIRMED, BOOKED)
    at_supplier = {o["key"]: o for o in state["orders"]}
    assert at_supplier[covered["number"]]["auto_confirm"] is True
    assert at_supplier[uncovered["number"]]["auto_confirm"] is True
    assert state["account"]["e_credit"] == 5.0
    sent = [order for r in state["recent_requests"] if r["path"].endswith("/dropshipping") for order in r["summary"]]
    assert len(sent) == 2 and all(order["autoConfirm"] is True for order in sent)


def test_without_auto_confirm_the_order_carries_none_and_stays_booked(world: World) -> None:
    world.control.set_account(auto_confirmation=True, e_credit=1000)
    order = world.order("processing", line(1, 1))
    assert world.booked(order)["status"] == BOOKED
    [at_supplier] = world.control.state()["orders"]
    assert at_supplier["auto_confirm"] is None and at_supplier["status"] == BOOKED
