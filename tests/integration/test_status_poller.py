"""status_poller against the supplier and shop simulators, a real RabbitMQ and PostgreSQL."""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from shared.db import normalise_url
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer, Delivery
from shared.messaging.messages import OrderLineMessage, StatusChangeMessage, parse_order_line, parse_status_change
from shared.orders.intake import OrderIntake
from shared.clients.rewix import (
    BOOKED, CANCELLED, CONFIRMED, DISPATCHED, READY, WORKING_ON, DropshippingOrder, Recipient, RewixClient,
)
from shared.clients.shop import WooCommerceClient
from shared.observability.health import HEALTH
from shared.observability.metrics import SHOP_ACCOUNT, SHOP_ACCOUNT_REFUSED
from services.status_poller.applier import StatusChangeApplier
from services.status_poller.budget import RequestBudget
from services.status_poller.poller import StatusPoller
from services.status_poller.shop_watch.catchup import CatchUpPass, ShopCatchUp
from simulators.rewix import start_in_thread as start_rewix
from simulators.rewix.control import SimulatorControl
from simulators.shop import ShopControl, start_in_thread as start_shop
from tests.conftest import TEST_RETRY_DELAYS, drain, queue_depth
from tests.support import is_sync_meta_write, record_sent_order, wait_until

ROOT = Path(__file__).resolve().parents[2]
API_KEY, PASSWORD = "poll-key", "poll-password"
CK, CS = "ck_poller", "cs_poller"
STOCK_IDS = list(range(100000, 100030))
SUPPLIER_LINE = {"product_id": 2101, "variation_id": 2104, "quantity": 1, "sku": "SNK-42", "name": "Sneaker - 42", "price": "89.90"}
RECIPIENT = Recipient(name="Zoë Müller", address_1="Via Roma 1", postcode="20121", city="Milano", countrycode="IT")


class World:
    """The two simulators, the database, and orders open at the supplier."""

    def __init__(self, database_url: str, amqp_url: str) -> None:
        self.database_url, self.amqp_url = database_url, amqp_url
        self.rewix = start_rewix(api_key=API_KEY, password=PASSWORD)
        self.control = SimulatorControl(self.rewix.url)
        self.control.seed_catalog(products=10, availability=10_000)
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.engine = create_engine(normalise_url(database_url))
        self.rewix_client = RewixClient(self.rewix.url, API_KEY, PASSWORD, timeout=5)
        self.shop_client = WooCommerceClient(self.shop.url, CK, CS, timeout=5)
        self._stock = itertools.cycle(STOCK_IDS)

    def close(self) -> None:
        self.rewix.stop()
        self.shop.stop()
        self.engine.dispose()

    def open_order(self, status: int = BOOKED) -> dict[str, Any]:
        """A paid shop order, sent to the supplier and recorded as supplier_sync records it."""
        order = self.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE])
        key = order["number"]
        self.rewix_client.send_dropshipping_order(
            DropshippingOrder(key=key, date=datetime.now(timezone.utc), recipient=RECIPIENT, items={next(self._stock): 1})
        )
        supplier = self.rewix_client.find_order_by_key(key)
        assert supplier is not None
        with self.engine.begin() as c:
            row_id = record_sent_order(c, order["id"], key, supplier.order_id, status)
        return {"shop_order_id": order["id"], "key": key, "supplier_order_id": supplier.order_id, "row_id": row_id}

    def map_supplier_line(self) -> None:
        """SUPPLIER_LINE's product mapped to a supplier model, so the orders holding it have supplier lines."""
        with self.engine.begin() as c:
            c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (2101, 2104, 100001)"))

    def catchup_pass(self, go_live_at: datetime | None = None) -> tuple[CatchUpPass, list[OrderLineMessage]]:
        """One catch-up pass over the world's shop, and the order-line messages it published."""
        publisher = Publisher(self.amqp_url)
        try:
            result = ShopCatchUp(self.database_url, self.shop_client, OrderIntake(self.database_url, publisher), 60,
                                 go_live_at=go_live_at).run_once()
        finally:
            publisher.close()
        return result, [parse_order_line(body) for _p, body in drain(self.amqp_url, topology.ORDER_LINES.name)]

    def supplier_row(self, row_id: int) -> dict[str, Any]:
        with self.engine.connect() as c:
            return dict(c.execute(text("SELECT * FROM supplier_orders WHERE id = :id"), {"id": row_id}).mappings().one())

    def history(self, row_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(
                text("SELECT * FROM supplier_status_history WHERE supplier_order_id = :id ORDER BY id"), {"id": row_id}
            ).mappings()]

    def notes(self, shop_order_id: int) -> list[str]:
        return [n["note"] for n in self.shop.state.notes(shop_order_id)]

    def writes(self, shop_order_id: int) -> list[dict[str, Any]]:
        """What the status changes wrote to the order (the sync status meta, written by its own loop, left out)."""
        return [w for w in self.shop.state.writes(shop_order_id) if not is_sync_meta_write(w)]

    def sync_statuses(self, shop_order_id: int) -> list[str]:
        """The rewix_sync_status values the meta loop wrote to the order, oldest first."""
        return [m["value"] for w in self.shop.state.writes(shop_order_id) if is_sync_meta_write(w)
                for m in w["body"]["meta_data"] if m["key"] == "rewix_sync_status"]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REWIX_", "WC_", "POLL_", "SHOP_"))}
        env.update(
            AMQP_URL=self.amqp_url, DATABASE_URL=self.database_url,
            REWIX_API_URL=self.rewix.url, REWIX_API_KEY=API_KEY, REWIX_API_PASSWORD=PASSWORD,
            WC_URL=self.shop.url, WC_CONSUMER_KEY=CK, WC_CONSUMER_SECRET=CS,
            POLL_INTERVAL_SECONDS="0.5", POLL_REQUESTS_PER_SECOND="50", SHOP_CATCHUP_INTERVAL_SECONDS="0",
            SYNC_RETRY_DELAYS=",".join(str(d) for d in TEST_RETRY_DELAYS), LOG_FORMAT="json", LOG_LEVEL="INFO",
        )
        env.update(extra)
        return env


