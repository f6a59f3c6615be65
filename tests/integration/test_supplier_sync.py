"""supplier_sync end to end: real RabbitMQ and PostgreSQL, the supplier simulator over HTTP."""
from __future__ import annotations

import json
import random
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy.exc import OperationalError

from shared.reservations import repository
from tests.conftest import TEST_RETRY_DELAYS, drain, queue_depth
from tests.integration.sync_harness import SyncHarness, deleted_message, order_messages

DEAD = "rewix.order_lines.dead"


@pytest.fixture
def sync(broker, db):
    harness = SyncHarness(broker, db)
    yield harness
    harness.close()


def test_pending_order_is_locked(sync):
    sync.publish(order_messages(1, "pending", {11: (1001, 2), 12: (1002, 1)}))
    sync.wait_until(lambda: sync.locks() == {1001: 2, 1002: 1}, what="locks")
    sync.wait_until(lambda: sync.line_statuses() == {(1, 11): "locked", (1, 12): "locked"}, what="line statuses")
    assert sync.supplier_orders() == []


def test_paid_order_is_sent_once_with_the_recipient(sync):
    sync.publish(order_messages(2, "pending", {21: (1003, 2)}, version=0))
    sync.wait_until(lambda: sync.locks() == {1003: 2})
    paid = order_messages(2, "processing", {21: (1003, 2)}, version=1)
    sync.publish(paid + paid)  # WooCommerce fires order.updated more than once
    sync.wait_until(lambda: len(sync.supplier_orders()) == 1, what="supplier order")
    sync.wait_until(lambda: sync.line_statuses() == {(2, 21): "sent"})
    order = sync.supplier_orders()[0]
    assert order["key"] == "WC-2"
    assert order["items"] in ({"1003": 2}, {1003: 2})
    recipient = json.dumps(order["recipient"], ensure_ascii=False)
    assert "Zoë Müller" in recipient and "Milano" in recipient and "20121" in recipient
    rows = sync.query("SELECT key, supplier_order_id, status FROM supplier_orders")
    assert rows == [("WC-2", order["order_id"], 5)]
    # The sent units left the growing order; nothing more is held for it.
    sync.wait_until(lambda: sync.locks() == {}, what="locks released after sending")
    sync.publish(paid)  # a late duplicate
    sync.wait_until(lambda: queue_depth(sync.amqp_url, "rewix.order_lines") == 0)
    assert len(sync.supplier_orders()) == 1
    assert sync.control.state()["duplicates"] == 0


@pytest.mark.parametrize("how", ["cancelled", "deleted", "line removed", "quantity lowered"])
def test_release(sync, how):
    sync.publish(order_messages(3, "pending", {31: (1004, 3), 32: (1005, 1)}, version=0))
    sync.wait_until(lambda: sync.locks() == {1004: 3, 1005: 1})
    if how == "cancelled":
        sync.publish(order_messages(3, "cancelled", {31: (1004, 3), 32: (1005, 1)}, version=1))
        expected = {}
    elif how == "deleted":
        sync.publish([deleted_message(3)])
        expected = {}
    elif how == "line removed":
        sync.publish(order_messages(3, "pending", {31: (1004, 3)}, version=1))
        expected = {1004: 3}
    else:
        sync.publish(order_messages(3, "pending", {31: (1004, 1), 32: (1005, 1)}, version=1))
        expected = {1004: 1, 1005: 1}
    sync.wait_until(lambda: sync.locks() == expected, what=f"release ({how})")
    if how in ("cancelled", "deleted"):
        sync.wait_until(lambda: set(sync.line_statuses().values()) == {"released"})


