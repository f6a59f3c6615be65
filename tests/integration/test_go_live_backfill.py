"""Going live with `rewix-sync backfill`: paid orders are locked and held, --dry-run changes nothing."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from shared.db import normalise_url, session_scope
from shared.db.models import OrderVersion, ProductMapping
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.observability.backlog import read_backlog
from shared.orders.intake import OrderIntake
from simulators.shop import start_in_thread
from tests.conftest import drain, queue_depth
from tests.integration.sync_harness import SyncHarness
from tests.integration.test_admin_views import add_order, cli_env, run

KEY, SECRET = "ck_golive_test", "cs_golive_test"
LINE = {"product_id": 2101, "variation_id": 2104, "quantity": 2, "sku": "SNK-42", "price": "89.90"}
OWN = {"product_id": 3307, "variation_id": 0, "quantity": 1, "sku": "TEE-0001", "price": "19.50"}
UNMAPPED = {"product_id": 2205, "variation_id": 0, "quantity": 1, "sku": "BAG-07", "price": "49.00"}
SINCE = "2026-11-26T09:00:00Z"
AT = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def shop() -> Iterator:
    simulator = start_in_thread(consumer_key=KEY, consumer_secret=SECRET)
    yield simulator
    simulator.stop()


def env_for(db: str, broker: str, shop_url: str) -> dict[str, str]:
    return cli_env(db, broker, WC_URL=shop_url, WC_CONSUMER_KEY=KEY, WC_CONSUMER_SECRET=SECRET)


def count(db: str, sql: str) -> int:
    engine = create_engine(normalise_url(db))
    try:
        with engine.connect() as c:
            return int(c.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_dry_run_prints_the_plan_per_order_and_sends_nothing(db: str, broker: str, shop) -> None:
    with session_scope(db) as s:
        s.add(ProductMapping(wc_product_id=2101, wc_variation_id=2104, stock_id=100001))
    pending = shop.state.create_order(status="pending", lines=[LINE], date_created_gmt=AT)
    paid = shop.state.create_order(status="processing", lines=[LINE, OWN], date_created_gmt=AT + timedelta(minutes=1))
    own = shop.state.create_order(status="processing", lines=[OWN], date_created_gmt=AT + timedelta(minutes=2))
    unmapped = shop.state.create_order(status="processing", lines=[UNMAPPED], date_created_gmt=AT + timedelta(minutes=3))
    assert run(["products", "own", "TEE-0001"], env_for(db, broker, shop.url)).exit_code == 0

    result = run(["backfill", "--since", SINCE, "--dry-run"], env_for(db, broker, shop.url))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"#{pending['number']} pending: 100001 x2 -> lock" in lines
    assert f"#{paid['number']} processing: 100001 x2 -> lock, hold: paid already, not sent without --send-paid" in lines
    assert f"#{own['number']} processing: no supplier line -> nothing: no supplier line" in lines
    # Paid, its product not mapped yet: it waits for the map, and the hold keeps it unsent once mapped.
    assert (f"#{unmapped['number']} processing: no supplier line -> nothing yet, waits for a product map; "
            "hold: paid already, not sent without --send-paid once mapped") in lines
    assert lines[-1].startswith("dry run: 4 orders modified since 2026-11-26T09:00:00+00:00; would ")
    assert lines[-1].endswith("nothing was locked or sent")
    with_send = run(["backfill", "--since", SINCE, "--dry-run", "--send-paid"], env_for(db, broker, shop.url))
    assert f"#{paid['number']} processing: 100001 x2 -> lock and send" in with_send.output.splitlines()

    # Nothing was published, held, remembered or recorded.
    assert queue_depth(broker, topology.ORDER_LINES.name) == 0
    for table in ("send_holds", "unmatched_lines", "shop_orders"):
        assert count(db, f"SELECT count(*) FROM {table}") == 0, table
    assert count(db, "SELECT count(*) FROM order_versions WHERE had_supplier_line") == 0


def test_a_backfilled_paid_order_is_locked_but_sent_only_when_the_owner_says_so(db: str, broker: str, shop) -> None:
    with session_scope(db) as s:
        s.add(ProductMapping(wc_product_id=2101, wc_variation_id=2104, stock_id=1001))
    harness = SyncHarness(broker, db)
    try:
        paid = shop.state.create_order(status="processing", lines=[LINE], date_created_gmt=AT)
        pending = shop.state.create_order(status="pending", lines=[{**LINE, "quantity": 1}], date_created_gmt=AT)
        result = run(["backfill", "--since", SINCE], env_for(db, broker, shop.url))
        assert result.exit_code == 0, result.output
        assert f"held #{paid['number']} processing: 1001 x2 -> lock, hold: paid already, not sent without --send-paid" \
            in result.output.splitlines()
        harness.wait_until(lambda: harness.locks() == {1001: 3}, what="both orders locked")
        harness.wait_until(lambda: queue_depth(broker, topology.ORDER_LINES.name) == 0, what="queue drained")
        assert harness.supplier_orders() == []
        # Counted apart from the paid orders stuck on their way (status and the alert rules watch those).
        backlog = read_backlog(db)
        assert (backlog.orders_held, backlog.orders_waiting_to_be_sent) == (1, 0)

        # A later change in the shop (a webhook, or the catch-up) still sends nothing.
        edited = shop.state.admin_edit(paid["id"], {"customer_note": "ring twice"})
        publisher = Publisher(broker)
        try:
            OrderIntake(db, publisher).submit(edited, "order.updated")
        finally:
            publisher.close()
        harness.wait_until(
            lambda: harness.query("SELECT customer_note FROM shop_orders WHERE id = :id", id=paid["id"])[0][0]
            == "ring twice", what="the edit recorded")
        harness.wait_until(lambda: queue_depth(broker, topology.ORDER_LINES.name) == 0, what="queue drained")
        assert harness.supplier_orders() == [] and harness.locks() == {1001: 3}

        # The owner decides: this one was not placed by hand.
        result = run(["backfill", "--order", str(paid["id"]), "--send-paid"], env_for(db, broker, shop.url))
        assert result.exit_code == 0, result.output
        assert f"hold lifted #{paid['number']} processing: 1001 x2 -> lock and send" in result.output.splitlines()
        harness.wait_until(lambda: len(harness.supplier_orders()) == 1, what="the paid order sent")
        [sent] = harness.supplier_orders()
        assert sent["key"] == paid["number"]
        harness.wait_until(lambda: harness.locks() == {1001: 1}, what="only the pending order still locked")
        assert count(db, "SELECT count(*) FROM send_holds") == 0
        assert read_backlog(db).orders_held == 0
        assert pending["id"] not in {o["key"] for o in harness.supplier_orders()}
    finally:
        harness.close()
    drain(broker, topology.ORDER_LINES.name)


def test_backfill_needs_since_or_order(db: str, broker: str, shop) -> None:
    neither = run(["backfill"], env_for(db, broker, shop.url))
    assert neither.exit_code == 2 and "--since" in neither.output and neither.output.count("\n") == 1
    both = run(["backfill", "--since", SINCE, "--order", "5"], env_for(db, broker, shop.url))
    assert both.exit_code == 2


def test_a_paid_order_already_in_the_records_is_not_held(db: str, broker: str, shop) -> None:
    """A recovery backfill (missed webhooks) must not stop an order the system already had:
    it reached the system through the shop, so nobody placed it at the supplier by hand."""
    with session_scope(db) as s:
        s.add(ProductMapping(wc_product_id=2101, wc_variation_id=2104, stock_id=1001))
    pending = shop.state.create_order(status="pending", lines=[LINE], date_created_gmt=AT)
    publisher = Publisher(broker)
    try:
        OrderIntake(db, publisher).submit(pending, "order.created")
    finally:
        publisher.close()
    harness = SyncHarness(broker, db)
    try:
        harness.wait_until(lambda: harness.locks() == {1001: 2}, what="the pending order locked")
        paid = shop.state.admin_edit(pending["id"], {"status": "processing"})  # its webhook is lost
        assert paid["status"] == "processing"
        result = run(["backfill", "--since", SINCE], env_for(db, broker, shop.url))
        assert result.exit_code == 0, result.output
        assert not [line for line in result.output.splitlines() if line.startswith("held ")], result.output
        harness.wait_until(lambda: len(harness.supplier_orders()) == 1, what="the paid order sent")
        assert harness.supplier_orders()[0]["key"] == pending["number"]
        assert count(db, "SELECT count(*) FROM send_holds") == 0
    finally:
        harness.close()
    drain(broker, topology.ORDER_LINES.name)


def test_dry_run_says_release_only_for_orders_the_records_hold_something_for(db: str, broker: str, shop) -> None:
    with session_scope(db) as s:
        s.add(ProductMapping(wc_product_id=2101, wc_variation_id=2104, stock_id=100001))
    holding = shop.state.create_order(status="pending", lines=[LINE], date_created_gmt=AT)
    released = shop.state.create_order(status="pending", lines=[LINE], date_created_gmt=AT)
    never_seen = shop.state.create_order(status="cancelled", lines=[LINE], date_created_gmt=AT)
    with session_scope(db) as s:
        # The records hold 2 for the first; the second was released already (its cancel was recorded).
        add_order(s, holding["id"], "pending", [(1, 100001, 2)])
        add_order(s, released["id"], "cancelled", [(1, 100001, 2)], sync_status="released")
        s.add_all([OrderVersion(order_id=holding["id"], had_supplier_line=True),
                   OrderVersion(order_id=released["id"], had_supplier_line=True)])
    for order in (holding, released):
        shop.state.admin_edit(order["id"], {"status": "cancelled"})  # no webhook reached the system

    result = run(["backfill", "--since", SINCE, "--dry-run"], env_for(db, broker, shop.url))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"#{holding['number']} cancelled: 100001 x2 -> release what it holds (100001 x2)" in lines
    assert f"#{released['number']} cancelled: 100001 x2 -> nothing to release: the records hold nothing for it" in lines
    assert f"#{never_seen['number']} cancelled: 100001 x2 -> nothing to release: the records hold nothing for it" \
        in lines
    assert lines[-1].startswith("dry run: 3 orders modified since")
    assert "1 release what it holds" in lines[-1] and "2 nothing to release" in lines[-1]
    assert queue_depth(broker, topology.ORDER_LINES.name) == 0
