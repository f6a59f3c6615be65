"""SIGKILL supplier_sync in the middle of a burst; a restarted worker converges exactly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from shared.clients.rewix import RewixClient
from shared.failures.retry import Ack, RetryLater
from shared.messaging.consumer import Delivery
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units
from tests.conftest import TEST_RETRY_DELAYS, queue_depth
from tests.integration.dies_after_supplier_call import DIED
from tests.integration.sync_harness import API_KEY, PASSWORD, SyncHarness, order_messages


def start_worker(harness: SyncHarness) -> subprocess.Popen:
    env = {
        **os.environ,
        "AMQP_URL": harness.amqp_url,
        "DATABASE_URL": harness.database_url,
        "REWIX_API_URL": harness.sim.url,
        "REWIX_API_KEY": API_KEY,
        "REWIX_API_PASSWORD": PASSWORD,
        "SYNC_RETRY_DELAYS": ",".join(map(str, TEST_RETRY_DELAYS)),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "services.supplier_sync"], env=env)


@pytest.fixture
def harness(broker, db):
    h = SyncHarness(broker, db, workers=0, availability=10_000)
    yield h
    h.close()


def test_sigkill_in_a_burst_converges_exactly(harness):
    harness.control.faults(latency_ms=20)  # long enough to die with calls in flight
    expected_locks: dict[int, int] = {}
    paid = set()
    messages = []
    for order_id in range(1, 201):
        stock = 1001 + order_id % 10
        status = "processing" if order_id % 4 == 0 else "pending"
        messages += order_messages(order_id, status, {order_id * 10: (stock, 1), order_id * 10 + 1: (1001, 1)})
        if status == "processing":
            paid.add(f"WC-{order_id}")
        else:
            expected_locks[stock] = expected_locks.get(stock, 0) + 1
            expected_locks[1001] = expected_locks.get(1001, 0) + 1
    harness.publish(messages)

    worker = start_worker(harness)
    # Kill it once it is visibly half-way: some paid orders sent, others not.
    harness.wait_until(lambda: len(harness.supplier_orders()) >= 10, timeout=30, what="work under way")
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    sent_before_kill = len(harness.supplier_orders())
    killed_with_left = queue_depth(harness.amqp_url, "rewix.order_lines")

    worker = start_worker(harness)
    try:
        harness.wait_until(lambda: queue_depth(harness.amqp_url, "rewix.order_lines") == 0, timeout=90, what="queue drained")
        harness.wait_until(lambda: harness.locks() == expected_locks, timeout=30, what="exact locks")
        harness.wait_until(lambda: {o["key"] for o in harness.supplier_orders()} == paid, timeout=30, what="all paid sent")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    keys = [o["key"] for o in harness.supplier_orders()]
    assert sent_before_kill < len(paid), "the worker was killed too late to prove anything"
    print(f"\nburst: {len(messages)} messages, killed after {sent_before_kill} supplier orders with {killed_with_left} messages back in the queue; "
          f"{len(keys)} supplier orders for {len(paid)} paid shop orders, duplicates refused: {harness.control.state()['duplicates']}")
    assert len(keys) == len(set(keys)) == len(paid)
    assert queue_depth(harness.amqp_url, "rewix.order_lines.dead") == 0


def die_after(harness: SyncHarness, call: str, messages) -> None:
    """Hand one message to a handler in a process that dies as soon as the supplier answered `call`."""
    (message,) = messages
    child = subprocess.run(
        [sys.executable, "-m", "tests.integration.dies_after_supplier_call", harness.sim.url, API_KEY, PASSWORD, call],
        input=message.to_bytes(), env={**os.environ, "DATABASE_URL": harness.database_url, "LOG_LEVEL": "WARNING"},
        timeout=30,
    )
    assert child.returncode == DIED, f"the handler did not die after call {call!r} (exit {child.returncode})"


def handle(harness: SyncHarness, messages, *, expect=Ack) -> list:
    handler = OrderLineHandler(sql_units(harness.database_url), RewixClient(harness.sim.url, API_KEY, PASSWORD, timeout=5))
    batch = [Delivery(body=m.to_bytes(), message_id=m.message_id, headers={}, delivery_tag=n, redelivered=False)
             for n, m in enumerate(messages, 1)]
    outcomes = handler(batch)
    assert all(isinstance(o, expect) for o in outcomes), outcomes
    return outcomes


def test_killed_between_the_supplier_answer_and_the_commit(harness):
    """The supplier was set, the transaction saying so never committed: the next look must not trust the old row.

    One unit locked and recorded; a change to two units is set at the supplier
    and the worker dies before its commit; the order goes back to one unit.
    The row still says one unit held, which is what is needed again: only a
    row that says "not known" makes the next convergence set the supplier.
    """
    handle(harness, order_messages(1, "pending", {10: (1001, 1)}))
    assert harness.locks() == {1001: 1}
    die_after(harness, "1", order_messages(1, "pending", {10: (1001, 2)}, version=1))
    assert harness.locks() == {1001: 2}  # the supplier took it; our row did not
    handle(harness, order_messages(1, "pending", {10: (1001, 1)}, version=2))
    assert harness.locks() == {1001: 1}


def test_killed_between_a_send_and_the_commit(harness):
    """A send takes its units out of the growing order; a death before the commit must not leave the row trusted.

    Two pending orders hold a unit each; the second is paid, sent (the model
    was in step: no `set` before it) and the worker dies before its commit.
    Then that order is cancelled and a third comes: two units are needed, as
    the row says, while the supplier holds one.
    """
    handle(harness, order_messages(1, "pending", {10: (1001, 1)}) + order_messages(2, "pending", {20: (1001, 1)}))
    assert harness.locks() == {1001: 2}
    die_after(harness, "send", order_messages(2, "processing", {20: (1001, 1)}, version=1))
    assert harness.locks() == {1001: 1}  # the send took one; our row did not see it
    handle(harness, order_messages(2, "cancelled", {20: (1001, 1)}, version=2) + order_messages(3, "pending", {30: (1001, 1)}))
    assert harness.locks() == {1001: 2}
    handle(harness, order_messages(2, "processing", {20: (1001, 1)}, version=1))  # the dead worker's message, back
    assert harness.locks() == {1001: 2}
    assert [o["key"] for o in harness.supplier_orders()] == ["WC-2"]


def test_an_order_sent_before_a_crash_and_cancelled_meanwhile_is_found(harness):
    """The supplier has the order, the shop cancelled it before the dead worker's message came back.

    Nothing would send it again, so nothing would look for it: the
    convergence of the cancel asks the supplier for the key the dead worker
    had started to send, records what it finds, and the owner is told to
    cancel it there.
    """
    die_after(harness, "send", order_messages(2, "processing", {20: (1001, 1)}))
    cancel = order_messages(2, "cancelled", {20: (1001, 1)}, version=1)
    harness.control.faults(clientkey_errors=["WC-2"])  # the lookup answers 500: not known either way
    (waits,) = handle(harness, cancel, expect=RetryLater)
    assert "key 'WC-2' may have reached the supplier" in waits.reason and "check on the supplier's platform" in waits.reason
    assert harness.query("SELECT key FROM supplier_orders") == []
    harness.control.clear_faults()
    handle(harness, cancel)  # the retry
    (row,) = harness.query("SELECT key, supplier_order_id, cancelled_in_shop, last_error FROM supplier_orders")
    (sent,) = harness.supplier_orders()
    assert (row.key, row.supplier_order_id, row.cancelled_in_shop) == ("WC-2", sent["order_id"], True)
    assert "cancel it on the supplier's platform" in row.last_error
    assert harness.line_statuses() == {(2, 20): "sent"}
    assert harness.locks() == {}
