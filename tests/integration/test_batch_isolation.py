"""One message the database refuses never fails the others batched with it (real RabbitMQ and PostgreSQL).

The messages wait on the queue before supplier_sync starts, so they are taken
as one batch; the refused one is split off (services/supplier_sync/recording.py)
and dead-lettered alone with the database's reason, the others lock within
seconds. A database that cannot be reached is no message's fault: the whole
batch is retried.
"""
from __future__ import annotations

import urllib.parse

import pytest

from shared.failures import retry
from shared.messaging import topology
from shared.messaging.messages import OrderLineMessage
from tests.conftest import TEST_RETRY_DELAYS, drain, queue_depth
from tests.integration.sync_harness import SyncHarness, order_messages
from tests.support import TcpProxy

DEAD = topology.ORDER_LINES.dead
LINES = topology.ORDER_LINES.name


def good_orders(first: int, count: int) -> tuple[list[OrderLineMessage], dict[int, int]]:
    """`count` pending orders of one line each, and the units they need per stock_id."""
    messages, needed = [], {}
    for order_id in range(first, first + count):
        stock_id = 1001 + order_id % 10
        messages += order_messages(order_id, "pending", {order_id * 10: (stock_id, 1)})
        needed[stock_id] = needed.get(stock_id, 0) + 1
    return messages, needed


def crafted(order_id: int, how: str) -> OrderLineMessage:
    """A message past the conversion limits, as ingest never publishes it but a hand on the queue could."""
    [message] = order_messages(order_id, "pending", {order_id * 10: (1001, 1)})
    if how == "number":
        return message.model_copy(update={"order_number": "N" * 150})
    if how == "status":
        return message.model_copy(update={"status": "s" * 60})
    assert message.line is not None
    return message.model_copy(update={"line": message.line.model_copy(update={"quantity": 2**40})})


@pytest.fixture
def sync(broker, db):
    harness = SyncHarness(broker, db, workers=0)
    yield harness
    harness.close()


@pytest.mark.parametrize("how, reason", [
    ("number", "value too long for type character varying(100)"),
    ("status", "value too long for type character varying(50)"),
    ("quantity", "integer out of range"),
])
def test_a_refused_message_is_dead_lettered_alone_and_its_batch_locks(sync, how, reason):
    good, needed = good_orders(200, 20)
    poison = crafted(999, how)
    batch = good[:10] + [poison] + good[10:]
    sync.publish(batch)
    assert queue_depth(sync.amqp_url, LINES) == 21
    sync.start_workers(1)
    sync.wait_until(lambda: sync.locks() == needed, timeout=10, what="the 20 good orders locked")
    # The supplier holds the units before the lines' states are committed: wait for those too.
    sync.wait_until(lambda: sync.line_statuses() == {(o, o * 10): "locked" for o in range(200, 220)}, timeout=10,
                    what="the 20 good orders' lines locked")
    sync.wait_until(lambda: queue_depth(sync.amqp_url, DEAD) == 1, timeout=10, what="the culprit dead-lettered")
    [(properties, body)] = drain(sync.amqp_url, DEAD)
    assert properties.message_id == poison.message_id and body == poison.to_bytes()
    assert reason in properties.headers[retry.REASON] and "the database refused the message" in properties.headers[retry.REASON]
    assert properties.headers[retry.ATTEMPTS] == 1  # refused for good: never retried
    # Nothing of the culprit was recorded; its reason names no value of the order.
    assert sync.query("SELECT count(*) FROM shop_orders WHERE id = 999") == [(0,)]
    assert "NNNN" not in properties.headers[retry.REASON] and "ssss" not in properties.headers[retry.REASON]


def test_a_nul_in_a_crafted_message_is_dropped_not_refused(sync):
    good, needed = good_orders(300, 5)
    [message] = order_messages(998, "pending", {9980: (1001, 1)})
    poison = message.model_copy(update={"customer_note": "ring\x00 twice", "order_number": "WC-\x00998"})
    sync.publish(good + [poison])
    sync.start_workers(1)
    needed[1001] = needed.get(1001, 0) + 1
    sync.wait_until(lambda: sync.locks() == needed, timeout=10, what="every order locked")
    assert sync.query("SELECT number, customer_note FROM shop_orders WHERE id = 998") == [("WC-998", "ring twice")]
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_an_unreachable_database_retries_the_whole_batch(broker, db):
    parsed = urllib.parse.urlsplit(db)
    proxy = TcpProxy((parsed.hostname or "127.0.0.1", parsed.port or 5432))
    sync = SyncHarness(broker, proxy.url_for(db), workers=0)
    try:
        good, needed = good_orders(400, 10)
        sync.publish(good)
        proxy.cut()
        sync.start_workers(1)
        # The batch failed on the connection: every message went to the first wait queue, none to the dead letters.
        first_wait = topology.ORDER_LINES.wait(TEST_RETRY_DELAYS[0])
        sync.wait_until(lambda: queue_depth(sync.amqp_url, first_wait) == 10, timeout=10, what="the whole batch waiting")
        assert queue_depth(sync.amqp_url, DEAD) == 0
        proxy.restore()
        sync.wait_until(lambda: sync.locks() == needed, timeout=20, what="every order locked once the database is back")
        sync.wait_until(lambda: sync.query("SELECT count(*) FROM order_lines WHERE sync_status = 'locked'") == [(10,)],
                        timeout=10, what="every line locked")
        assert queue_depth(sync.amqp_url, DEAD) == 0
    finally:
        sync.close()
        proxy.cut()
