"""The sync status in the shop's order meta, end to end: the shop simulator delivers its webhooks to a
running ingest, supplier_sync locks and sends at the supplier simulator, status_poller polls, applies
and writes each order's `rewix_sync_status` / `rewix_supplier_order` once per change; the write comes
back as an `order.updated` delivery that changes nothing at the supplier and writes nothing again.
Real PostgreSQL and RabbitMQ."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, event, text

from shared.clients.rewix import CONFIRMED, DISPATCHED, READY, WORKING_ON, RewixClient
from shared.clients.shop import WooCommerceClient
from shared.db import normalise_url, session_scope
from shared.failures.errors import AccountRefused, TransientError
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer
from shared.orders import sync_facts as facts_sql
from shared.products.mapping import import_product_map
from services.status_poller.applier import StatusChangeApplier
from services.status_poller.budget import RequestBudget
from services.status_poller.poller import StatusPoller
from services.status_poller.shop_watch.sync_meta import MetaPass, SyncMetaWriter
from simulators.shop import start_in_thread as start_shop
from tests.conftest import TEST_RETRY_DELAYS
from tests.integration.sync_harness import API_KEY, PASSWORD, SyncHarness
from tests.integration.ingest_process import SECRET, Ingest
from tests.support import wait_until

CK, CS = "ck_sync_meta", "cs_sync_meta"
LINE = {"product_id": 2101, "variation_id": 0, "quantity": 2, "sku": "SNK-42", "name": "Sneaker", "price": "89.90"}
STOCK_ID = 1001  # a model of the supplier simulator (SyncHarness)
STATUS, SUPPLIER_ORDER = "rewix_sync_status", "rewix_supplier_order"
# The supplier calls that change what it holds: a `set` of the growing order, a dropshipping order.
CHANGING_CALLS = ("lock", "dropshipping")


def meta_writes(shop: Any, order_id: int) -> list[dict[str, str]]:
    """The meta each REST write to the order carried for the two keys, oldest first."""
    out = []
    for write in shop.state.writes(order_id):
        meta = {m["key"]: m["value"] for m in write["body"].get("meta_data") or []}
        if write["kind"] == "update" and (STATUS in meta or SUPPLIER_ORDER in meta):
            out.append({k: v for k, v in meta.items() if k in (STATUS, SUPPLIER_ORDER)})
    return out


class World:
    """The shop simulator firing its webhooks at ingest, supplier_sync and the supplier simulator, and
    status_poller's poll loop and applier on threads; the meta loop is run pass by pass by the test."""

    def __init__(self, broker: str, db: str) -> None:
        self.db = db
        with session_scope(db) as session:
            import_product_map(session, [(LINE["product_id"], 0, STOCK_ID)])
        self.sync = SyncHarness(broker, db)
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.ingest = Ingest(AMQP_URL=broker, DATABASE_URL=db, WC_URL=self.shop.url)
        self.shop.webhooks.configure(url=self.ingest.url + "/webhooks/woocommerce", secret=SECRET, enabled=True)
        self.shop_client = WooCommerceClient(self.shop.url, CK, CS, timeout=10)
        self.loop = SyncMetaWriter(db, self.shop_client, interval=0.2, budget=RequestBudget(50))
        self.engine = create_engine(normalise_url(db))
        self.stop = threading.Event()
        self.publisher = Publisher(broker)
        self.rewix = RewixClient(self.sync.sim.url, API_KEY, PASSWORD, timeout=5)
        poller = StatusPoller(db, self.rewix, self.publisher, interval=0.3, budget=RequestBudget(50))
        applier = BatchConsumer(broker, topology.STATUS_CHANGES, StatusChangeApplier(db, self.shop_client),
                                retry_delays=TEST_RETRY_DELAYS, stop=self.stop, max_batch=5, name="applier-meta")
        self.threads = [threading.Thread(target=poller.run, args=(self.stop,), daemon=True),
                        threading.Thread(target=applier.run, daemon=True)]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        try:
            assert self.ingest.stop() == 0
        finally:
            self.ingest.close()
            self.shop.stop()
            self.sync.close()
            self.publisher.close()
            self.rewix.close()
            self.engine.dispose()

    def row(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as c:
            return c.execute(text(sql), params).first()

    def synced_at(self, order_id: int) -> datetime | None:
        return self.row("SELECT last_synced_at FROM shop_orders WHERE id = :id", id=order_id)[0]

    def changing_calls(self) -> dict[str, int]:
        calls = self.sync.control.state()["calls"]
        return {name: calls.get(name, 0) for name in CHANGING_CALLS}

    def meta(self, order_id: int) -> dict[str, str]:
        return {m["key"]: m["value"] for m in self.shop.state.order(order_id)["meta_data"]
                if m["key"] in (STATUS, SUPPLIER_ORDER)}

    def settled(self, order_id: int) -> None:
        """Every delivery answered and the shop's latest state recorded and converged by supplier_sync."""
        def caught_up() -> bool:
            if not self.shop.webhooks.wait_idle(0.1):
                return False
            shop_date = datetime.fromisoformat(self.shop.state.order(order_id)["date_modified_gmt"])
            # The recorded state is the shop's, and the convergence that followed its recording is committed
            # (it stamps last_synced_at, and updated_at with it, in its own later transaction).
            row = self.row("SELECT date_modified_gmt, last_synced_at >= updated_at FROM shop_orders WHERE id = :id",
                           id=order_id)
            return row is not None and row[0] is not None and bool(row[1]) and \
                row[0].astimezone(timezone.utc).replace(tzinfo=None) == shop_date
        self.sync.wait_until(caught_up, what=f"order {order_id} recorded as the shop has it")

    def write_meta(self, order_id: int) -> dict[str, str]:
        """One pass of the meta loop, then its echo delivered and handled; proves the echo changed nothing
        at the supplier and left nothing to write. Returns the order's meta."""
        calls = self.changing_calls()
        synced = self.synced_at(order_id)
        updates = len([d for d in self.shop.webhooks.deliveries() if d["order_id"] == order_id])
        done = self.loop.run_once()
        assert done.written == 1 and done.written_ids == [order_id], done
        # The write came back as an order.updated delivery, answered 200, with a newer date_modified_gmt...
        self.sync.wait_until(lambda: self.shop.webhooks.wait_idle(0.1) and len(
            [d for d in self.shop.webhooks.deliveries() if d["order_id"] == order_id]) > updates, what="the echo")
        echo = [d for d in self.shop.webhooks.deliveries() if d["order_id"] == order_id][-1]
        assert (echo["topic"], echo["status"]) == ("order.updated", 200), echo
        # ...which supplier_sync recorded and converged without a call that changes the supplier,
        self.sync.wait_until(lambda: (now := self.synced_at(order_id)) is not None and (synced is None or now > synced),
                             what="the echo handled by supplier_sync")
        self.settled(order_id)
        assert self.changing_calls() == calls
        # and that changed no fact of the order's status: nothing more to write.
        again = self.loop.run_once()
        assert again.written == 0 and again.requests == 0, again
        return self.meta(order_id)


@pytest.fixture
def world(broker: str, db: str) -> Iterator[World]:
    w = World(broker, db)
    yield w
    w.close()


def test_the_shop_order_carries_its_sync_status_from_reserved_to_dispatched_once_each(world: World) -> None:
    order_id = world.shop.state.create_order(status="on-hold", lines=[LINE])["id"]
    world.sync.wait_until(lambda: world.sync.locks() == {STOCK_ID: 2}, what="the order locked")
    world.settled(order_id)
    assert world.write_meta(order_id) == {STATUS: "reserved"}  # no supplier order id before there is one

    world.shop.state.admin_edit(order_id, {"status": "processing"})  # paid
    world.sync.wait_until(lambda: world.sync.supplier_orders(), what="the order sent")
    [sent] = world.sync.supplier_orders()
    sid = sent["order_id"]
    world.settled(order_id)
    assert world.write_meta(order_id) == {STATUS: "sent: Booked", SUPPLIER_ORDER: str(sid)}

    for status, name in ((CONFIRMED, "Confirmed"), (WORKING_ON, "Working on"), (READY, "Ready"),
                         (DISPATCHED, "Dispatched")):
        world.sync.control.set_status(sid, status, **({"tracking_code": "1Z999"} if status == DISPATCHED else {}))
        world.sync.wait_until(lambda: any(f"is now {name}" in n["note"] for n in world.shop.state.notes(order_id)),
                              what=f"the {name} note")
        world.sync.wait_until(lambda: world.row("SELECT status FROM supplier_orders WHERE shop_order_id = :id",
                                                id=order_id)[0] == status, what=f"{name} recorded")
        if status == DISPATCHED:
            world.sync.wait_until(lambda: world.shop.state.order(order_id)["status"] == "completed", what="completed")
        world.settled(order_id)
        assert world.write_meta(order_id) == {STATUS: f"sent: {name}", SUPPLIER_ORDER: str(sid)}

    # One write per change, nothing else: the statuses in order, the supplier's id once.
    assert meta_writes(world.shop, order_id) == [
        {STATUS: "reserved"}, {STATUS: "sent: Booked", SUPPLIER_ORDER: str(sid)}, {STATUS: "sent: Confirmed"},
        {STATUS: "sent: Working on"}, {STATUS: "sent: Ready"}, {STATUS: "sent: Dispatched"}]
    assert len(world.sync.supplier_orders()) == 1
    # `rewix-sync orders` says the same as the shop.
    from services.admin import views
    with session_scope(world.db) as session:
        [row] = views.orders(session, order_ids=[order_id])
    assert (row["rewix_sync_status"], row["rewix_supplier_order"]) == ("sent: Dispatched", str(sid))


def test_the_loop_on_its_own_thread_writes_what_changes_and_its_echoes_write_nothing(world: World) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=world.loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        ids = [world.shop.state.create_order(status="on-hold", lines=[LINE])["id"] for _ in range(3)]
        world.sync.wait_until(lambda: all(world.meta(i).get(STATUS) == "reserved" for i in ids), what="reserved")
        world.shop.state.admin_edit(ids[0], {"status": "cancelled"})
        world.sync.wait_until(lambda: world.meta(ids[0]).get(STATUS) == "released", what="released")
        for order_id in ids:
            world.settled(order_id)
        world.sync.wait_until(lambda: world.row("SELECT count(*) FROM shop_meta_changes")[0] == 0,
                              what="every change handled")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    # A pending state may have been caught on the way: each value once, in order, never twice running.
    for order_id in ids:
        values = [w[STATUS] for w in meta_writes(world.shop, order_id)]
        assert all(a != b for a, b in zip(values, values[1:])), values
        assert values[-1] == ("released" if order_id == ids[0] else "reserved") and set(values) <= {
            "pending", "reserved", "released"}


# -- the loop against the shop alone: batches, failures, cost ------------------------------------------------


class CountingSession(requests.Session):
    """Records each request the client sends: method, path below /wc/v3, and how many orders a batch carried."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, int]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = kwargs.get("json") or {}
        self.calls.append((method, url.rsplit("/wc/v3", 1)[-1], len(body.get("update") or [])))
        return super().request(method, url, *args, **kwargs)


class ShopOnly:
    """The shop simulator (no webhooks), orders recorded straight into the database, the meta loop."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.shop.webhooks.configure(enabled=False)
        self.session = CountingSession()
        self.loop = SyncMetaWriter(db, WooCommerceClient(self.shop.url, CK, CS, timeout=10, session=self.session),
                                   interval=0.2, budget=RequestBudget(1000))
        self.engine = create_engine(normalise_url(db))

    def close(self) -> None:
        self.shop.stop()
        self.session.close()
        self.engine.dispose()

    def orders(self, count: int, status: str = "on-hold") -> list[int]:
        """Orders in the shop, recorded with one locked supplier line each."""
        ids = [self.shop.state.create_order(status=status, lines=[LINE])["id"] for _ in range(count)]
        with self.engine.begin() as c:
            c.execute(text("""
                INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids)
                SELECT id, id::text, :status, false, '', '[1]' FROM unnest(CAST(:ids AS bigint[])) AS id
            """), {"ids": ids, "status": status})
            c.execute(text("""
                INSERT INTO order_lines (order_id, line_id, product_id, variation_id, stock_id, quantity, removed,
                                         sync_status)
                SELECT id, 1, 2101, 0, :stock, 2, false, 'locked' FROM unnest(CAST(:ids AS bigint[])) AS id
            """), {"ids": ids, "stock": STOCK_ID})
        return ids

    def sql(self, statement: str, **params: Any) -> Any:
        with self.engine.begin() as c:
            return c.execute(text(statement), params)

    def status_of(self, order_id: int) -> str | None:
        return {m["key"]: m["value"] for m in self.shop.state.order(order_id)["meta_data"]}.get(STATUS)

    def writes(self, order_id: int) -> list[dict[str, str]]:
        return meta_writes(self.shop, order_id)

    def pending_changes(self) -> int:
        return self.sql("SELECT count(*) FROM shop_meta_changes").scalar_one()


@pytest.fixture
def shop_only(db: str) -> Iterator[ShopOnly]:
    w = ShopOnly(db)
    yield w
    w.close()


def test_many_orders_changing_at_once_go_in_batches_of_at_most_100(shop_only: ShopOnly) -> None:
    ids = shop_only.orders(250)
    done = shop_only.loop.run_once()
    assert (done.written, done.requests, done.retry) == (250, 3, 0)
    assert shop_only.session.calls == [("POST", "/orders/batch", 100), ("POST", "/orders/batch", 100),
                                       ("POST", "/orders/batch", 50)]
    assert all(shop_only.writes(i) == [{STATUS: "reserved"}] for i in ids)
    assert shop_only.pending_changes() == 0
    # Nothing changed: nothing is written again.
    assert shop_only.loop.run_once().requests == 0 and len(shop_only.session.calls) == 3
    # One order changes: one PUT.
    shop_only.sql("UPDATE order_lines SET sync_status = 'short', sync_error = 'supplier locked 1 of 2' "
                  "WHERE order_id = :id", id=ids[7])
    assert shop_only.loop.run_once().written == 1
    assert shop_only.session.calls[-1] == ("PUT", f"/orders/{ids[7]}", 0)
    assert shop_only.status_of(ids[7]) == f"short: stock_id {STOCK_ID} x2"


def test_a_failed_item_of_a_batch_is_tried_again_alone(shop_only: ShopOnly) -> None:
    ids = shop_only.orders(5)
    shop_only.shop.state.set_faults({"fail_batch_items": {"order_ids": [ids[2]], "status": 500, "count": 1}})
    first = shop_only.loop.run_once()
    assert (first.written, first.retry) == (4, 1) and shop_only.status_of(ids[2]) is None
    assert shop_only.sql("SELECT DISTINCT order_id FROM shop_meta_changes").scalars().all() == [ids[2]]
    second = shop_only.loop.run_once()
    assert second.written_ids == [ids[2]] and shop_only.session.calls[-1] == ("PUT", f"/orders/{ids[2]}", 0)
    assert all(shop_only.writes(i) == [{STATUS: "reserved"}] for i in ids)  # each saved once


def test_a_write_whose_answer_was_lost_is_read_back_not_repeated(shop_only: ShopOnly) -> None:
    ids = shop_only.orders(3)
    # The shop saves the batch, then the answer is lost (a PHP fatal in a later hook, a proxy's 502).
    shop_only.shop.state.set_faults({"fail_updates": {"status": 502, "count": 1, "after_write": True}})
    with pytest.raises(TransientError):
        shop_only.loop.run_once()
    assert all(shop_only.status_of(i) == "reserved" for i in ids)
    assert shop_only.sql("SELECT count(*) FROM shop_order_meta WHERE writing").scalar_one() == 3
    again = shop_only.loop.run_once()
    assert (again.read_back, again.written) == (3, 0) and shop_only.session.calls[-1][:2] == ("GET", "/orders")
    assert all(shop_only.writes(i) == [{STATUS: "reserved"}] for i in ids)  # never twice
    assert shop_only.pending_changes() == 0
    assert shop_only.sql("SELECT count(*) FROM shop_order_meta WHERE writing").scalar_one() == 0


def test_an_order_the_shop_no_longer_has_is_not_tried_again(shop_only: ShopOnly) -> None:
    ids = shop_only.orders(3)
    shop_only.shop.state.delete(ids[1])  # deleted for good: an update answers 400 "Invalid ID."
    done = shop_only.loop.run_once()
    assert (done.written, done.gone, done.retry) == (2, 1, 0)
    shop_only.sql("UPDATE shop_orders SET status = 'cancelled' WHERE id = :id", id=ids[1])
    calls = len(shop_only.session.calls)
    assert shop_only.loop.run_once().requests == 0 and len(shop_only.session.calls) == calls
    assert shop_only.pending_changes() == 0


def test_a_refused_key_waits_and_loses_nothing(shop_only: ShopOnly) -> None:
    ids = shop_only.orders(2)
    changes = shop_only.pending_changes()
    refused = SyncMetaWriter(shop_only.db, WooCommerceClient(shop_only.shop.url, CK, "cs_wrong", timeout=10),
                             budget=RequestBudget(1000))
    with pytest.raises(AccountRefused):  # the keys, not the orders: the loop waits for the shop
        refused.run_once()
    assert shop_only.pending_changes() == changes  # the changes wait for a key the shop takes
    assert shop_only.sql("SELECT count(*) FROM shop_order_meta WHERE writing").scalar_one() == 0
    assert shop_only.loop.run_once().written == 2 and all(shop_only.status_of(i) == "reserved" for i in ids)


def test_a_value_the_shop_refuses_waits_for_the_next_change(shop_only: ShopOnly) -> None:
    ids = shop_only.orders(2)
    shop_only.shop.state.set_faults({"fail_batch_items": {"order_ids": [ids[0]], "status": 400,
                                                          "code": "some_plugin_refuses", "count": 1}})
    assert (shop_only.loop.run_once().refused, shop_only.loop.run_once().requests) == (1, 0)
    assert shop_only.sql("SELECT error FROM shop_order_meta WHERE order_id = :id", id=ids[0]).scalar_one()
    shop_only.sql("UPDATE shop_orders SET status = 'cancelled' WHERE id = :id", id=ids[0])
    assert shop_only.loop.run_once().written_ids == [ids[0]] and shop_only.status_of(ids[0]) == "released"


def test_a_shop_that_takes_fewer_items_a_batch_is_taken_at_its_word(shop_only: ShopOnly) -> None:
    ids = shop_only.orders(90)
    shop_only.shop.state.batch_limit = 40  # a plugin's woocommerce_rest_batch_items_limit filter
    done = shop_only.loop.run_once()
    assert done.written == 90
    assert [n for _m, _p, n in shop_only.session.calls] == [90, 40, 40, 10]  # the first refused whole (413)
    assert all(shop_only.writes(i) == [{STATUS: "reserved"}] for i in ids)


def test_finding_what_changed_costs_one_query_at_50000_orders(shop_only: ShopOnly) -> None:
    shop_only.sql("""
        INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids, date_modified_gmt)
        SELECT n, n::text, 'completed', false, '', '[1]', now() FROM generate_series(100000, 149999) AS n
    """)
    shop_only.sql("""
        INSERT INTO order_lines (order_id, line_id, product_id, variation_id, stock_id, quantity, removed, sync_status)
        SELECT n, 1, 2101, 0, 1001, 1, false, 'released' FROM generate_series(100000, 149999) AS n
    """)
    shop_only.sql("""
        INSERT INTO supplier_orders (shop_order_id, key, supplier_order_id, status, final, cancelled_in_shop)
        SELECT n, n::text, n, 3, false, false FROM generate_series(100000, 109999) AS n
    """)
    shop_only.sql("DELETE FROM shop_meta_changes")  # as if every change had been written
    shop_only.sql("ANALYZE shop_orders; ANALYZE order_lines; ANALYZE supplier_orders; ANALYZE shop_meta_changes")
    # What happens to every order all day without changing its status: polls, echoes, syncs.
    shop_only.sql("UPDATE supplier_orders SET next_poll_at = now(), last_polled_at = now(), last_error = NULL")
    shop_only.sql("UPDATE shop_orders SET date_modified_gmt = now(), last_synced_at = now(), updated_at = now(), "
                  "recipient = '{}'::jsonb, number = number")
    shop_only.sql("UPDATE order_lines SET version = now(), updated_at = now(), sync_status = sync_status")
    assert shop_only.pending_changes() == 0  # the triggers' WHEN lets none of it through

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(shop_only.loop.engine, "before_cursor_execute", count)
    try:
        assert shop_only.loop.run_once() == MetaPass()
    finally:
        event.remove(shop_only.loop.engine, "before_cursor_execute", count)
    assert [s.split()[0] for s in statements] == ["SELECT"] and "shop_meta_changes" in statements[0]
    with shop_only.engine.connect() as c:
        plan = "\n".join(r[0] for r in c.execute(text(
            "EXPLAIN SELECT id, order_id FROM shop_meta_changes ORDER BY id LIMIT 1")))
    assert "Index Scan using shop_meta_changes_pkey" in plan, plan

    # A status that changes is found at once, and its facts are read by key, not by scanning.
    shop_only.sql("UPDATE supplier_orders SET status = 2001 WHERE shop_order_id = 100042")
    assert shop_only.sql("SELECT order_id FROM shop_meta_changes").scalars().all() == [100042]
    with shop_only.engine.connect() as c:
        c.execute(text("SET LOCAL enable_seqscan = off"))
        for query in (facts_sql._ORDERS, facts_sql._LINES):
            plan = "\n".join(r[0] for r in c.execute(text("EXPLAIN " + query.text), {"ids": list(range(100000, 102000))}))
            assert "Seq Scan" not in plan, plan
