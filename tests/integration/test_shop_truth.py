"""The shop is the source of truth: the cases where the system used to believe its own rows or a
webhook more than the shop, end to end. ingest as a process, supplier_sync's consumer (with the
shop confirmation) on a thread, the shop and supplier simulators, a real RabbitMQ and PostgreSQL.

The other cases live next to what they test: offset paging in test_shop_catchup_keyset.py, the
verification sweep in test_shop_verification.py, reconcile in test_admin_reconcile_three_way.py,
`dlq list` in test_admin_dlq.py.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from shared.clients.rewix import RewixClient
from shared.clients.shop import WooCommerceClient
from shared.db import normalise_url
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer
from shared.orders.intake import OrderIntake
from services.status_poller.shop_watch.catchup import ShopCatchUp
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units
from simulators.rewix import start_in_thread as start_rewix
from simulators.rewix.control import SimulatorControl
from simulators.shop import start_in_thread as start_shop
from simulators.shop.orders import make_order
from simulators.shop.php_json import wp_json_encode
from tests.conftest import TEST_RETRY_DELAYS
from tests.integration.ingest_process import Ingest
from tests.support import wait_until

API_KEY, PASSWORD = "truth-key", "truth-password"
CK, CS = "ck_truth", "cs_truth"
T_SHIRT = 70101  # a supplier model
T_SHIRT_LINE = {"product_id": 3307, "variation_id": 0, "quantity": 1, "sku": "TEE-0001", "name": "T-shirt", "price": "19.50"}
MUG_LINE = {"product_id": 9100, "variation_id": 0, "quantity": 1, "sku": "MUG-OWN", "name": "The shop's mug", "price": "9.00"}


def t_shirts(quantity: int) -> dict[str, Any]:
    return {**T_SHIRT_LINE, "quantity": quantity}


class World:
    def __init__(self, db: str, broker: str, ingest: Ingest) -> None:
        self.db, self.broker, self.ingest = db, broker, ingest
        self.rewix = start_rewix(api_key=API_KEY, password=PASSWORD)
        self.control = SimulatorControl(self.rewix.url)
        self.control.seed_catalog([{"stock_id": T_SHIRT, "product_id": 1, "code": "TEE", "barcode": "", "availability": 100}])
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.shop.webhooks.configure(enabled=False)  # deliveries are made by hand, in the order a test wants
        self.shop_client = WooCommerceClient(self.shop.url, CK, CS, timeout=5)
        self.engine = create_engine(normalise_url(db))
        with self.engine.begin() as c:
            c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (3307, 0, :s)"),
                      {"s": T_SHIRT})
        self.publisher = Publisher(broker)
        self.stop = threading.Event()
        handler = OrderLineHandler(
            sql_units(db), RewixClient(self.rewix.url, API_KEY, PASSWORD, timeout=5),
            ShopConfirmation(self.shop_client, OrderIntake(db, self.publisher)),
        )
        consumer = BatchConsumer(broker, topology.ORDER_LINES, handler, retry_delays=TEST_RETRY_DELAYS,
                                 stop=self.stop, name="sync-truth")
        self.thread = threading.Thread(target=consumer.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.publisher.close()
        self.control.close()
        self.rewix.stop()
        self.shop.stop()
        self.engine.dispose()

    def locks(self) -> dict[int, int]:
        models = self.control.state()["growing_order"]["models"]
        return {int(k): int(v) for k, v in models.items() if int(v) > 0}

    def deliver(self, body: dict[str, Any], topic: str = "order.updated") -> dict[str, Any]:
        response = self.ingest.post(wp_json_encode(body), topic)
        assert response.status_code == 200, response.text
        return response.json()

    def synced_at(self, order_id: int) -> Any:
        with self.engine.connect() as c:
            return c.execute(text("SELECT last_synced_at FROM shop_orders WHERE id = :id"), {"id": order_id}).scalar()

    def wait_synced_after(self, order_id: int, before: Any, what: str) -> None:
        wait_until(lambda: (now := self.synced_at(order_id)) is not None and (before is None or now > before),
                   timeout=20, what=what)


@pytest.fixture
def world(db: str, broker: str, ingest: Ingest) -> Iterator[World]:
    w = World(db, broker, ingest)
    yield w
    w.close()


def _state(order_id: int, lines: list[dict[str, Any]], seconds: int, status: str = "on-hold") -> dict[str, Any]:
    """One saved state of an order, `seconds` after a common start."""
    order = make_order(order_id, status=status, lines=lines)
    moment = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) - timedelta(minutes=10) + timedelta(seconds=seconds)
    order["date_modified_gmt"] = moment.isoformat()
    return order


# -- 1. reordered deliveries -----------------------------------------------------------------------


def test_the_newest_state_without_supplier_lines_wins_when_it_arrives_first(world: World) -> None:
    created = _state(7, [t_shirts(1), MUG_LINE], 0)
    edited = _state(7, [MUG_LINE], 5)  # the T-shirt removed: only the shop's own mug remains
    assert world.deliver(edited)["status"] == "ignored"  # never had a supplier line: costs nothing
    assert world.deliver(created, "order.created")["status"] == "ignored"  # older than what was seen
    assert world.locks() == {}
    with world.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM order_lines")).scalar_one() == 0


def test_shuffled_deliveries_whose_newest_state_has_no_supplier_line_delivered_first(world: World) -> None:
    states = [_state(8, [t_shirts(1)], 0), _state(8, [t_shirts(3), MUG_LINE], 10), _state(8, [t_shirts(2)], 20),
              _state(8, [MUG_LINE], 30)]
    for index in (3, 0, 2, 1):  # newest first, then the rest shuffled
        world.deliver(states[index], "order.created" if index == 0 else "order.updated")
    assert world.locks() == {}

    # And delivered the other way round, the newest last, it releases what the others locked.
    states = [_state(9, [t_shirts(2)], 0), _state(9, [t_shirts(1), MUG_LINE], 10), _state(9, [MUG_LINE], 20)]
    for index in (1, 0):
        world.deliver(states[index])
    wait_until(lambda: world.locks() == {T_SHIRT: 1}, timeout=20, what="the newer of the two older states locked")
    world.deliver(states[2])
    wait_until(lambda: world.locks() == {}, timeout=20, what="the newest state released the T-shirt")


# -- 2. trash is caught up -------------------------------------------------------------------------


def test_an_order_trashed_without_a_webhook_is_released_by_the_catch_up(world: World) -> None:
    order = world.shop.state.create_order(status="on-hold", lines=[t_shirts(2)])
    world.deliver(order, "order.created")
    wait_until(lambda: world.locks() == {T_SHIRT: 2}, timeout=20, what="locked")
    world.shop.state.trash(order["id"])  # the order.deleted webhook is lost
    catchup = ShopCatchUp(world.db, world.shop_client, OrderIntake(world.db, world.publisher), 60,
                          go_live_at=datetime.now(timezone.utc) - timedelta(hours=1))
    catchup.run_once()
    wait_until(lambda: world.locks() == {}, timeout=20, what="the trashed order released")


# -- 4. the topic is not signed: deletes and restores are confirmed ----------------------------------


def test_a_signed_body_replayed_under_order_deleted_changes_nothing(world: World) -> None:
    held = world.shop.state.create_order(status="on-hold", lines=[t_shirts(2)])
    world.deliver(held, "order.created")
    wait_until(lambda: world.locks() == {T_SHIRT: 2}, timeout=20, what="locked")
    before = world.synced_at(held["id"])

    # A captured signed body of the order, resent as a delete (and a bare {"id"} one too).
    world.deliver(held, "order.deleted")
    world.deliver({"id": held["id"]}, "order.deleted")
    world.wait_synced_after(held["id"], before, "the replayed delete confirmed with the shop")
    assert world.locks() == {T_SHIRT: 2}
    with world.engine.connect() as c:
        deleted = c.execute(text("SELECT deleted FROM shop_orders WHERE id = :id"), {"id": held["id"]}).scalar_one()
    assert deleted is False
    # A delete claimed for an order the system never heard of costs nothing and asks nothing.
    assert world.deliver({"id": 424242}, "order.deleted")["status"] == "ignored"


def test_a_real_delete_is_confirmed_by_the_shop_trashed_or_gone(world: World) -> None:
    trashed = world.shop.state.create_order(status="on-hold", lines=[t_shirts(1)])
    gone = world.shop.state.create_order(status="on-hold", lines=[t_shirts(2)])
    for order in (trashed, gone):
        world.deliver(order, "order.created")
    wait_until(lambda: world.locks() == {T_SHIRT: 3}, timeout=20, what="both locked")
    world.shop.state.trash(trashed["id"])
    world.deliver({"id": trashed["id"]}, "order.deleted")
    wait_until(lambda: world.locks() == {T_SHIRT: 2}, timeout=20, what="the trashed order released")
    world.shop.state.delete(gone["id"])  # 404 from now on
    world.deliver({"id": gone["id"]}, "order.deleted")
    wait_until(lambda: world.locks() == {}, timeout=20, what="the deleted order released")


def test_an_old_body_replayed_under_order_restored_changes_nothing(world: World) -> None:
    order = world.shop.state.create_order(status="on-hold", lines=[t_shirts(2)])
    world.deliver(order, "order.created")
    wait_until(lambda: world.locks() == {T_SHIRT: 2}, timeout=20, what="locked")
    world.shop.state.trash(order["id"])
    world.deliver({"id": order["id"]}, "order.deleted")
    wait_until(lambda: world.locks() == {}, timeout=20, what="released on the confirmed trash")
    before = world.synced_at(order["id"])

    # The order's old signed body, resent as a restore: older than the trash, refused at once.
    assert world.deliver(order, "order.restored")["status"] == "ignored"
    # Its trashed body (as fresh as it gets), resent as a restore: the shop says it is in the trash.
    world.deliver(world.shop.state.order(order["id"]), "order.restored")
    world.wait_synced_after(order["id"], before, "the replayed restore confirmed with the shop")
    assert world.locks() == {}

    # A real restore is confirmed and locks again.
    restored = world.shop.state.restore(order["id"])
    world.deliver(restored, "order.restored")
    wait_until(lambda: world.locks() == {T_SHIRT: 2}, timeout=20, what="locked again on the real restore")


# -- 5. two states with the same date_modified_gmt: the shop is asked again ---------------------------


def _record(world: World, order_id: int) -> tuple[str | None, dict[int, int]]:
    """(the status on record, stock_id -> units of its lines not removed)."""
    with world.engine.connect() as c:
        status = c.execute(text("SELECT status FROM shop_orders WHERE id = :id"), {"id": order_id}).scalar()
        lines = dict(c.execute(text("SELECT stock_id, sum(quantity) FROM order_lines WHERE order_id = :id"
                                    " AND NOT removed GROUP BY stock_id"), {"id": order_id}).all())
    return status, {int(k): int(v) for k, v in lines.items()}


def test_a_stale_read_with_the_same_date_does_not_take_a_paid_order_back(world: World) -> None:
    # The shop's order is paid; held (as a backfill holds a paid order), it stays unsent and its
    # messages are done with, so only what is delivered next can change its record.
    paid = world.shop.state.create_order(status="processing", lines=[t_shirts(2)])
    with world.engine.begin() as c:
        c.execute(text("INSERT INTO send_holds (order_id, reason) VALUES (:id, 'held by the test')"), {"id": paid["id"]})
    world.deliver(paid)
    wait_until(lambda: _record(world, paid["id"]) == ("processing", {T_SHIRT: 2}) and world.locks() == {T_SHIRT: 2}
               and world.synced_at(paid["id"]) is not None, timeout=20, what="recorded paid and locked")
    before = world.synced_at(paid["id"])

    # A read that says pending with the very same date (a shop switching HPOS sync on did this).
    world.deliver({**paid, "status": "pending"})
    world.wait_synced_after(paid["id"], before, "the shop asked and its answer recorded")
    assert _record(world, paid["id"]) == ("processing", {T_SHIRT: 2})
    assert world.locks() == {T_SHIRT: 2}


def test_two_saves_within_one_second_end_as_the_shop_has_the_order(world: World) -> None:
    # Two states of one order with one date_modified_gmt (WooCommerce keeps it to the second):
    # 2 T-shirts, then 3. Delivered in either order, the shop's answer decides.
    order = world.shop.state.create_order(status="on-hold", lines=[t_shirts(3)])
    two = {**order, "line_items": [{**order["line_items"][0], "quantity": 2}]}
    world.deliver(order)
    wait_until(lambda: world.locks() == {T_SHIRT: 3} and world.synced_at(order["id"]) is not None, timeout=20,
               what="3 locked")
    before = world.synced_at(order["id"])
    world.deliver(two)  # read last, but not newer: it does not win
    world.wait_synced_after(order["id"], before, "the shop asked")
    assert world.locks() == {T_SHIRT: 3}

    other = world.shop.state.create_order(status="on-hold", lines=[t_shirts(3)])
    world.deliver({**other, "line_items": [{**other["line_items"][0], "quantity": 2}]})
    wait_until(lambda: world.locks() == {T_SHIRT: 5}, timeout=20, what="the older read locked first")
    world.deliver(other)
    wait_until(lambda: world.locks() == {T_SHIRT: 6}, timeout=20, what="the shop's 3 after asking")
