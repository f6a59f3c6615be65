"""Supplier failures that are not about one order, end to end: real RabbitMQ and PostgreSQL,
supplier_sync's consumer in a thread, the supplier simulator over HTTP.

A refused account (401), a maintenance page (an HTML 200), a 5xx for one model,
a connection cut after the order was created, a lookup answering 500, and
order numbers that are not safe path segments.
"""
from __future__ import annotations

import threading
import time

import pytest

from shared.clients.rewix import RewixClient
from shared.observability.health import HEALTH
from shared.observability.metrics import SUPPLIER_ACCOUNT, SUPPLIER_ACCOUNT_REFUSED
from tests.conftest import TEST_RETRY_DELAYS, drain, queue_depth
from tests.integration.sync_harness import API_KEY, PASSWORD, SyncHarness, deleted_message, order_messages

QUEUE = "rewix.order_lines"
DEAD = f"{QUEUE}.dead"


@pytest.fixture
def sync(broker, db):
    harness = SyncHarness(broker, db)
    yield harness
    harness.close()


def renumbered(messages, number: str):
    """The same order state as a shop whose plugin renumbered the order shows it."""
    return [m.model_copy(update={"order_number": number}) for m in messages]


def wait_queue_depth(sync) -> int:
    return sum(queue_depth(sync.amqp_url, f"{QUEUE}.wait.{d}s") for d in TEST_RETRY_DELAYS)


def settled(sync) -> bool:
    return queue_depth(sync.amqp_url, QUEUE) == 0 and wait_queue_depth(sync) == 0


def test_wrong_credentials_during_a_burst_fail_nothing_and_converge(sync):
    expected: dict[int, int] = {}
    burst = []
    for order_id in range(300, 330):
        stock_id = 1001 + order_id % 10
        burst += order_messages(order_id, "processing" if order_id % 3 == 0 else "pending", {order_id * 10: (stock_id, 1)})
        if order_id % 3:
            expected[stock_id] = expected.get(stock_id, 0) + 1
    paid = len([o for o in range(300, 330) if o % 3 == 0])

    sync.control.refuse_account(401)
    sync.publish(burst)
    sync.wait_until(lambda: any(p.startswith(f"{SUPPLIER_ACCOUNT}:") for p in HEALTH.readiness().problems),
                    what="readiness says the account is refused")
    assert SUPPLIER_ACCOUNT_REFUSED._value.get() == 1
    refused_until = time.monotonic() + 10
    while time.monotonic() < refused_until:
        # Nothing is retried, dead-lettered or failed while the account is refused: the messages wait.
        assert wait_queue_depth(sync) == 0 and queue_depth(sync.amqp_url, DEAD) == 0
        assert not {"failed", "dead_lettered"} & set(sync.line_statuses().values())
        time.sleep(0.5)
    assert queue_depth(sync.amqp_url, QUEUE) > 0  # still waiting in the queue
    sync.control.accept_account()

    sync.wait_until(lambda: sync.locks() == expected and len(sync.supplier_orders()) == paid, timeout=60, what="convergence")
    sync.wait_until(lambda: settled(sync), what="every message handled")
    assert queue_depth(sync.amqp_url, DEAD) == 0
    assert not any(p.startswith(f"{SUPPLIER_ACCOUNT}:") for p in HEALTH.readiness().problems)
    assert SUPPLIER_ACCOUNT_REFUSED._value.get() == 0
    assert set(sync.line_statuses().values()) <= {"locked", "sent"}
    assert sync.control.state()["duplicates"] == 0


def test_a_maintenance_page_window_is_ridden_out(sync):
    sync.control.faults(maintenance={"seconds": 3})
    sync.publish(order_messages(401, "pending", {4011: (1001, 2)}) + order_messages(402, "processing", {4021: (1002, 1)}))
    sync.wait_until(lambda: sync.locks() == {1001: 2} and len(sync.supplier_orders()) == 1, timeout=40, what="recovery")
    sync.wait_until(lambda: settled(sync), what="every message handled")
    assert queue_depth(sync.amqp_url, DEAD) == 0


@pytest.fixture
def slow_first_retry_sync(broker, db):
    """A first retry 5 s away, so that "before the first retry" means something on a busy machine
    (the harness's workers share this process's CPU with the test); the later delays name the same
    wait queues as TEST_RETRY_DELAYS."""
    harness = SyncHarness(broker, db, retry_delays=[5, 1, 2, 3, 4])
    yield harness
    harness.close()


