"""`rewix-sync reconcile` three ways: the shop simulator's open orders, the records supplier_sync
keeps (its consumer on a thread, a real RabbitMQ and PostgreSQL) and the supplier simulator.

`--apply` goes through the one path: the shop's states through OrderIntake (a paid order the
records never saw is held, as backfill holds it), the supplier set by that supplier_sync."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from shared.clients.rewix import RewixClient
from shared.db import normalise_url
from shared.messaging import topology
from shared.messaging.amqp import Publisher, consumer_count
from shared.messaging.consumer import BatchConsumer
from shared.orders.intake import OrderIntake
from services.admin.cli import main
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units
from simulators.rewix import start_in_thread as start_rewix
from simulators.rewix.control import SimulatorControl
from simulators.shop import start_in_thread as start_shop
from shared.observability.health import HEALTH
from shared.observability.metrics import SUPPLIER_ACCOUNT
from tests.conftest import TEST_RETRY_DELAYS, queue_depth
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
        self.broker = broker
        self.publisher = Publisher(broker)
        self.intake = OrderIntake(db, self.publisher)
        self.stop = threading.Event()
        consumer = BatchConsumer(broker, topology.ORDER_LINES,
                                 OrderLineHandler(sql_units(db), RewixClient(self.rewix.url, KEY, PASSWORD, timeout=5)),
                                 retry_delays=TEST_RETRY_DELAYS, stop=self.stop, name="sync-rec")
        self.thread = threading.Thread(target=consumer.run, daemon=True)
        self.thread.start()
        # reconcile --apply needs supplier_sync consuming: running, as on a live system.
        wait_until(lambda: consumer_count(broker, topology.ORDER_LINES.name) == 1, timeout=20,
                   what="supplier_sync consuming")
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
        return self.cli("reconcile", *args)

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as c:
            return c.execute(text(sql), params).all()

    def dead_and_waiting(self) -> int:
        queue = topology.ORDER_LINES
        return sum(queue_depth(self.broker, name) for name in [queue.dead, *(queue.wait(d) for d in TEST_RETRY_DELAYS)])


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
    # --apply brought the records to the shop's status: supplier_sync flagged the order for a person.
    [(flagged,)] = world.query("SELECT cancelled_in_shop FROM supplier_orders WHERE shop_order_id = :id", id=paid["id"])
    assert flagged is True
    assert difference["by_apply"] is False
    assert difference["fix"].startswith(f"cancel supplier order {world.supplier.find_order_by_key(paid['number']).order_id}"
                                        f" on the supplier's platform, then `rewix-sync orders handled {paid['number']}`")


def sent_then_cancelled(world: World) -> tuple[dict[str, Any], int]:
    """A paid order sent to the supplier, then cancelled in the shop with its webhook delivered."""
    paid = world.order("processing", line(2, 1))
    wait_until(lambda: world.supplier.find_order_by_key(paid["number"]) is not None, timeout=20, what="sent")
    supplier_order = world.supplier.find_order_by_key(paid["number"]).order_id
    world.intake.submit(world.shop.state.admin_edit(paid["id"], {"status": "cancelled"}), "order.updated")
    wait_until(lambda: world.query("SELECT cancelled_in_shop FROM supplier_orders WHERE shop_order_id = :id",
                                   id=paid["id"]) == [(True,)], timeout=20, what="flagged cancelled after sending")
    return paid, supplier_order


def status_rows(world: World) -> tuple[int, dict[str, dict[str, str]]]:
    result = world.cli("status", "--json")
    return result.exit_code, {row["name"]: row for row in json.loads(result.stdout)["rows"]}


def test_a_sent_order_cancelled_in_the_shop_needs_a_person_until_it_is_recorded_handled(world: World) -> None:
    paid, supplier_order = sent_then_cancelled(world)
    number = paid["number"]
    fix = f"cancel supplier order {supplier_order} on the supplier's platform, then `rewix-sync orders handled {number}`"

    for dispatched in (False, True):
        if dispatched:  # the supplier ships it anyway (what status_poller records): still a person's job
            with world.engine.begin() as c:
                c.execute(text("UPDATE supplier_orders SET status = 3, final = true WHERE shop_order_id = :id"),
                          {"id": paid["id"]})
        code, rows = status_rows(world)
        assert code == 1
        row = rows["cancelled after sending"]
        assert row["state"] == "attention"
        assert f"#{number} (cancelled in the shop, supplier order {supplier_order}, since " in row["text"]
        assert "`rewix-sync orders handled NUMBER`" in row["text"]

        result = world.reconcile("--json")
        assert result.exit_code == 1
        [difference] = json.loads(result.stdout)["differences"]
        assert (difference["order_id"], difference["wrong"], difference["by_apply"]) == (paid["id"], "supplier", False)
        assert fix in difference["fix"]
        table = world.reconcile()
        assert table.exit_code == 1 and fix in table.stdout
        assert "reconcile --apply`" not in table.stdout  # --apply cannot fix it: not suggested
        assert "1 difference(s): --apply cannot fix these; a person must act as each Fix says" in table.stdout

    unknown = world.cli("orders", "handled", "99999")
    assert unknown.exit_code == 2 and "no shop order numbered '99999'" in unknown.output
    assert unknown.output.count("\n") == 1
    pending = world.order("pending", line(1, 1))
    wait_until(lambda: world.locks().get(T_SHIRT) == 1, timeout=20, what="the pending order locked")
    not_sent = world.cli("orders", "handled", str(pending["number"]))
    assert not_sent.exit_code == 2 and "was never sent to the supplier" in not_sent.output
    kept = world.order("processing", line(3, 1))
    wait_until(lambda: world.query("SELECT 1 FROM supplier_orders WHERE shop_order_id = :id", id=kept["id"]),
               timeout=20, what="sent and recorded")
    not_cancelled = world.cli("orders", "handled", f"#{kept['number']}")
    assert not_cancelled.exit_code == 2 and "needs no handling" in not_cancelled.output

    done = world.cli("orders", "handled", number, "--note", "cancelled by phone, ticket 42")
    assert done.exit_code == 0, done.output
    assert f"order #{number}: supplier order {supplier_order} recorded handled by " in done.stdout
    again = world.cli("orders", "handled", number, "--note", "another note")
    assert again.exit_code == 0 and "recorded handled already" in again.stdout and "ticket 42" in again.stdout

    _, rows = status_rows(world)
    assert "cancelled after sending" not in rows
    result = world.reconcile("--json")
    assert result.exit_code == 0, result.stdout
    listed = {o["order_id"]: o for o in json.loads(world.cli("orders", "--json").stdout)}
    handled = listed[paid["id"]]
    assert handled["handled_note"] == "cancelled by phone, ticket 42" and handled["handled_by"]
    assert handled["handled_at"] and handled["cancelled_in_shop_at"]
    assert "cancelled in shop, handled" in world.cli("orders", "--search", number).stdout
    attention = {o["order_id"] for o in json.loads(world.cli("orders", "--json", "--attention").stdout)}
    assert paid["id"] not in attention


def test_reconcile_apply_holds_a_paid_order_the_records_never_saw_and_says_how_to_send_it(world: World) -> None:
    # Paid before go-live, placed at the supplier by hand then: no webhook ever reached the system.
    before = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    paid = world.shop.state.create_order(status="processing", lines=[line(1, 2)], date_created_gmt=before)
    send = f"rewix-sync backfill --order {paid['id']} --send-paid"

    found = world.reconcile("--json")
    assert found.exit_code == 1
    order = next(d for d in json.loads(found.stdout)["differences"] if d.get("order_id") == paid["id"])
    assert order["wrong"] == "records" and order["by_apply"] is True
    assert "holds it, unsent" in order["fix"] and f"`{send}`" in order["fix"]

    applied = world.reconcile("--apply")
    assert applied.exit_code == 0, applied.output
    assert f"held #{paid['number']} processing: {T_SHIRT} x2 -> lock, hold: paid already, not sent without --send-paid" \
        in applied.stdout.splitlines()
    assert "the shop's open orders, the records and the supplier agree" in applied.stdout
    assert f"#{paid['number']} held since " in applied.stdout and f"`{send}` sends it" in applied.stdout
    # Locked for it, and NOT sent: the supplier has no dropshipping order for it.
    assert world.locks() == {T_SHIRT: 2}
    assert world.control.state()["orders"] == [] and world.supplier.find_order_by_key(paid["number"]) is None
    assert world.query("SELECT order_id FROM send_holds") == [(paid["id"],)]
    wait_until(lambda: queue_depth(world.broker, topology.ORDER_LINES.name) == 0, what="every message handled")
    assert world.control.state()["orders"] == []

    again = world.reconcile("--json")
    assert again.exit_code == 0
    report = json.loads(again.stdout)
    assert report["ok"] is True and report["differences"] == []
    assert [(h["order_id"], h["send"]) for h in report["held"]] == [(paid["id"], send)]


def test_reconcile_apply_during_a_refused_supplier_account_pauses_supplier_sync_and_dead_letters_nothing(
    world: World,
) -> None:
    world.supplier.modify_growing_order(set={HAT: 1})  # a unit nobody needs, held by hand
    holder = world.engine.connect()
    transaction = holder.begin()
    holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": HAT})  # reconcile marks HAT under this lock
    outcome: dict[str, Result] = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", world.reconcile("--apply")), daemon=True)
    worker.start()
    waiting_on_the_lock = """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = :k
                             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
    wait_until(lambda: world.query(waiting_on_the_lock, k=HAT)[0][0] == 1, timeout=20, what="reconcile at the lock")
    world.control.refuse_account(401)
    transaction.rollback()
    holder.close()

    wait_until(lambda: any(p.startswith(f"{SUPPLIER_ACCOUNT}:") for p in HEALTH.readiness().problems),
               timeout=20, what="supplier_sync paused on the refused account")
    # Paused as for its own messages: it stopped consuming, and the request waits in the queue, whole.
    wait_until(lambda: consumer_count(world.broker, topology.ORDER_LINES.name) == 0, what="supplier_sync paused")
    refused_until = time.monotonic() + 3
    while time.monotonic() < refused_until:
        # Nothing is retried or dead-lettered for the account.
        assert world.dead_and_waiting() == 0
        assert queue_depth(world.broker, topology.ORDER_LINES.name) == 1
        time.sleep(0.2)
    assert worker.is_alive()  # reconcile waits for supplier_sync meanwhile
    # Still held while refused (read through the simulator's own door, which the refusal does not close).
    assert int(world.control.state()["growing_order"]["models"][str(HAT)]) == 1
    world.control.accept_account()

    worker.join(timeout=60)
    result = outcome["result"]
    assert result.exit_code == 0, result.output
    assert "supplier_sync set 1 more model(s) at the supplier: 100003=0" in result.stdout
    assert "the shop's open orders, the records and the supplier agree" in result.stdout
    assert world.locks() == {}
    wait_until(lambda: queue_depth(world.broker, topology.ORDER_LINES.name) == 0, what="every message handled")
    assert world.dead_and_waiting() == 0


def test_reconcile_apply_without_supplier_sync_changes_nothing_and_exits_1(world: World) -> None:
    world.stop.set()
    world.thread.join(timeout=10)
    world.supplier.modify_growing_order(set={HAT: 1})
    result = world.reconcile("--apply")
    assert result.exit_code == 1
    assert "supplier_sync is not running (nothing consumes rewix.order_lines)" in result.stdout
    assert world.locks() == {HAT: 1}
    assert world.query("SELECT count(*) FROM stock_locks")[0][0] == 0
    assert queue_depth(world.broker, topology.ORDER_LINES.name) == 0
    as_json = world.reconcile("--apply", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["error"].startswith("supplier_sync is not running")