@pytest.fixture
def world(db: str, broker: str) -> Iterator[World]:
    w = World(db, broker)
    yield w
    w.close()


def start_service(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    return subprocess.Popen([sys.executable, "-m", "services.status_poller"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def stop_service(process: subprocess.Popen, log_path: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError("status_poller did not stop within 10 s of SIGTERM:\n" + log_path.read_text()[-3000:])
        assert code == 0, log_path.read_text()[-3000:]
        assert time.monotonic() - started < 10


class PollerThread:
    """A StatusPoller in a thread of its own, with its own publisher, as a replica would run."""

    def __init__(self, world: World, *, interval: float, per_second: float) -> None:
        self.publisher = Publisher(world.amqp_url)
        self.client = RewixClient(world.rewix.url, API_KEY, PASSWORD, timeout=5)
        self.poller = StatusPoller(world.database_url, self.client, self.publisher, interval=interval,
                                   budget=RequestBudget(per_second))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poller.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> "PollerThread":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        self.publisher.close()
        self.client.close()


def status_messages(amqp_url: str) -> list[StatusChangeMessage]:
    return [parse_status_change(body) for _props, body in drain(amqp_url, topology.STATUS_CHANGES.name)]


def delivery_of(message: StatusChangeMessage, tag: int = 1) -> Delivery:
    return Delivery(body=message.to_bytes(), message_id=message.message_id, headers={}, delivery_tag=tag, redelivered=False)


def change_message(order: dict[str, Any], new_status: int, old_status: int | None = None, **tracking: str) -> StatusChangeMessage:
    return StatusChangeMessage(
        supplier_order_id=order["supplier_order_id"], shop_order_id=order["shop_order_id"], order_key=order["key"],
        old_status=old_status, new_status=new_status, observed_at=datetime.now(timezone.utc), **tracking,
    )


# --- the whole lifecycle, through the service process ----------------------------------------------


def test_booked_to_dispatched_reaches_the_shop_once_each_and_completes_it(world: World, tmp_path: Path) -> None:
    order = world.open_order()
    other = world.open_order()  # stays Booked throughout
    sid = order["supplier_order_id"]
    log_path = tmp_path / "status_poller.log"
    process = start_service(world.env(SHOP_CUSTOMER_TRACKING_NOTE="false"), log_path)
    try:
        def has(note: str) -> Callable[[], bool]:
            return lambda: note in world.notes(order["shop_order_id"])

        wait_until(has(f"Supplier order {sid} is now Booked."), what="the Booked note")
        for status, name in ((CONFIRMED, "Confirmed"), (WORKING_ON, "Working on"), (READY, "Ready")):
            world.control.set_status(sid, status)
            wait_until(has(f"Supplier order {sid} is now {name}."), what=f"the {name} note")
        world.control.set_status(sid, DISPATCHED, tracking_code="1Z999AA10123456784",
                                 tracking_url="https://track.example/1Z999AA10123456784", carrier_name="UPS")
        wait_until(lambda: world.shop.state.order(order["shop_order_id"])["status"] == "completed", what="completion")
        wait_until(lambda: all(h["shop_state"] == "done" for h in world.history(order["row_id"])), what="history done")
        # The order meta follows (its own loop, every 2 s), each status once.
        wait_until(lambda: world.sync_statuses(order["shop_order_id"])[-1:] == ["sent: Dispatched"],
                   what="the sync status in the order meta")
        # Several more poll intervals: nothing is written again.
        time.sleep(1.5)
    finally:
        stop_service(process, log_path)

    writes = world.writes(order["shop_order_id"])
    notes = [w["body"]["note"] for w in writes if w["kind"] == "note"]
    updates = [w["body"] for w in writes if w["kind"] == "update"]
    assert [n.split(" is now ")[1].split(".")[0] for n in notes] == ["Booked", "Confirmed", "Working on", "Ready", "Dispatched"]
    assert "1Z999AA10123456784" in notes[-1] and "UPS" in notes[-1] and "https://track.example/1Z999AA10123456784" in notes[-1]
    assert len(updates) == 1 and updates[0]["status"] == "completed"
    shop_order = world.shop.state.order(order["shop_order_id"])
    meta = {m["key"]: m["value"] for m in shop_order["meta_data"]}
    assert meta["rewix_tracking_code"] == "1Z999AA10123456784"
    assert meta["rewix_tracking_url"] == "https://track.example/1Z999AA10123456784"
    assert meta["rewix_carrier"] == "UPS"

    row = world.supplier_row(order["row_id"])
    assert row["status"] == DISPATCHED and row["final"] and row["tracking_code"] == "1Z999AA10123456784"
    assert [(h["old_status"], h["new_status"]) for h in world.history(order["row_id"])] == [
        (None, BOOKED), (BOOKED, CONFIRMED), (CONFIRMED, WORKING_ON), (WORKING_ON, READY), (READY, DISPATCHED)
    ]
    statuses = world.sync_statuses(order["shop_order_id"])
    assert statuses[0] == "sent: Booked" and len(statuses) == len(set(statuses)) and set(statuses) <= {
        f"sent: {name}" for name in ("Booked", "Confirmed", "Working on", "Ready", "Dispatched")}
    # The order that stayed Booked got its one note and nothing more.
    assert [w["kind"] for w in world.writes(other["shop_order_id"])] == ["note"]
    assert not world.supplier_row(other["row_id"])["final"]


def test_a_final_order_is_no_longer_polled(world: World) -> None:
    order = world.open_order()
    world.control.set_status(order["supplier_order_id"], CANCELLED)
    with PollerThread(world, interval=0.3, per_second=50):
        wait_until(lambda: world.supplier_row(order["row_id"])["final"], what="final")
        calls = world.control.state()["calls"].get("serverkey", 0)
        time.sleep(1.0)
        assert world.control.state()["calls"].get("serverkey", 0) == calls
    row = world.supplier_row(order["row_id"])
    assert row["status"] == CANCELLED and row["last_error"] == "the supplier reports Cancelled (status 2000)"
    [message] = status_messages(world.amqp_url)
    assert (message.old_status, message.new_status) == (BOOKED, CANCELLED)


# --- redelivery and crashes: the shop is written once ---------------------------------------------


def test_a_status_change_published_twice_adds_nothing(world: World, tmp_path: Path) -> None:
    order = world.open_order(status=READY)
    with world.engine.begin() as c:  # the poller is not running here: only the applier acts
        c.execute(text("UPDATE supplier_orders SET final = true WHERE id = :id"), {"id": order["row_id"]})
    message = change_message(order, DISPATCHED, READY, tracking_code="TRK1", carrier_name="DHL")
    publisher = Publisher(world.amqp_url)
    publisher.publish(message.to_bytes(), routing_key=topology.STATUS_CHANGE, message_id=message.message_id)
    publisher.publish(message.to_bytes(), routing_key=topology.STATUS_CHANGE, message_id=message.message_id)
    publisher.close()
    log_path = tmp_path / "status_poller.log"
    process = start_service(world.env(SHOP_CUSTOMER_TRACKING_NOTE="false"), log_path)
    try:
        wait_until(lambda: queue_depth(world.amqp_url, topology.STATUS_CHANGES.name) == 0, what="queue drained")
        wait_until(lambda: [h["shop_state"] for h in world.history(order["row_id"])] == ["done"], what="applied")
        time.sleep(0.5)
    finally:
        stop_service(process, log_path)
    kinds = [w["kind"] for w in world.writes(order["shop_order_id"])]
    assert kinds == ["note", "update"]
    assert world.shop.state.order(order["shop_order_id"])["status"] == "completed"


def test_a_crash_after_the_note_was_written_does_not_write_it_again(world: World) -> None:
    """The shop saved the note and then failed (a PHP fatal after the save): the retry finds the note."""
    order = world.open_order()
    applier = StatusChangeApplier(world.database_url, world.shop_client, customer_tracking_note=False)
    message = change_message(order, DISPATCHED, READY, tracking_code="TRK2", tracking_url="https://t.example/?n=TRK2&x=1")
    world.shop.state.set_faults({"fail_notes": {"status": 500, "count": 1, "after_write": True}})
    first = applier([delivery_of(message)])
    assert type(first[0]).__name__ == "RetryLater" and first[0].status == 500
    assert [h["shop_state"] for h in world.history(order["row_id"])] == ["noting"]
    second = applier([delivery_of(message, tag=2)])
    assert type(second[0]).__name__ == "Ack"
    third = applier([delivery_of(message, tag=3)])
    assert type(third[0]).__name__ == "Ack"
    assert [w["kind"] for w in world.writes(order["shop_order_id"])] == ["note", "update"]
    assert world.shop.state.order(order["shop_order_id"])["status"] == "completed"


def test_a_failed_completion_is_retried_without_a_second_note(world: World) -> None:
    order = world.open_order()
    applier = StatusChangeApplier(world.database_url, world.shop_client, customer_tracking_note=False)
    message = change_message(order, DISPATCHED, READY, tracking_code="TRK3")
    world.shop.state.set_faults({"fail_updates": {"status": 503, "count": 1, "retry_after": 2}})
    [first] = applier([delivery_of(message)])
    assert type(first).__name__ == "RetryLater" and first.retry_after == 2
    [second] = applier([delivery_of(message)])
    assert type(second).__name__ == "Ack"
    assert [w["kind"] for w in world.writes(order["shop_order_id"])] == ["note", "update"]


def test_an_order_the_shop_does_not_know_is_dead_lettered_and_shown_to_operators(world: World) -> None:
    order = world.open_order()
    applier = StatusChangeApplier(world.database_url, world.shop_client)
    message = change_message(order, CONFIRMED, BOOKED).model_copy(update={"shop_order_id": 999999})
    with world.engine.begin() as c:
        c.execute(text("INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids)"
                       " VALUES (999999, 'gone', 'processing', false, '', '[]')"))
        c.execute(text("UPDATE supplier_orders SET shop_order_id = 999999 WHERE id = :id"), {"id": order["row_id"]})
    [outcome] = applier([delivery_of(message)])
    assert type(outcome).__name__ == "DeadLetter" and outcome.status == 404
    assert "shop update for status 2 failed" in world.supplier_row(order["row_id"])["last_error"]


def test_an_unparseable_status_change_is_dead_lettered(world: World) -> None:
    applier = StatusChangeApplier(world.database_url, world.shop_client)
    bad = Delivery(body=b'{"kind": "status_change"}', message_id="x", headers={}, delivery_tag=1, redelivered=False)
    [outcome] = applier([bad])
    assert type(outcome).__name__ == "DeadLetter"


# --- the shop refusing the REST keys ----------------------------------------------------------------


def test_a_revoked_shop_key_pauses_the_applier_dead_letters_nothing_and_every_change_arrives_once(
        world: World) -> None:
    orders = [world.open_order() for _ in range(4)]
    steps = ((BOOKED, CONFIRMED, "Confirmed"), (CONFIRMED, WORKING_ON, "Working on"), (WORKING_ON, READY, "Ready"))
    changes = [change_message(order, new, old) for order in orders for old, new, _ in steps]
    applier = StatusChangeApplier(world.database_url, world.shop_client, customer_tracking_note=False)
    stop = threading.Event()
    consumer = BatchConsumer(world.amqp_url, topology.STATUS_CHANGES, applier, retry_delays=TEST_RETRY_DELAYS,
                             stop=stop, max_batch=5, name="status_applier")
    thread = threading.Thread(target=consumer.run, daemon=True)
    shop = ShopControl(world.shop.url)
    dead = f"{topology.STATUS_CHANGES.name}.dead"

    def applied() -> int:
        with world.engine.connect() as c:
            return c.execute(text("SELECT count(*) FROM supplier_status_history WHERE shop_state = 'done'")).scalar_one()

    def waiting_to_retry() -> int:
        return sum(queue_depth(world.amqp_url, topology.STATUS_CHANGES.wait(d)) for d in TEST_RETRY_DELAYS)

    def refused() -> bool:
        return any(p.startswith(f"{SHOP_ACCOUNT}: the shop refuses the REST keys (HTTP 401")
                   for p in HEALTH.readiness().problems)

    world.shop.state.set_faults({"latency_ms": 100})  # each write takes a while: the key goes mid-stream
    publisher = Publisher(world.amqp_url)
    try:
        for message in changes:
            publisher.publish(message.to_bytes(), routing_key=topology.STATUS_CHANGE, message_id=message.message_id)
        thread.start()
        wait_until(lambda: applied() >= 2, what="the first status changes in the shop")
        shop.revoke_keys()
        wait_until(refused, what="readiness saying the shop refuses the keys")
        assert SHOP_ACCOUNT_REFUSED._value.get() == 1
        # Paused: the rest wait in the queue, untaken; nothing is retried, dead-lettered or written.
        wait_until(lambda: queue_depth(world.amqp_url, topology.STATUS_CHANGES.name) + applied() == len(changes),
                   what="every status change not applied back in the queue")
        waiting, done, notes = (queue_depth(world.amqp_url, topology.STATUS_CHANGES.name), applied(),
                                sum(len(world.notes(o["shop_order_id"])) for o in orders))
        assert waiting > 0
        held_until = time.monotonic() + 4  # a few probes of the pause
        while time.monotonic() < held_until:
            assert queue_depth(world.amqp_url, dead) == 0 and waiting_to_retry() == 0
            assert queue_depth(world.amqp_url, topology.STATUS_CHANGES.name) == waiting and applied() == done
            assert sum(len(world.notes(o["shop_order_id"])) for o in orders) == notes
            time.sleep(0.5)
        assert refused() and SHOP_ACCOUNT_REFUSED._value.get() == 1

        shop.revoke_keys(False)  # the shop owner restores the key: everything resumes by itself
        wait_until(lambda: applied() == len(changes), timeout=60, what="every status change applied")
        wait_until(lambda: queue_depth(world.amqp_url, topology.STATUS_CHANGES.name) == 0, what="the queue drained")
    finally:
        stop.set()
        thread.join(timeout=10)
        publisher.close()
        world.shop.state.clear_faults()
    assert queue_depth(world.amqp_url, dead) == 0 and waiting_to_retry() == 0
    assert not refused() and SHOP_ACCOUNT_REFUSED._value.get() == 0
    for order in orders:  # every status change reached the shop once
        sid = order["supplier_order_id"]
        assert sorted(world.notes(order["shop_order_id"])) == sorted(
            f"Supplier order {sid} is now {name}." for _, _, name in steps)


# --- replicas and the request budget ------------------------------------------------------------


def _poll_times(world: World) -> dict[str, list[float]]:
    times: dict[str, list[float]] = defaultdict(list)
    for request in list(world.rewix.state.recent):
        if request["path"].startswith("/restful/ghost/clientorders/serverkey/") and request["status"] == 200:
            times[request["summary"]["order_id"]].append(request["at"])
    return times


def test_two_pollers_never_poll_the_same_order_within_an_interval(world: World) -> None:
    orders = [world.open_order() for _ in range(12)]
    interval = 1.5
    with PollerThread(world, interval=interval, per_second=100) as one, PollerThread(world, interval=interval, per_second=100) as two:
        time.sleep(4 * interval + 0.5)
    times = _poll_times(world)
    assert set(times) == {str(o["supplier_order_id"]) for o in orders}
    for order_id, stamps in times.items():
        stamps.sort()
        assert len(stamps) >= 3, (order_id, stamps)
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        assert min(gaps) >= interval - 0.05, (order_id, gaps)
    # Both replicas did part of the work.
    assert one.poller.stats.polled > 0 and two.poller.stats.polled > 0
    # The first polls were spread over the interval, not fired at once.
    firsts = sorted(stamps[0] for stamps in times.values())
    assert firsts[-1] - firsts[0] >= interval / 3


def test_429s_slow_polling_down_without_losing_a_change(world: World) -> None:
    orders = [world.open_order() for _ in range(10)]
    world.control.faults(rate_limit={"per_second": 4, "retry_after": 1})
    target = orders[3]
    with PollerThread(world, interval=0.5, per_second=40) as replica:
        wait_until(lambda: all(world.supplier_row(o["row_id"])["last_polled_at"] for o in orders), timeout=30,
                   what="every order polled")
        world.control.set_status(target["supplier_order_id"], CONFIRMED)
        wait_until(lambda: world.supplier_row(target["row_id"])["status"] == CONFIRMED, timeout=30, what="Confirmed recorded")
        budget = replica.poller.budget
        assert budget.throttled_count > 0
        assert budget.rate < budget.limit
    rejected = world.control.state()["rejected_429"]
    assert rejected > 0
    messages = status_messages(world.amqp_url)
    confirmed = [m for m in messages if m.order_key == target["key"] and m.new_status == CONFIRMED]
    assert len(confirmed) >= 1
    # Every order was still announced (Booked) despite the 429s.
    assert {m.order_key for m in messages if m.new_status == BOOKED} == {o["key"] for o in orders}


def test_a_broker_outage_mid_run_delays_a_change_but_loses_nothing(world: World) -> None:
    order = world.open_order()
    with PollerThread(world, interval=0.3, per_second=50) as replica:
        wait_until(lambda: world.supplier_row(order["row_id"])["last_polled_at"], what="first poll")
        real = replica.poller.publisher
        replica.poller.publisher = Publisher("amqp://guest:guest@127.0.0.1:1/%2F", connect_timeout=0.5)
        world.control.set_status(order["supplier_order_id"], CONFIRMED)
        row = wait_until(lambda: (r := world.supplier_row(order["row_id"]))["last_error"] and r, what="the error")
        assert "status 2 not announced yet" in row["last_error"] and row["status"] == BOOKED
        assert replica.thread.is_alive()
        replica.poller.publisher = real  # the broker is back
        wait_until(lambda: world.supplier_row(order["row_id"])["status"] == CONFIRMED, what="Confirmed recorded")
        assert world.supplier_row(order["row_id"])["last_error"] is None
    assert CONFIRMED in [m.new_status for m in status_messages(world.amqp_url)]


# --- shop catch-up ---------------------------------------------------------------------------------


def test_catch_up_finds_orders_whose_webhooks_never_arrived_and_its_watermark_survives_a_restart(world: World) -> None:
    world.map_supplier_line()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # No webhook URL is configured: these orders never reach ingest.
    old = world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE], date_created_gmt=now - timedelta(hours=2))
    recent = world.shop.state.create_order(status="on-hold", lines=[SUPPLIER_LINE], date_created_gmt=now - timedelta(minutes=10))
    too_old = world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE], date_created_gmt=now - timedelta(days=2))
    own_only = world.shop.state.create_order(status="processing", lines=[{"product_id": 3307, "quantity": 1}],
                                             date_created_gmt=now - timedelta(minutes=5))

    def run_pass() -> tuple[CatchUpPass, list[OrderLineMessage]]:
        # Gone live a day ago: orders older than that were the owner's to handle.
        return world.catchup_pass(go_live_at=now - timedelta(days=1))

    first, lines = run_pass()
    assert {m.order_id for m in lines} == {old["id"], recent["id"]}
    assert all(m.source == "catchup" and m.topic == "order.updated" for m in lines)
    assert first.seen == 3  # the order older than a day is not looked at; the shop's own order costs nothing
    assert first.watermark == datetime.fromisoformat(own_only["date_modified_gmt"]).replace(tzinfo=timezone.utc)

    # A restart: a new instance starts from the stored watermark (less a minute), not from a day ago.
    new = world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE])
    second, lines = run_pass()
    assert second.since == first.watermark - timedelta(seconds=60)
    assert {m.order_id for m in lines} == {new["id"]}
    assert second.watermark >= datetime.fromisoformat(new["date_modified_gmt"]).replace(tzinfo=timezone.utc)
    with world.engine.connect() as c:
        stored = c.execute(text("SELECT value FROM sync_state WHERE name = 'shop_catchup_watermark'")).scalar_one()
    assert datetime.fromisoformat(stored) == second.watermark
    assert too_old["id"] not in {m.order_id for m in lines}


