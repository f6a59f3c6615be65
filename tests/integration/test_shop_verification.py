"""The verification sweep against the shop simulator, supplier_sync and the supplier simulator,
on a real RabbitMQ and PostgreSQL: what the shop trashed or deleted without a webhook is released,
a newer shop state is applied, the sweep is batched, and one replica sweeps per interval."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from shared.clients.shop import WooCommerceClient
from shared.messaging.amqp import Publisher
from shared.orders.intake import OrderIntake
from shared.shop_state.checks import read_checks
from services.status_poller.budget import RequestBudget
from services.status_poller.shop_watch.verification import VerificationSweep
from simulators.shop import start_in_thread as start_shop

from tests.integration.sync_harness import SyncHarness
from tests.support import RecordingSession

CK, CS = "ck_verify", "cs_verify"
T_SHIRT, MUG = 1001, 1002  # stock ids; the shop's product ids are the same numbers


def line(stock_id: int, quantity: int = 1) -> dict[str, Any]:
    return {"product_id": stock_id, "variation_id": 0, "quantity": quantity, "sku": f"SKU-{stock_id}",
            "name": f"Product {stock_id}", "price": "10.00"}


class Setup:
    def __init__(self, db: str, broker: str) -> None:
        self.db, self.broker = db, broker
        self.sync = SyncHarness(broker, db, availability=1000)
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.shop.webhooks.configure(enabled=False)  # nothing reaches ingest: only the sweep can tell
        self.session = RecordingSession()
        self.client = WooCommerceClient(self.shop.url, CK, CS, timeout=5, session=self.session)
        self.publisher = Publisher(broker)
        self.intake = OrderIntake(db, self.publisher)
        with self.sync.engine.begin() as c:
            for stock_id in (T_SHIRT, MUG):
                c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (:s, 0, :s)"),
                          {"s": stock_id})

    def order(self, status: str, *lines: dict[str, Any]) -> dict[str, Any]:
        """An order created in the shop and delivered once, as its order.created webhook would be."""
        order = self.shop.state.create_order(status=status, lines=list(lines))
        self.intake.submit(order, "order.created")
        return order

    def sweep(self, interval: float = 900, budget: RequestBudget | None = None) -> VerificationSweep:
        return VerificationSweep(self.db, self.client, self.intake, interval, budget=budget or RequestBudget(100))

    def close(self) -> None:
        self.publisher.close()
        self.shop.stop()
        self.sync.close()


@pytest.fixture
def setup(db: str, broker: str) -> Iterator[Setup]:
    s = Setup(db, broker)
    yield s
    s.close()


def test_the_sweep_releases_an_order_trashed_and_one_deleted_without_any_webhook(setup: Setup) -> None:
    trashed = setup.order("on-hold", line(T_SHIRT, 2))
    deleted = setup.order("pending", line(MUG, 1))
    kept = setup.order("on-hold", line(T_SHIRT, 1))
    setup.sync.wait_until(lambda: setup.sync.locks() == {T_SHIRT: 3, MUG: 1}, what="all three locked")

    setup.shop.state.trash(trashed["id"])
    setup.shop.state.delete(deleted["id"])  # "Delete permanently": WooCommerce sends nothing
    setup.session.calls.clear()
    done = setup.sweep().sweep_once()

    assert (done.checked, done.trashed, done.deleted, done.updated) == (3, 1, 1, 0)
    setup.sync.wait_until(lambda: setup.sync.locks() == {T_SHIRT: 1}, what="the trashed and deleted released")
    # The status list once; the versions of all three in one request; one GET for the id they did not
    # return (404); then the trashed order whole, alone.
    assert setup.session.paths == ["/reports/orders/totals", "/orders", f"/orders/{deleted['id']}", "/orders"]
    versions, whole = setup.session.calls[1][1], setup.session.calls[3][1]
    assert versions["_fields"] == "id,status,date_modified_gmt"
    assert _ids(versions) == {trashed["id"], deleted["id"], kept["id"]}
    assert "_fields" not in whole and _ids(whole) == {trashed["id"]}
    assert done.requests == 3
    assert kept["id"] in {r[0] for r in setup.sync.query("SELECT id FROM shop_orders WHERE NOT deleted")}


def test_a_newer_shop_state_goes_down_the_normal_path_and_an_unchanged_one_costs_nothing(setup: Setup) -> None:
    edited = setup.order("on-hold", line(T_SHIRT, 1))
    same = setup.order("on-hold", line(MUG, 1))
    setup.sync.wait_until(lambda: setup.sync.locks() == {T_SHIRT: 1, MUG: 1}, what="both locked")
    setup.shop.state.admin_edit(edited["id"], {"lines": [line(T_SHIRT, 3)]})  # the webhook was lost

    done = setup.sweep().sweep_once()
    assert (done.updated, done.trashed, done.deleted) == (1, 0, 0)
    setup.sync.wait_until(lambda: setup.sync.locks() == {T_SHIRT: 3, MUG: 1}, what="the edit applied")
    assert same["id"]  # unchanged: nothing published for it
    again = setup.sweep().sweep_once()
    assert (again.updated, again.trashed, again.deleted) == (0, 0, 0)


def test_the_sweep_asks_100_orders_a_request_and_reads_whole_only_what_changed(setup: Setup) -> None:
    orders = [setup.order("on-hold", line(T_SHIRT, 1)) for _ in range(230)]
    setup.sync.wait_until(lambda: setup.sync.locks() == {T_SHIRT: 230}, timeout=60, what="230 locked")
    setup.session.calls.clear()
    unchanged = setup.sweep().sweep_once()
    assert unchanged.checked == 230 and unchanged.requests == 3
    assert [params.get("_fields") for _path, params in _listings(setup)] == ["id,status,date_modified_gmt"] * 3

    # Lost webhooks, one in each batch of 100: an edit, a trash, an edit.
    edited, trashed, edited_too = orders[5]["id"], orders[150]["id"], orders[229]["id"]
    setup.shop.state.admin_edit(edited, {"lines": [line(T_SHIRT, 2)]})
    setup.shop.state.trash(trashed)
    setup.shop.state.admin_edit(edited_too, {"lines": [line(T_SHIRT, 3)]})
    setup.session.calls.clear()
    done = setup.sweep().sweep_once()
    assert (done.updated, done.trashed, done.deleted) == (2, 1, 0)
    # Three reads of the versions, then the three changed orders whole in one request.
    assert done.requests == 4
    listings = _listings(setup)
    assert [params.get("_fields") for _path, params in listings] == ["id,status,date_modified_gmt"] * 3 + [None]
    assert _ids(listings[-1][1]) == {edited, trashed, edited_too}
    setup.sync.wait_until(lambda: setup.sync.locks() == {T_SHIRT: 230 - 1 + 1 + 2},
                          what="the edits and the trash applied")


def _listings(setup: Setup) -> list[tuple[str, dict[str, Any]]]:
    return [(path, params) for path, params in setup.session.calls if path == "/orders"]


def _ids(params: dict[str, Any]) -> set[int]:
    return {int(i) for i in str(params["include"]).split(",")}


def test_replicas_sweep_once_per_interval_and_the_last_success_is_recorded(setup: Setup) -> None:
    setup.order("on-hold", line(T_SHIRT, 1))
    setup.sync.wait_until(lambda: setup.sync.locks() == {T_SHIRT: 1}, what="locked")
    setup.session.calls.clear()
    stop = threading.Event()
    replicas = [setup.sweep(interval=3600) for _ in range(3)]
    threads = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in replicas]
    for thread in threads:
        thread.start()
    try:
        setup.sync.wait_until(lambda: "verification" in _checks(setup) and
                              _checks(setup)["verification"].last_success_at is not None, what="a sweep recorded")
        stop.wait(2.0)  # every replica has tried to claim by now
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    # Three replicas, one sweep: one batch request in all (plus the one status list).
    assert setup.session.paths.count("/orders") == 1
    record = _checks(setup)["verification"]
    assert record.detail["checked"] == 1 and record.interval == 3600


def _checks(setup: Setup) -> dict[str, Any]:
    with setup.sync.engine.connect() as c:
        return read_checks(c)


def test_the_sweep_runs_inside_status_poller(db: str, broker: str, tmp_path: Any) -> None:
    """As a process: SHOP_VERIFY_INTERVAL_SECONDS set, an order trashed without a webhook is released."""
    from shared.messaging import topology
    from shared.messaging.messages import parse_order_line
    from tests.conftest import drain, queue_depth
    from tests.integration.test_status_poller import World, start_service, stop_service
    from tests.support import wait_until

    world = World(db, broker)
    try:
        order = world.shop.state.create_order(status="on-hold", lines=[line(T_SHIRT, 1)])
        with world.engine.begin() as c:
            c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (:s, 0, :s)"),
                      {"s": T_SHIRT})
            c.execute(text("INSERT INTO order_versions (order_id, had_supplier_line) VALUES (:id, true)"),
                      {"id": order["id"]})
            c.execute(text("INSERT INTO shop_orders (id, number, status, date_modified_gmt, deleted, customer_note,"
                           " supplier_line_ids) VALUES (:id, :id, 'on-hold', :modified, false, '', '[]')"),
                      {"id": order["id"], "modified": order["date_modified_gmt"] + "+00:00"})
            c.execute(text("INSERT INTO order_lines (order_id, line_id, product_id, variation_id, stock_id, quantity,"
                           " removed, sync_status) VALUES (:id, 1, :s, 0, :s, 1, false, 'locked')"),
                      {"id": order["id"], "s": T_SHIRT})
        world.shop.state.trash(order["id"])
        log_path = tmp_path / "status_poller.log"
        process = start_service(world.env(SHOP_VERIFY_INTERVAL_SECONDS="1"), log_path)
        try:
            wait_until(lambda: queue_depth(world.amqp_url, topology.ORDER_LINES.name) > 0, timeout=30,
                       what="the sweep's release")
        finally:
            stop_service(process, log_path)
        assert "shop verification done" in log_path.read_text()
        lines = [parse_order_line(body) for _p, body in drain(world.amqp_url, topology.ORDER_LINES.name)]
        assert {(m.order_id, m.status, m.source) for m in lines} == {(order["id"], "trash", "verification")}
    finally:
        world.close()