def test_shuffled_and_duplicated_deliveries_converge_exactly(sync):
    rng = random.Random(7)
    stock = list(range(1001, 1011))
    messages, final = [], {}
    for order_id in range(100, 130):
        lines = {order_id * 10 + i: (rng.choice(stock), rng.randint(1, 3)) for i in range(rng.randint(1, 3))}
        states = [("pending", lines)]
        if rng.random() < 0.4:
            edited = {k: (s, rng.randint(0, 3)) for k, (s, _) in lines.items()}
            states.append(("on-hold", {k: v for k, v in edited.items() if v[1] > 0}))
        if rng.random() < 0.3:
            states.append(("cancelled", states[-1][1]))
        for version, (status, state_lines) in enumerate(states):
            messages += order_messages(order_id, status, state_lines, version=version)
        last_status, last_lines = states[-1]
        if last_status != "cancelled":
            for stock_id, qty in last_lines.values():
                final[stock_id] = final.get(stock_id, 0) + qty
    deliveries = messages + rng.sample(messages, len(messages) // 2)
    rng.shuffle(deliveries)
    sync.publish(deliveries)
    sync.wait_until(lambda: queue_depth(sync.amqp_url, "rewix.order_lines") == 0, timeout=60)
    sync.wait_until(lambda: sync.locks() == final, timeout=30, what="exact final locks")
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_supplier_outage_is_ridden_out(sync):
    # Down for two thirds of the retry schedule: an attempt after the window gets through.
    sync.control.faults(status_window={"status": 503, "seconds": sum(TEST_RETRY_DELAYS) * 2 // 3})
    sync.publish(order_messages(5, "pending", {51: (1006, 2)}))
    sync.publish(order_messages(6, "processing", {61: (1007, 1)}))
    sync.wait_until(lambda: len(sync.supplier_orders()) == 1 and sync.locks() == {1006: 2}, timeout=60, what="recovery")
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_rate_limit_is_ridden_out(sync):
    # One call every two seconds: even a slowed-down worker (a busy machine) calls faster than that.
    sync.control.faults(rate_limit={"per_second": 0.5, "retry_after": 1})
    for order_id in range(60, 70):
        # Spaced out so they are not coalesced into one call: each must get through.
        sync.publish(order_messages(order_id, "pending", {order_id * 10: (1008, 1)}))
        time.sleep(0.05)
    sync.wait_until(lambda: sync.locks() == {1008: 10}, timeout=60, what="locks under rate limit")
    assert sync.control.state()["rejected_429"] > 0
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_a_refused_model_is_dead_lettered_alone(sync):
    sync.control.faults(poisoned_stock_ids=[1009])
    sync.publish(
        order_messages(7, "pending", {71: (1009, 1)})
        + order_messages(8, "pending", {81: (1001, 2)})
        + order_messages(9, "pending", {91: (1002, 1), 92: (1009, 2)})
    )
    sync.wait_until(lambda: queue_depth(sync.amqp_url, DEAD) == 2, what="two dead letters")
    sync.wait_until(lambda: sync.locks() == {1001: 2, 1002: 1}, what="other models locked")
    dead = drain(sync.amqp_url, DEAD)
    reasons = [props.headers["x-rewix-reason"] for props, _ in dead]
    assert all("1009" in r for r in reasons)
    assert {props.headers["x-rewix-http-status"] for props, _ in dead} == {400}
    # The line is marked after its message went to the dead letters: wait for the mark.
    sync.wait_until(lambda: {sync.line_statuses().get(key) for key in ((7, 71), (9, 92))} == {"dead_lettered"},
                    what="the refused lines marked dead-lettered")
    statuses = sync.line_statuses()
    assert statuses[(7, 71)] == "dead_lettered" and statuses[(9, 92)] == "dead_lettered"
    assert statuses[(8, 81)] == "locked" and statuses[(9, 91)] == "locked"


def test_unparseable_message_is_dead_lettered(sync):
    sync.publisher.publish(b'{"kind": "order_line", "nonsense": true}', routing_key="order_line", message_id="bad-1")
    sync.wait_until(lambda: queue_depth(sync.amqp_url, DEAD) == 1)
    (props, body), = drain(sync.amqp_url, DEAD)
    assert props.headers["x-rewix-reason"].startswith("unparseable message")
    assert props.headers["x-rewix-attempts"] == 1


def test_the_completion_echo_costs_the_supplier_nothing(sync):
    before = datetime.now(timezone.utc)
    sync.publish(order_messages(4, "processing", {41: (1006, 1)}, version=0))
    sync.wait_until(lambda: len(sync.supplier_orders()) == 1 and sync.locks() == {})
    # The supplier has the order some time before the batch that sent it is over. One worker takes the
    # queue in order: once an order published after it has converged, that batch is over.
    sync.publish(order_messages(8, "pending", {81: (1009, 1)}))
    sync.wait_until(lambda: sync.converged_since(8, before), what="the batch after the send over")
    calls_before = dict(sync.control.state()["calls"])
    # Completing the order in the shop fires order.updated back at us.
    sync.publish(order_messages(4, "completed", {41: (1006, 1)}, version=1))
    sync.wait_until(lambda: sync.query("SELECT status FROM shop_orders WHERE id = 4") == [("completed",)])
    sync.wait_until(lambda: queue_depth(sync.amqp_url, "rewix.order_lines") == 0)
    assert sync.control.state()["calls"] == calls_before
    assert sync.line_statuses()[(4, 41)] == "sent"


def test_a_paid_event_is_sent_only_once_its_head_and_every_line_are_recorded(sync):
    lines = {51: (1006, 1), 52: (1007, 2), 53: (1008, 1)}
    sync.publish(order_messages(5, "pending", lines, version=0))
    # Locked at the supplier and recorded as such: the convergence of the pending state is over before
    # `before` is taken (the supplier is called first, the records written after).
    sync.wait_until(lambda: sync.locks() == {1006: 1, 1007: 2, 1008: 1}
                    and sync.line_statuses() == {(5, 51): "locked", (5, 52): "locked", (5, 53): "locked"},
                    what="pending order locked and recorded")
    head, *others = order_messages(5, "processing", lines, version=1)
    # Ingest answered 503 half-way: only the line messages of the paid state reached the broker.
    before = datetime.now(timezone.utc)
    # The two messages may be taken in two batches. One worker takes the queue in order, so once an
    # order published after them has converged, both of theirs have too.
    sync.publish([*others, *order_messages(7, "pending", {71: (1009, 1)})])
    sync.wait_until(lambda: sync.converged_since(7, before), what="the paid state's line messages handled")
    assert sync.query("SELECT count(*) FROM order_lines WHERE version = :v", v=head.date_modified_gmt) == [(2,)]
    assert sync.query("SELECT status, supplier_line_ids FROM shop_orders WHERE id = 5") == [("processing", [])]
    assert sync.supplier_orders() == []
    # The head arrives (it carries the first line): every line of the paid state is recorded.
    sync.publish([head])
    sync.wait_until(lambda: len(sync.supplier_orders()) == 1, what="sent once the head is recorded")
    sync.publish([head, *others])  # WooCommerce's retry of the whole delivery
    sync.wait_until(lambda: queue_depth(sync.amqp_url, "rewix.order_lines") == 0)
    [order] = sync.supplier_orders()
    assert order["key"] == "WC-5" and {int(k): v for k, v in order["items"].items()} == {1006: 1, 1007: 2, 1008: 1}
    assert "Zoë Müller" in json.dumps(order["recipient"], ensure_ascii=False)
    assert sync.control.state()["duplicates"] == 0


def test_a_paid_event_missing_a_line_is_not_sent(sync):
    lines = {61: (1009, 1), 62: (1010, 1)}
    sync.publish(order_messages(6, "pending", lines, version=0))
    # Locked and recorded: the pending state's convergence is over before `before` is taken.
    sync.wait_until(lambda: sync.locks() == {1009: 1, 1010: 1}
                    and sync.line_statuses() == {(6, 61): "locked", (6, 62): "locked"},
                    what="pending order locked and recorded")
    head, last = order_messages(6, "processing", lines, version=1)
    before = datetime.now(timezone.utc)
    sync.publish([head])  # the last line's message never made it
    sync.wait_until(lambda: sync.converged_since(6, before), what="the head handled")
    assert sync.query("SELECT status, supplier_line_ids FROM shop_orders WHERE id = 6") == [("processing", [61, 62])]
    assert sync.supplier_orders() == []
    sync.publish([last])
    sync.wait_until(lambda: len(sync.supplier_orders()) == 1, what="sent once every line is recorded")


def test_version_1_messages_still_queued_are_recorded_and_sent(sync):
    lines = {71: (1001, 1), 72: (1002, 1)}
    old = order_messages(7, "processing", lines, version=0, schema_version=1)
    assert all(m.schema_version == 1 and m.head and m.supplier_line_ids == [71, 72] for m in old)
    sync.publish(old)
    sync.wait_until(lambda: len(sync.supplier_orders()) == 1, what="a version 1 paid order sent")
    assert sync.supplier_orders()[0]["key"] == "WC-7"
    assert queue_depth(sync.amqp_url, DEAD) == 0


def test_a_convergence_that_set_the_supplier_and_then_failed_is_set_again_next_time(sync, monkeypatch):
    """The supplier call happens inside the convergence's transaction: when that transaction fails
    afterwards (a deadlock, PostgreSQL gone), stock_locks still says what the supplier held before.
    A later state that needs exactly that must still set the supplier, not find it "in step"."""
    real_save = repository.save
    failures = []

    def save_failing_once(session, *, locks=(), lines=None):
        locks = list(locks)
        if locks and not failures:
            failures.append([lock.stock_id for lock in locks])
            raise OperationalError("UPDATE stock_locks", None, Exception("deadlock detected"))
        return real_save(session, locks=locks, lines=lines)

    sync.publish(order_messages(1, "pending", {11: (1001, 2)}))
    sync.wait_until(lambda: sync.locks() == {1001: 2}, what="the first order locked")
    monkeypatch.setattr(repository, "save", save_failing_once)
    # The supplier is set to 4, then the transaction that would have recorded it fails.
    sync.publish(order_messages(2, "pending", {21: (1001, 2)}, version=0))
    sync.wait_until(lambda: failures and sync.locks() == {1001: 4}, what="the supplier set, its record lost")
    # Before the retry comes back from its wait queue, the order is cancelled: 2 are needed again,
    # which is what the stale stock_locks row says the supplier holds.
    sync.publish(order_messages(2, "cancelled", {21: (1001, 2)}, version=1))
    sync.wait_until(lambda: sync.locks() == {1001: 2}, timeout=15, what="the supplier back to what is needed")
    time.sleep(2.5)  # past the retry of the failed batch (1 s) and its convergence
    assert sync.locks() == {1001: 2}
    assert sync.query("SELECT needed, locked FROM stock_locks WHERE stock_id = 1001") == [(2, 2)]
