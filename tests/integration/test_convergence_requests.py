"""Convergence requests on the order-lines queue (shared/messaging/messages.py, ConvergeMessage): supplier_sync
sets the models they name, batched with order lines, and retries and dead-letters them as it does
order lines. Real RabbitMQ and PostgreSQL, supplier_sync's consumer on a thread, the supplier simulator."""
from __future__ import annotations

import json

import pytest

from shared.clients.rewix import RewixClient
from shared.failures import retry
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.messages import ConvergeMessage
from shared.reservations.repository import UNKNOWN_NEEDED
from services.admin import supplier_convergence
from tests.conftest import TEST_RETRY_DELAYS, drain, queue_depth
from tests.integration.sync_harness import API_KEY, PASSWORD, SyncHarness, order_messages

LINES = topology.ORDER_LINES.name
DEAD = topology.ORDER_LINES.dead


@pytest.fixture
def sync(broker, db):
    harness = SyncHarness(broker, db, workers=0)
    yield harness
    harness.close()


def settled(sync: SyncHarness) -> bool:
    waiting = sum(queue_depth(sync.amqp_url, topology.ORDER_LINES.wait(d)) for d in TEST_RETRY_DELAYS)
    return queue_depth(sync.amqp_url, LINES) == 0 and waiting == 0


def ask(sync: SyncHarness, stock_ids: list[int]) -> None:
    """What `reconcile --apply` does: mark the models "not known", then publish the request."""
    publisher = Publisher(sync.amqp_url)
    try:
        supplier_convergence.ask(sync.database_url, publisher, stock_ids)
    finally:
        publisher.close()


def hold_by_hand(sync: SyncHarness, units: dict[int, int]) -> None:
    """Units set at the supplier behind supplier_sync's back (its stock_locks rows do not know)."""
    client = RewixClient(sync.sim.url, API_KEY, PASSWORD, timeout=5)
    try:
        client.modify_growing_order(set=units)
    finally:
        client.close()


def test_a_request_sets_its_models_to_what_the_records_need_whatever_stock_locks_said(sync):
    sync.publish(order_messages(701, "pending", {7011: (1001, 2)}))
    sync.start_workers(1)
    sync.wait_until(lambda: sync.locks() == {1001: 2}, what="the order locked")
    sync.wait_until(lambda: settled(sync), what="the order handled")
    # stock_locks says 1001 is in step at 2 and knows nothing of 1002: both wrong at the supplier now.
    hold_by_hand(sync, {1001: 5, 1002: 3})

    ask(sync, [1001, 1002])
    sync.wait_until(lambda: sync.locks() == {1001: 2}, what="supplier_sync set both models")
    sync.wait_until(lambda: settled(sync), what="the request handled")
    assert queue_depth(sync.amqp_url, DEAD) == 0
    assert dict(sync.query("SELECT stock_id, needed FROM stock_locks ORDER BY stock_id")) == {1001: 2, 1002: 0}
    assert supplier_convergence.not_known(sync.database_url, [1001, 1002]) == set()
    assert supplier_convergence.set_to(sync.database_url, [1001, 1002]) == {1001: 2, 1002: 0}


def test_a_request_published_with_order_lines_is_handled_in_their_batch(sync):
    hold_by_hand(sync, {1003: 4})
    ask(sync, [1003])
    sync.publish(order_messages(702, "pending", {7021: (1004, 1)}) + order_messages(703, "on-hold", {7031: (1003, 1)}))
    before = sync.control.state()["calls"].get("lock", 0)
    sync.start_workers(1)
    sync.wait_until(lambda: sync.locks() == {1003: 1, 1004: 1}, what="the batch converged")
    sync.wait_until(lambda: supplier_convergence.not_known(sync.database_url, [1003]) == set(), what="1003 set")
    assert sync.control.state()["calls"].get("lock", 0) - before == 1  # one `set` call for the whole batch
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_a_request_naming_a_model_the_supplier_refuses_is_dead_lettered_with_the_reason(sync):
    sync.control.faults(poisoned_stock_ids=[1003])
    ask(sync, [1003, 1004])
    sync.start_workers(1)
    sync.wait_until(lambda: queue_depth(sync.amqp_url, DEAD) == 1, what="the request dead-lettered")
    [(properties, body)] = drain(sync.amqp_url, DEAD)
    assert json.loads(body)["kind"] == "converge" and json.loads(body)["stock_ids"] == [1003, 1004]
    assert properties.headers[retry.REASON].startswith("supplier refused stock_id 1003")
    assert properties.headers[retry.ATTEMPTS] == 1
    # The other model was set all the same; the refused one stays "not known", for the next convergence.
    assert dict(sync.query("SELECT stock_id, needed FROM stock_locks")) == {1003: UNKNOWN_NEEDED, 1004: 0}


def test_a_request_alone_changes_nothing_the_records_say_is_in_step(sync):
    """Only the mark makes a model be set whatever stock_locks says: a request replayed later
    converges as any message would."""
    hold_by_hand(sync, {1006: 2})
    request = ConvergeMessage(stock_ids=[1006])
    sync.publish([request])
    sync.start_workers(1)
    sync.wait_until(lambda: settled(sync), what="the request handled")
    sync.publish(order_messages(706, "pending", {7061: (1007, 1)}))
    sync.wait_until(lambda: sync.locks() == {1006: 2, 1007: 1}, what="the next message handled")
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_a_request_for_a_model_failing_with_a_5xx_waits_on_the_schedule_and_then_sets_it(sync):
    sync.control.seed_catalog([{"stock_id": 1005, "availability": 100}])
    ask(sync, [1005])
    assert sync.query("SELECT needed FROM stock_locks WHERE stock_id = 1005") == [(UNKNOWN_NEEDED,)]
    sync.control.faults(failing_stock_ids={"stock_ids": [1005], "status": 500})
    sync.start_workers(1)
    sync.wait_until(lambda: queue_depth(sync.amqp_url, topology.ORDER_LINES.wait(TEST_RETRY_DELAYS[0])) == 1,
                    what="the request waits for a retry")
    sync.control.faults(failing_stock_ids=None)
    sync.wait_until(lambda: supplier_convergence.not_known(sync.database_url, [1005]) == set(), timeout=30,
                    what="the model set on the retry")
    sync.wait_until(lambda: settled(sync), what="the request handled")
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_a_malformed_request_is_dead_lettered_at_once(sync):
    publisher = Publisher(sync.amqp_url)
    try:
        publisher.publish(json.dumps({"kind": "converge", "stock_ids": []}).encode(), routing_key=topology.ORDER_LINE,
                          message_id="bad-request")
    finally:
        publisher.close()
    sync.start_workers(1)
    sync.wait_until(lambda: queue_depth(sync.amqp_url, DEAD) == 1, what="dead-lettered")
    [(properties, _)] = drain(sync.amqp_url, DEAD)
    assert properties.message_id == "bad-request" and properties.headers[retry.ATTEMPTS] == 1
    assert "stock_ids" in properties.headers[retry.REASON]