def test_a_5xx_for_one_model_holds_up_only_that_model(slow_first_retry_sync):
    sync = slow_first_retry_sync
    first_retry = sync.retry_delays[0]
    sync.control.faults(failing_stock_ids={"stock_ids": [1005], "status": 500})
    sync.publish(
        order_messages(501, "pending", {5011: (1001, 2), 5012: (1005, 1)})
        + order_messages(502, "pending", {5021: (1002, 1)})
        + order_messages(503, "pending", {5031: (1003, 3)})
    )
    # The others go ahead at once, well before the first retry of the failing model.
    started = time.monotonic()

    def others_locked() -> bool:
        # The supplier answers before the convergence commits: both are waited for.
        statuses = sync.line_statuses()
        return (sync.locks() == {1001: 2, 1002: 1, 1003: 3} and statuses.get((501, 5011)) == "locked"
                and statuses.get((502, 5021)) == "locked")

    sync.wait_until(others_locked, timeout=first_retry * 0.9, what="the other models locked at once")
    assert time.monotonic() - started < first_retry
    assert sync.line_statuses()[(501, 5012)] != "locked"
    sync.wait_until(lambda: wait_queue_depth(sync) + queue_depth(sync.amqp_url, QUEUE) >= 1 or sync.locks().get(1005) is None,
                    what="the failing model's message waits")
    sync.control.faults(failing_stock_ids=None)
    sync.wait_until(lambda: sync.locks() == {1001: 2, 1002: 1, 1003: 3, 1005: 1}, timeout=30, what="the failing model, retried")
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_a_renumbered_order_retried_after_a_cut_connection_is_one_supplier_order(sync):
    paid = order_messages(601, "processing", {6011: (1004, 1)}, version=0)
    # Created, then the connection is cut; the lookup that would find it fails too: the send is retried.
    sync.control.faults(drop_after_create=1, clientkey_errors=["WC-601"])
    sync.publish(paid)
    sync.wait_until(lambda: sync.control.state()["calls"].get("dropshipping", 0) == 1, what="the first POST")
    sync.wait_until(lambda: wait_queue_depth(sync) == 1, what="the message waits for a retry")
    assert sync.query("SELECT key, first_sent_at IS NOT NULL FROM supplier_keys WHERE shop_order_id = 601") == [("WC-601", True)]
    # The shop renumbers the order meanwhile (a sequential order numbers plugin).
    sync.publish(renumbered(order_messages(601, "processing", {6011: (1004, 1)}, version=1), "2026-0001"))
    sync.control.faults(clientkey_errors=None)
    sync.wait_until(lambda: sync.query("SELECT key FROM supplier_orders WHERE shop_order_id = 601") == [("WC-601",)],
                    timeout=30, what="the supplier order recorded")
    sync.wait_until(lambda: settled(sync), what="every message handled")
    orders = sync.supplier_orders()
    assert [o["key"] for o in orders] == ["WC-601"]
    assert sync.control.state()["calls"]["dropshipping"] == 1 and sync.control.state()["duplicates"] == 0


def test_a_500_on_the_lookup_after_a_cut_connection_never_sends_twice(sync):
    sync.control.faults(drop_after_create=1, clientkey_errors=["WC-701"])
    sync.publish(order_messages(701, "processing", {7011: (1006, 2)}))
    # Ambiguous all along the retry schedule: looked up again and again, never POSTed again.
    sync.wait_until(lambda: queue_depth(sync.amqp_url, DEAD) == 1, timeout=sum(TEST_RETRY_DELAYS) + 30, what="dead letter")
    state = sync.control.state()
    assert state["calls"]["dropshipping"] == 1 and state["duplicates"] == 0
    assert state["calls"]["clientkey"] >= len(TEST_RETRY_DELAYS) + 1
    (props, _), = drain(sync.amqp_url, DEAD)
    reason = props.headers["x-rewix-reason"]
    assert "gave up after" in reason and "WC-701" in reason and "check on the supplier's platform" in reason
    assert [o["key"] for o in state["orders"]] == ["WC-701"]


