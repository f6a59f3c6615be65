"""SIGKILL of each service in the middle of a burst, then a restart: nothing lost, nothing doubled.

(supplier_sync killed once with one worker is in tests/integration/test_supplier_sync_crash.py;
here three workers are killed one after another.)
"""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from shared.clients.rewix import BOOKED, CONFIRMED, DISPATCHED, READY, WORKING_ON
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.messages import OrderLineMessage
from simulators.shop.php_json import wp_json_encode
from tests.faults.conftest import (
    ROOT, STOCK_OF_PRODUCT, World, figures, gmt, queue_depths, signed_headers, wait_until, work_queues,
)
from tests.integration.sync_harness import order_messages

PRODUCTS = list(STOCK_OF_PRODUCT)


# -- ingest ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_ingest_sigkill_during_a_webhook_burst(world: World) -> None:
    """Every webhook answered 200 before the kill was persisted and is applied; the rest come back
    through `rewix-sync backfill`; the supplier ends exactly as the shop needs."""
    sync = world.supplier_sync()
    ingest = world.ingest()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    # The orders exist in the shop; the test delivers them itself, from several threads at once.
    orders = [world.create_order("processing" if i % 4 == 0 else "pending", world.random_lines()) for i in range(300)]
    todo: queue.Queue[dict] = queue.Queue()
    for order in orders:
        todo.put(order)
    answers: dict[int, int | str] = {}
    lock = threading.Lock()
    senders, per_sender_pause = 6, 0.06  # about 100 webhooks a second in all

    def send() -> None:
        session = requests.Session()
        while True:
            try:
                order = todo.get_nowait()
            except queue.Empty:
                return
            body = wp_json_encode(order)
            try:
                response = session.post(ingest.webhook_url, data=body, headers=signed_headers(body, "order.created"),
                                        timeout=10)
                answer: int | str = response.status_code
            except requests.RequestException as exc:
                answer = type(exc).__name__
                session = requests.Session()
            with lock:
                answers[order["id"]] = answer
            time.sleep(per_sender_pause)

    threads = [threading.Thread(target=send, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(1 for a in list(answers.values()) if a == 200) >= 90, 30, "a third of the burst answered")
    ingest.kill()
    with lock:
        ok_before_kill = {o for o, a in answers.items() if a == 200}
    killed_at = time.monotonic()
    world.restart(ingest)
    restarted_in = time.monotonic() - killed_at
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    ok = {o for o, a in answers.items() if a == 200}
    failed = {o: a for o, a in answers.items() if a != 200}
    assert not [a for a in failed.values() if isinstance(a, int) and a >= 500 and a != 503], failed
    # Every 200 was confirmed by RabbitMQ: its messages are there, whatever happened next.
    published = world.audit()
    webhook_states = {(m.order_id, m.date_modified_gmt) for m in published if m.source == "webhook"}
    by_id = {o["id"]: o for o in orders}
    not_persisted = [o for o in ok if (o, gmt(by_id[o]["date_modified_gmt"])) not in webhook_states]

    def applied(ids: set[int]) -> int:
        stored = dict(world.query("SELECT id, status FROM shop_orders"))
        return sum(1 for o in ids if stored.get(o) == by_id[o]["status"])

    wait_until(lambda: applied(ok) == len(ok), 60, "every order answered 200 to be applied by supplier_sync")

    started = time.monotonic()
    backfill = subprocess.run(
        [str(Path(sys.executable).parent / "rewix-sync"), "backfill", "--since", since.isoformat(), "--send-paid"],
        cwd=ROOT, env=ingest.env, capture_output=True, text=True, timeout=60,
    )
    assert backfill.returncode == 0, backfill.stderr
    result = world.wait_exact(60, abort=world.stop_signs([sync, ingest]))
    comparison = result.comparison
    converge = time.monotonic() - started
    figures(
        "ingest SIGKILL", orders_sent=len(orders), answered_200=len(ok), answered_200_before_kill=len(ok_before_kill),
        failed_during_kill=dict(Counter(failed.values())), ingest_back_after_s=restarted_in, applied=world.applied_orders(),
        not_persisted=len(not_persisted), lost=comparison.lost, doubled=comparison.doubled,
        paid_orders=comparison.paid, supplier_orders=comparison.supplier_orders, converge_after_backfill_s=converge,
    )
    assert not not_persisted, f"answered 200 but never published: {sorted(not_persisted)[:10]}"
    assert ok_before_kill and failed, "the kill must fall inside the burst"
    assert result.problem is None, result.problem
    assert world.rewix.state.snapshot()["duplicates"] == 0


# -- supplier_sync ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_three_supplier_sync_workers_killed_one_after_another(world: World) -> None:
    """Three workers share a burst; each is SIGKILLed in turn (and replaced) while it works."""
    stocks = [STOCK_OF_PRODUCT[p] for p in PRODUCTS[:10]]
    # Slow enough that the last kill (at 40 of 75 sends) lands while sends remain, however late the
    # test's own look at the supplier comes on a busy machine.
    world.rewix.state.configure_faults({"latency_ms": 50})
    locks: dict[int, int] = {}
    paid: dict[str, dict[int, int]] = {}
    state: dict[int, tuple[str, dict[int, tuple[int, int]]]] = {}
    first: list[OrderLineMessage] = []
    for order_id in range(1, 301):
        status = "processing" if order_id % 4 == 0 else "pending"
        lines = {order_id * 10: (stocks[order_id % 10], 1), order_id * 10 + 1: (stocks[0], 1 + order_id % 2)}
        state[order_id] = (status, lines)
        first += order_messages(order_id, status, lines)
    # A second wave changes 40 pending orders: half cancelled, half with a new quantity.
    second: list[OrderLineMessage] = []
    for n, order_id in enumerate(o for o in state if state[o][0] == "pending"):
        if n >= 40:
            break
        status, lines = state[order_id]
        if n % 2:
            state[order_id] = ("cancelled", lines)
        else:
            lines = {**lines, order_id * 10: (lines[order_id * 10][0], 3)}
            state[order_id] = ("pending", lines)
        second += order_messages(order_id, state[order_id][0], state[order_id][1], version=1)
    for order_id, (status, lines) in state.items():
        if status == "pending":
            for stock, qty in lines.values():
                locks[stock] = locks.get(stock, 0) + qty
        elif status == "processing":
            items: dict[int, int] = {}
            for stock, qty in lines.values():
                items[stock] = items.get(stock, 0) + qty
            paid[f"WC-{order_id}"] = items

    publisher = Publisher(world.amqp_url)
    try:
        for m in first:
            publisher.publish(m.to_bytes(), routing_key=topology.ORDER_LINE, message_id=m.message_id)
        workers = [world.supplier_sync(f"supplier_sync-{n}") for n in range(3)]
        sent_at_kill = []
        for n, milestone in enumerate((10, 25, 40)):
            wait_until(lambda: len(world.supplier_orders()) >= milestone, 60, f"{milestone} supplier orders")
            workers[n].kill()
            sent_at_kill.append(len(world.supplier_orders()))
            if n == 0:
                for m in second:
                    publisher.publish(m.to_bytes(), routing_key=topology.ORDER_LINE, message_id=m.message_id)
            world.restart(workers[n])
        last_kill = time.monotonic()
    finally:
        publisher.close()
    result = world.wait_exact(90, (locks, paid), abort=world.stop_signs(workers))
    comparison = result.comparison
    converge = time.monotonic() - last_kill
    if result.problem is None:
        wait_until(lambda: not any(queue_depths(world.amqp_url, work_queues()).values()), 30, "every queue drained")
    dead = queue_depths(world.amqp_url, [topology.ORDER_LINES.dead])[topology.ORDER_LINES.dead]
    snapshot = world.rewix.state.snapshot()
    figures(
        "supplier_sync 3 workers SIGKILLed", messages_sent=len(first) + len(second), kills=3,
        supplier_orders_at_kills=sent_at_kill, paid_orders=len(paid), supplier_orders=comparison.supplier_orders,
        applied=len(world.query("SELECT id FROM shop_orders")), lost=comparison.lost, doubled=comparison.doubled,
        duplicates_refused=snapshot["duplicates"], dead_letters=dead, converge_after_last_kill_s=converge,
    )
    assert result.problem is None, result.problem
    assert sent_at_kill[-1] < len(paid), "the last worker was killed too late to prove anything"
    assert dead == 0
    assert all(w.alive for w in workers)


# -- status_poller ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_status_poller_sigkill_during_a_status_burst(world: World) -> None:
    """Statuses Booked -> Confirmed -> Working on -> Ready -> Dispatched for 30 orders; status_poller
    is SIGKILLed while applying Working on and again while applying Dispatched. Each status
    reaches the shop exactly once, and each order is completed once."""
    world.shop.state.set_faults({"latency_ms": 40})  # shop writes take a while: kills land mid-write
    opened = [world.open_supplier_order(world.create_order("processing", [(PRODUCTS[i % 6], 1)])) for i in range(30)]
    poller = world.status_poller()
    tracking = {"tracking_code": "TRK-{}", "tracking_url": "https://track.example.com/{}", "carrier_name": "DHL"}
    kills: list[dict[str, float]] = []
    steps = [BOOKED, CONFIRMED, WORKING_ON, READY, DISPATCHED]
    expected: dict[int, list[str]] = {o["shop_order_id"]: [] for o in opened}

    def reached(note_of: dict[int, str]) -> int:
        return sum(1 for shop_id, note in note_of.items() if note in world.notes(shop_id))

    started = time.monotonic()
    for status in steps:
        if status != BOOKED:
            for o in opened:
                extra = {k: v.format(o["supplier_order_id"]) for k, v in tracking.items()} if status == DISPATCHED else {}
                world.set_supplier_status(o["supplier_order_id"], status, **extra)
        note_of = {o["shop_order_id"]: world.expected_note(o["key"], status) for o in opened}
        for shop_id, note in note_of.items():
            expected[shop_id].append(note)
        if status in (WORKING_ON, DISPATCHED):
            wait_until(lambda: reached(note_of) >= len(opened) // 3, 30, f"a third of status {status} applied")
            poller.kill()
            done_at_kill = reached(note_of)
            killed = time.monotonic()
            world.restart(poller)
            wait_until(lambda: reached(note_of) == len(opened), 60, f"status {status} applied everywhere")
            kills.append({"status": status, "applied_at_kill": done_at_kill, "converge_s": round(time.monotonic() - killed, 2)})
        else:
            wait_until(lambda: reached(note_of) == len(opened), 60, f"status {status} applied everywhere")
    wait_until(lambda: all(world.completions(o["shop_order_id"]) >= 1 for o in opened), 30, "every order completed")
    converge = time.monotonic() - started
    time.sleep(2)  # long enough for any late duplicate to show
    lost, doubled = world.notes_lost_and_doubled(expected)
    completions = [world.completions(o["shop_order_id"]) for o in opened]
    statuses_sent = len(opened) * len(steps)
    figures(
        "status_poller SIGKILL", orders=len(opened), statuses_sent=statuses_sent, applied=statuses_sent - lost,
        lost=lost, doubled=doubled, completions=sum(completions), kills=kills, converge_s=converge,
    )
    assert all(k["applied_at_kill"] < len(opened) for k in kills), "a kill came after its status was applied"
    assert lost == 0 and doubled == 0
    assert completions == [1] * len(opened)
    # The customer is told of the dispatch once, whatever failed or was killed on the way.
    assert [len(world.customer_notes(o["shop_order_id"])) for o in opened] == [1] * len(opened)
    assert all(o["status"] == "completed" for o in world.orders())
