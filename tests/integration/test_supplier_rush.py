"""A throttled supplier: one request budget across processes, locks before sends, sends drained exactly once.

supplier_sync runs as the service runs (`python -m services.supplier_sync`:
the lock work and the send worker, wired by bootstrap.py) against the
supplier simulator with a rate limit, on the real broker and database.
"""
from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from shared.messaging import topology
from shared.messaging.amqp import Publisher
from simulators.rewix import start_in_thread
from simulators.rewix.control import SimulatorControl
from tests.integration.sync_harness import order_messages
from tests.integration.worker_processes import REWIX_KEY, REWIX_PASSWORD, ROOT, ServiceProcess, worker_env
from tests.support import wait_until

MODELS = range(2001, 2021)


@pytest.fixture
def supplier():
    sim = start_in_thread(api_key=REWIX_KEY, password=REWIX_PASSWORD)
    control = SimulatorControl(sim.url)
    control.seed_catalog([{"stock_id": s, "product_id": s, "code": f"M{s}", "barcode": f"80{s}", "availability": 1000}
                          for s in MODELS])
    yield sim, control
    control.close()
    sim.stop()


@pytest.fixture
def publish(broker):
    publisher = Publisher(broker)

    def send(messages) -> None:
        for m in messages:
            publisher.publish(m.to_bytes(), routing_key=topology.ORDER_LINE, message_id=m.message_id)

    yield send
    publisher.close()


def start_sync(db, broker, sim, **extra: str) -> ServiceProcess:
    return ServiceProcess("services.supplier_sync", worker_env(db, broker, sim.url, "http://127.0.0.1:9", **extra))


def sent_keys(control: SimulatorControl) -> Counter[str]:
    return Counter(order["key"] for order in control.state()["orders"])


def locked(control: SimulatorControl) -> dict[int, int]:
    return {int(s): int(q) for s, q in control.state()["growing_order"]["models"].items() if int(q) > 0}


def test_locks_overtake_throttled_sends_which_then_drain_exactly_once(db, broker, supplier, publish):
    sim, control = supplier
    control.faults(rate_limit={"per_second": 4, "retry_after": 1})
    sync = start_sync(db, broker, sim, SUPPLIER_REQUESTS_PER_SECOND="4")
    try:
        # Twelve paid orders: two requests each to send, at most four requests a second for everything.
        paid = {order_id: 2001 + order_id % 10 for order_id in range(1, 13)}
        for order_id, stock_id in paid.items():
            publish(order_messages(order_id, "processing", {order_id * 10: (stock_id, 1)}))
        wait_until(lambda: sent_keys(control), timeout=30, what="the first send")

        # Orders placed while the sends are backlogged are locked before the backlog is through.
        pending = {order_id: 2011 + order_id % 10 for order_id in range(101, 106)}
        for order_id, stock_id in pending.items():
            publish(order_messages(order_id, "pending", {order_id * 10: (stock_id, 2)}))
        wanted = Counter()
        for stock_id in pending.values():
            wanted[stock_id] += 2
        wait_until(lambda: all(locked(control).get(s) == q for s, q in wanted.items()), timeout=30,
                   what="the pending orders locked")
        assert len(sent_keys(control)) < len(paid), "the locks waited for every send"

        # The backlog drains: every paid order sent once, and only the pending ones still held.
        wait_until(lambda: len(sent_keys(control)) == len(paid), timeout=60, what="every paid order sent")
        wait_until(lambda: locked(control) == dict(wanted), timeout=30, what="the growing order exact")
        assert sent_keys(control) == Counter({f"WC-{order_id}": 1 for order_id in paid})
        assert control.state()["rejected_429"] == 0
    finally:
        sync.stop()


def test_sends_waiting_on_the_budget_survive_a_killed_worker_and_go_out_once(db, broker, supplier, publish):
    sim, control = supplier
    env = dict(SUPPLIER_REQUESTS_PER_SECOND="2", SYNC_RETRY_DELAYS="1,1,1,1,1,1,1,1")
    sync = start_sync(db, broker, sim, **env)
    paid = range(1, 9)
    try:
        for order_id in paid:
            publish(order_messages(order_id, "processing", {order_id * 10: (2001 + order_id, 1)}))
        wait_until(lambda: sent_keys(control), timeout=30, what="the first send")
        sync.process.kill()  # SIGKILL: no goodbye, the requests not acked go back to the queue
        sync.process.wait()
        assert len(sent_keys(control)) < len(paid), "nothing was left waiting when the worker died"
    finally:
        sync.stop()

    again = start_sync(db, broker, sim, **env)
    try:
        wait_until(lambda: len(sent_keys(control)) == len(paid), timeout=60, what="every paid order sent")
        assert sent_keys(control) == Counter({f"WC-{order_id}": 1 for order_id in paid})
        wait_until(lambda: locked(control) == {}, timeout=30, what="nothing held for orders sent")
    finally:
        again.stop()


BUDGET_USER = """
import sys
from shared.clients.rewix import RewixClient
from shared.clients.rewix.budget import SqlBudget
from shared.db import get_engine
url, database_url, priority, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = RewixClient(url, {key!r}, {password!r}, budget=SqlBudget(get_engine(database_url), 5), priority=priority)
for _ in range(calls):
    client.get_growing_order()
""".format(key=REWIX_KEY, password=REWIX_PASSWORD)


def test_two_processes_on_one_budget_never_exceed_it(db, supplier):
    sim, control = supplier
    # The supplier allows five a second, with a second's burst; two processes each asking as fast as
    # they can would pass it at once.
    control.faults(rate_limit={"per_second": 5, "retry_after": 1})
    users = [subprocess.Popen([sys.executable, "-c", BUDGET_USER, sim.url, db, priority, "15"], cwd=ROOT)
             for priority in ("first", "leftover")]
    for user in users:
        assert user.wait(timeout=60) == 0

    state = control.state()
    assert state["calls"]["locked"] == 30
    assert state["rejected_429"] == 0
    # Counted by the supplier per second of the clock: at most the budget, plus one a slot may
    # bring across a second's edge.
    assert max(state["requests_per_second"].values()) <= 6


def test_a_supplier_throttling_below_the_budget_is_ridden_out(db, broker, supplier, publish):
    sim, control = supplier
    # The setting says 20 a second, the supplier takes 2: its 429s are retried after their Retry-After.
    control.faults(rate_limit={"per_second": 2, "retry_after": 1})
    # Retried every second until it goes through, as the production schedule would, only sooner.
    sync = start_sync(db, broker, sim, SUPPLIER_REQUESTS_PER_SECOND="20", SYNC_RETRY_DELAYS=",".join(["1"] * 30))
    try:
        for order_id in range(1, 5):
            publish(order_messages(order_id, "processing", {order_id * 10: (2001 + order_id, 1)}))
        publish(order_messages(9, "pending", {90: (2010, 3)}))
        wait_until(lambda: len(sent_keys(control)) == 4 and locked(control) == {2010: 3}, timeout=60,
                   what="every order sent and the pending one locked")
        assert control.state()["rejected_429"] > 0
        assert sent_keys(control) == Counter({f"WC-{order_id}": 1 for order_id in range(1, 5)})
    finally:
        sync.stop()