@pytest.mark.parametrize("number", [".", "..", "a/b"])
def test_an_unsafe_number_is_sent_once_under_a_key_that_reads_back(sync, number):
    order_id = 800 + len(number) + (10 if "/" in number else 0)
    sync.publish(renumbered(order_messages(order_id, "processing", {order_id * 10: (1007, 1)}), number))
    sync.wait_until(lambda: sync.query("SELECT key FROM supplier_orders WHERE shop_order_id = :o", o=order_id) != [],
                    what="the supplier order recorded")
    ((key,),) = sync.query("SELECT key FROM supplier_orders WHERE shop_order_id = :o", o=order_id)
    assert key == f"order-{order_id}"
    assert sync.query("SELECT key FROM supplier_keys WHERE shop_order_id = :o", o=order_id) == [(key,)]
    assert [o["key"] for o in sync.supplier_orders()] == [key]
    client = RewixClient(sync.sim.url, API_KEY, PASSWORD, timeout=5)
    try:
        found = client.find_order_by_key(key)
        assert found is not None and found.key == key
    finally:
        client.close()
    sync.wait_until(lambda: settled(sync), what="every message handled")
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_status_poller_stops_polling_while_the_account_is_refused_and_resumes(broker, db):
    from shared.clients.rewix import CONFIRMED
    from shared.messaging import topology
    from shared.messaging.amqp import Publisher
    from services.status_poller.budget import RequestBudget
    from services.status_poller.poller import StatusPoller
    from tests.integration.test_status_poller import World, status_messages

    world = World(db, broker)
    publisher = Publisher(broker)
    client = RewixClient(world.rewix.url, "poll-key", "poll-password", timeout=5)
    stop = threading.Event()
    try:
        order = world.open_order()
        world.control.refuse_account(401)
        poller = StatusPoller(db, client, publisher, interval=0.5, budget=RequestBudget(50))
        thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
        thread.start()
        world.control.set_status(order["supplier_order_id"], CONFIRMED)
        sync_wait = SyncHarness.wait_until
        sync_wait(lambda: any(p.startswith(f"{SUPPLIER_ACCOUNT}:") for p in HEALTH.readiness().problems), what="readiness")
        calls_then = world.control.state()["requests_total"]
        time.sleep(3)  # six poll intervals: paused, the poller only probes now and then with backoff
        assert world.control.state()["requests_total"] - calls_then <= 3
        assert world.supplier_row(order["row_id"])["last_error"] is None  # not the order's fault
        assert queue_depth(broker, topology.STATUS_CHANGES.name) == 0
        world.control.accept_account()
        sync_wait(lambda: queue_depth(broker, topology.STATUS_CHANGES.name) == 1, timeout=40, what="polling resumed")
        assert [m.new_status for m in status_messages(broker)] == [CONFIRMED]
        assert not any(p.startswith(f"{SUPPLIER_ACCOUNT}:") for p in HEALTH.readiness().problems)
    finally:
        stop.set()
        publisher.close()
        client.close()
        world.close()


def test_a_maintenance_page_past_the_retry_schedule_is_dead_lettered_with_what_came_back(sync):
    sync.control.faults(maintenance={"seconds": 600})
    sync.publish(order_messages(901, "pending", {9011: (1008, 1)}))
    sync.wait_until(lambda: queue_depth(sync.amqp_url, DEAD) == 1, timeout=sum(TEST_RETRY_DELAYS) + 30, what="dead letter")
    (props, _), = drain(sync.amqp_url, DEAD)
    reason = props.headers["x-rewix-reason"]
    assert "gave up after" in reason and "does not parse" in reason and "down for maintenance" in reason
    assert props.headers["x-rewix-attempts"] == len(TEST_RETRY_DELAYS) + 1


def test_a_release_that_meets_a_5xx_for_its_model_is_retried_until_it_lands(sync):
    sync.publish(order_messages(951, "pending", {9511: (1005, 2)}, version=0))
    sync.wait_until(lambda: sync.locks() == {1005: 2}, what="locked")
    sync.control.faults(failing_stock_ids={"stock_ids": [1005], "status": 503})
    # A delete carries no line: only the failed model says its message must come back.
    sync.publish([deleted_message(951)] + order_messages(952, "pending", {9521: (1001, 1)}))
    sync.wait_until(lambda: sync.locks() == {1005: 2, 1001: 1}, what="the other order locked, the release not yet")
    sync.wait_until(lambda: wait_queue_depth(sync) >= 1, what="the deleted order's message waits")
    sync.control.faults(failing_stock_ids=None)
    sync.wait_until(lambda: sync.locks() == {1001: 1}, timeout=30, what="released once the model answers")
    sync.wait_until(lambda: settled(sync), what="every message handled")
    assert queue_depth(sync.amqp_url, DEAD) == 0