def test_catch_up_runs_inside_the_service(world: World, tmp_path: Path) -> None:
    world.map_supplier_line()
    log_path = tmp_path / "status_poller.log"
    process = start_service(world.env(SHOP_CATCHUP_INTERVAL_SECONDS="1"), log_path)
    try:
        # Modified after the first start (the go-live moment): the catch-up takes it.
        wait_until(lambda: "shop catch-up pass done" in log_path.read_text(), what="a first catch-up pass")
        order = world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE])
        wait_until(lambda: queue_depth(world.amqp_url, topology.ORDER_LINES.name) > 0, what="order lines")
    finally:
        stop_service(process, log_path)
    lines = [parse_order_line(body) for _p, body in drain(world.amqp_url, topology.ORDER_LINES.name)]
    assert {m.order_id for m in lines} == {order["id"]}


def test_a_first_start_sends_nothing_modified_before_it(world: World, tmp_path: Path) -> None:
    """Going live: a paid order modified two hours ago was the owner's; only what changes from now on is ours."""
    world.map_supplier_line()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    before = world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE],
                                           date_created_gmt=now - timedelta(hours=2))
    log_path = tmp_path / "status_poller.log"
    process = start_service(world.env(SHOP_CATCHUP_INTERVAL_SECONDS="1"), log_path)
    try:
        wait_until(lambda: log_path.read_text().count("shop catch-up pass done") >= 2, what="two catch-up passes")
        assert queue_depth(world.amqp_url, topology.ORDER_LINES.name) == 0
        after = world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE])
        wait_until(lambda: queue_depth(world.amqp_url, topology.ORDER_LINES.name) > 0, what="the new order's lines")
    finally:
        stop_service(process, log_path)
    lines = [parse_order_line(body) for _p, body in drain(world.amqp_url, topology.ORDER_LINES.name)]
    assert {m.order_id for m in lines} == {after["id"]}
    assert before["id"] not in {m.order_id for m in lines}
    with world.engine.connect() as c:
        go_live = c.execute(text("SELECT value FROM sync_state WHERE name = 'shop_go_live_at'")).scalar_one()
    assert now - timedelta(minutes=1) <= datetime.fromisoformat(go_live) <= datetime.now(timezone.utc)

    # A restart keeps the first go-live moment: the old order stays the owner's.
    with world.engine.begin() as c:
        c.execute(text("DELETE FROM sync_state WHERE name = 'shop_catchup_watermark'"))
    _result, again = world.catchup_pass()
    assert {m.order_id for m in again} == {after["id"]}


