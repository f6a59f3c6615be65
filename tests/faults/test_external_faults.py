"""The supplier and the shop misbehaving while the services work: every order and every status still
arrives exactly once, and what can never succeed is dead-lettered with its reason."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from shared.clients.rewix import BOOKED, CONFIRMED, DISPATCHED, READY, WORKING_ON
from shared.failures import retry
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.messages import OrderLineMessage, parse_order_line
from tests.conftest import drain
from tests.faults.conftest import STOCK_OF_PRODUCT, World, figures, queue_depths, wait_until, work_queues
from tests.integration.sync_harness import order_messages

PRODUCTS = list(STOCK_OF_PRODUCT)
HEALTHY = [STOCK_OF_PRODUCT[p] for p in PRODUCTS[:8]]
POISONED = STOCK_OF_PRODUCT[PRODUCTS[-1]]


class Wave:
    """Order states published together, and what they leave the supplier holding."""

    def __init__(self, first_id: int, orders: int, paid_every: int) -> None:
        self.messages: list[OrderLineMessage] = []
        self.locks: Counter[int] = Counter()
        self.paid: dict[str, dict[int, int]] = {}
        for order_id in range(first_id, first_id + orders):
            paid = paid_every and order_id % paid_every == 0
            lines = {order_id * 10: (HEALTHY[order_id % 8], 1 + order_id % 3),
                     order_id * 10 + 1: (HEALTHY[(order_id // 8) % 8], 1)}
            self.messages += order_messages(order_id, "processing" if paid else "pending", lines)
            items: Counter[int] = Counter()
            for stock, qty in lines.values():
                items[stock] += qty
            if paid:
                self.paid[f"WC-{order_id}"] = dict(items)
            else:
                self.locks.update(items)


def publish(world: World, messages: list[OrderLineMessage]) -> None:
    publisher = Publisher(world.amqp_url)
    try:
        for m in messages:
            publisher.publish(m.to_bytes(), routing_key=topology.ORDER_LINE, message_id=m.message_id)
    finally:
        publisher.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_supplier_faults_in_one_burst(world: World) -> None:
    """2 s latency, dropped connections, a 503 window and a 429 rate limit with Retry-After meet
    four waves of orders, with one model the supplier always refuses (400)."""
    supplier = world.rewix.state
    sync = world.supplier_sync()
    waves = [Wave(1, 24, 12), Wave(100, 30, 3), Wave(200, 30, 3), Wave(300, 30, 3)]
    # The refused model: three pending orders and one paid one, each with that line only.
    poisoned_orders = {901: "pending", 902: "pending", 903: "pending", 904: "processing"}
    poisoned = [m for o, s in poisoned_orders.items() for m in order_messages(o, s, {o * 10: (POISONED, 1)})]
    started = time.monotonic()

    supplier.configure_faults({"poisoned_stock_ids": [POISONED], "latency_ms": 2000})
    publish(world, waves[0].messages + poisoned)
    time.sleep(4)
    supplier.configure_faults({"latency_ms": 0, "drop_next": 3})
    publish(world, waves[1].messages)
    wait_until(lambda: supplier.faults.drop_count == 0, 20, "three answers cut short")
    supplier.configure_faults({"status_window": {"status": 503, "seconds": 3}})
    publish(world, waves[2].messages)
    time.sleep(3)
    supplier.configure_faults({"rate_limit": {"per_second": 5, "retry_after": 1}})
    publish(world, waves[3].messages)
    time.sleep(4)
    supplier.configure_faults({"rate_limit": None})
    faults_over = time.monotonic()

    locks: Counter[int] = Counter()
    paid: dict[str, dict[int, int]] = {}
    for wave in waves:
        locks.update(wave.locks)
        paid.update(wave.paid)
    result = world.wait_exact(90, (dict(locks), paid), abort=world.stop_signs([sync], len(poisoned)))
    comparison = result.comparison
    converge = time.monotonic() - faults_over
    if result.problem is None:
        # The refused model's messages reach the dead-letter queue at the end of their retry schedule, which may
        # run on after the rest has converged; between two attempts a message is in no queue.
        dead_queue = topology.ORDER_LINES.dead
        wait_until(lambda: queue_depths(world.amqp_url, [dead_queue])[dead_queue] >= len(poisoned_orders), 60,
                   "the refused model's messages dead-lettered")
        wait_until(lambda: not any(queue_depths(world.amqp_url, work_queues()).values()), 40, "every queue drained")
    dead = drain(world.amqp_url, topology.ORDER_LINES.dead)
    dead_orders = sorted(parse_order_line(body).order_id for _props, body in dead)
    reasons = [props.headers.get(retry.REASON, "") for props, _body in dead]
    statuses = [props.headers.get(retry.HTTP_STATUS) for props, _body in dead]
    retries = Counter(
        e.get("reason", "")[:40] for e in sync.events(since_start=False) if e.get("event") == "message will be retried"
    )
    snapshot = supplier.snapshot()
    messages = sum(len(w.messages) for w in waves) + len(poisoned)
    figures(
        "supplier faults", messages_sent=messages, paid_orders=len(paid), supplier_orders=comparison.supplier_orders,
        lost=comparison.lost, doubled=comparison.doubled, supplier_requests=snapshot["requests_total"],
        answered_429=snapshot["rejected_429"], retries=dict(retries), dead_letters=len(dead),
        duplicates_refused=snapshot["duplicates"], converge_after_faults_s=converge,
        total_s=time.monotonic() - started,
    )
    assert result.problem is None, result.problem
    assert dead_orders == sorted(poisoned_orders), dead_orders
    assert all(f"stock_id {POISONED}" in r for r in reasons), reasons
    assert statuses == [400] * len(dead), statuses
    assert POISONED not in comparison.locks
    assert "WC-904" not in {o["key"] for o in snapshot["orders"]}
    assert snapshot["rejected_429"] > 0
    assert sync.alive


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_shop_write_failures_while_statuses_are_applied(world: World) -> None:
    """500s, 503s and 429s on note and status writes, some after the write was made, while four
    orders go Booked -> Confirmed -> Working on -> Ready -> Dispatched: each status reaches the
    shop exactly once and each order is completed once."""
    shop = world.shop.state
    opened = [world.open_supplier_order(world.create_order("processing", [(PRODUCTS[i], 1)])) for i in range(4)]
    faults = {
        BOOKED: {"fail_notes": {"status": 500, "count": 2}},
        CONFIRMED: {"fail_notes": {"status": 500, "count": 3, "after_write": True}},
        WORKING_ON: {"fail_notes": {"status": 429, "count": 2, "retry_after": 1}},
        READY: {"fail_notes": {"status": 503, "count": 2, "after_write": True}},
        DISPATCHED: {"fail_notes": {"status": 500, "count": 1},
                     "fail_updates": {"status": 500, "count": 3, "after_write": True}},
    }
    injected = sum(f["count"] for spec in faults.values() for f in spec.values())
    expected: dict[int, list[str]] = {o["shop_order_id"]: [] for o in opened}
    poller = None
    started = time.monotonic()
    for status, spec in faults.items():
        shop.set_faults(spec)
        for o in opened:
            if status == DISPATCHED:
                world.set_supplier_status(o["supplier_order_id"], status, tracking_code=f"TRK{o['supplier_order_id']}",
                                          tracking_url="https://track.example.com/x", carrier_name="GLS")
            elif status != BOOKED:
                world.set_supplier_status(o["supplier_order_id"], status)
        if poller is None:
            poller = world.status_poller()
        note_of = {o["shop_order_id"]: world.expected_note(o["key"], status) for o in opened}
        for shop_id, note in note_of.items():
            expected[shop_id].append(note)
        wait_until(lambda: all(note in world.notes(s) for s, note in note_of.items()), 45, f"status {status} in the shop")
    wait_until(lambda: all(world.completions(o["shop_order_id"]) for o in opened), 30, "every order completed")
    converge = time.monotonic() - started
    time.sleep(2)  # long enough for a late duplicate to show
    lost, doubled = world.notes_lost_and_doubled(expected)
    completions = [world.completions(o["shop_order_id"]) for o in opened]
    retried = poller.count_events("message will be retried")
    dead = queue_depths(world.amqp_url, [topology.STATUS_CHANGES.dead])[topology.STATUS_CHANGES.dead]
    statuses_sent = len(opened) * len(faults)
    figures(
        "shop write faults", orders=len(opened), statuses_sent=statuses_sent, applied=statuses_sent - lost, lost=lost,
        doubled=doubled, faults_injected=injected, retries=retried, completions=sum(completions), dead_letters=dead,
        converge_s=converge,
    )
    assert lost == 0 and doubled == 0
    assert completions == [1] * len(opened)
    # The customer is told of the dispatch once, whatever failed or was killed on the way.
    assert [len(world.customer_notes(o["shop_order_id"])) for o in opened] == [1] * len(opened)
    assert all(o["status"] == "completed" for o in world.orders())
    assert dead == 0
    assert retried >= 5