def test_shop_go_live_at_sets_how_far_back_the_first_start_looks(world: World) -> None:
    world.map_supplier_line()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    two_hours = world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE],
                                              date_created_gmt=now - timedelta(hours=2))
    world.shop.state.create_order(status="processing", lines=[SUPPLIER_LINE], date_created_gmt=now - timedelta(hours=4))
    result, lines = world.catchup_pass(go_live_at=now - timedelta(hours=3))
    assert result.since == now - timedelta(hours=3, seconds=1)  # modified_after is exclusive
    assert {m.order_id for m in lines} == {two_hours["id"]}


# --- start, stop, configuration ------------------------------------------------------------------


def test_a_missing_setting_stops_the_service_with_one_line_naming_it(world: World) -> None:
    env = world.env()
    del env["WC_URL"]
    result = subprocess.run([sys.executable, "-m", "services.status_poller"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["configuration error: WC_URL is required but not set"]


def test_it_waits_for_the_broker_instead_of_crash_looping_and_stops_on_sigterm(world: World, tmp_path: Path) -> None:
    log_path = tmp_path / "status_poller.log"
    process = start_service(world.env(AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F"), log_path)
    try:
        wait_until(lambda: b"waiting for dependency" in log_path.read_bytes(), timeout=20, what="the waiting log line")
        assert process.poll() is None
    finally:
        stop_service(process, log_path)
