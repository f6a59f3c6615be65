"""The lock work hands paid orders to the send worker, which sends each exactly once (in-memory unit of work).

services/supplier_sync/handler.py with `ask_to_send` publishes nothing here:
the requests are collected and handed to services/supplier_sync/send_worker.py
as the broker would, with tests/unit/fakes.py in place of PostgreSQL and the supplier.
"""
from __future__ import annotations

import pytest

from shared.failures.retry import Ack, DeadLetter
from shared.messaging.consumer import Delivery
from shared.messaging.messages import ConvergeMessage, SendOrderMessage
from services.supplier_sync.__main__ import LONGEST_PACE, lock_pace
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.send_worker import OrderSendHandler
from tests.unit.fakes import FakeDatabase, FakeShop, FakeSupplier
from tests.unit.test_supplier_sync_convergence import REFUSED, order


def deliveries(messages) -> list[Delivery]:
    return [Delivery(body=m.to_bytes(), message_id=m.message_id, headers={}, delivery_tag=n, redelivered=False)
            for n, m in enumerate(messages, 1)]


class CountingBudget:
    """Notes on the timeline when slots are reserved and released."""

    def __init__(self, timeline: list[str]) -> None:
        self.timeline = timeline

    def spend(self, priority: str) -> None:
        return None

    def reserve(self, count: int) -> None:
        self.timeline.append(f"reserve {count}")

    def release(self) -> None:
        self.timeline.append("release")


class Split:
    """The lock work and the send worker on one fake database and supplier, with the queues between them."""

    def __init__(self) -> None:
        self.db = FakeDatabase()
        self.supplier = FakeSupplier({1001: 10, 1002: 10, REFUSED: 10}, timeline=self.db.timeline)
        self.send_queue: list[SendOrderMessage] = []
        self.converge_queue: list[ConvergeMessage] = []
        self.lines = OrderLineHandler(self.db.units, self.supplier, FakeShop(self.db.timeline),
                                      ask_to_send=lambda ids: self.send_queue.extend(SendOrderMessage(order_id=i) for i in ids))
        self.budget = CountingBudget(self.db.timeline)
        self.sends = OrderSendHandler(
            OrderLineHandler(self.db.units, self.supplier),
            lambda ids: self.converge_queue.append(ConvergeMessage(source="send", stock_ids=sorted(ids))),
            self.budget,
        )

    def lock(self, messages) -> list:
        return self.lines(deliveries(messages))

    def send_all(self) -> list:
        batch, self.send_queue = self.send_queue, []
        return self.sends(deliveries(batch))

    def converge_after_sends(self) -> list:
        batch, self.converge_queue = self.converge_queue, []
        return self.lines(deliveries(batch))

    def calls(self, kind: str) -> list[str]:
        return [entry for entry in self.db.timeline if entry.startswith(kind + " ")]


@pytest.fixture
def split() -> Split:
    return Split()


def test_the_lock_work_locks_and_asks_for_the_send_without_calling_the_dropshipping_api(split):
    assert split.lock(order(1, "processing", {11: (1001, 2)}) + order(2, "pending", {21: (1001, 1)})) == [Ack(), Ack()]

    assert split.calls("set") == ["set {1001: 3}"]
    assert split.calls("send") == []
    assert [m.order_id for m in split.send_queue] == [1]


def test_the_send_worker_sends_once_and_asks_the_lock_work_to_set_what_is_left(split):
    split.lock(order(1, "processing", {11: (1001, 2)}) + order(2, "pending", {21: (1001, 1)}))

    assert split.send_all() == [Ack()]

    assert split.calls("send") == ["send WC-1"]
    # Its two requests were reserved before any lock was taken, and what was left given back after.
    timeline = split.db.timeline[split.db.timeline.index("reserve 2"):]
    assert timeline[0] == "reserve 2" and timeline[-1] == "release"
    assert timeline.index("send WC-1") > 0
    assert [m.stock_ids for m in split.converge_queue] == [[1001]]
    assert split.converge_after_sends() == [Ack()]
    # Order 2's unit only is held once order 1 took its two.
    assert split.supplier.locked == {1001: 1}
    assert {k: r["sync_status"] for k, r in split.db.rows("order_lines").items()} == {(1, 11): "sent", (2, 21): "locked"}


def test_units_a_send_took_are_set_again_even_when_new_orders_need_as_many(split):
    """A send that first set its model (another send had left it unknown) leaves no row saying the
    supplier holds what it held before the send: a pending order needing exactly the units the send
    took would find the model "in step" and the supplier would stay short."""
    split.lock(order(1, "processing", {11: (1001, 1)}) + order(2, "processing", {21: (1001, 1)})
               + order(3, "pending", {31: (1001, 2)}))
    assert split.supplier.locked == {1001: 4}

    # Order 1's send leaves 1001 unknown; order 2's sets it to 3 (orders 2 and 3), then takes one.
    assert split.send_all() == [Ack(), Ack()]
    assert split.calls("set") == ["set {1001: 4}", "set {1001: 3}"]
    assert split.supplier.locked == {1001: 2}

    # Before the lock work reads the send worker's requests, a new order needs the one unit order 2 took.
    split.lock(order(4, "pending", {41: (1001, 1)}))
    split.converge_after_sends()

    assert split.supplier.locked == {1001: 3}  # orders 3 and 4


def test_a_request_coming_twice_sends_once(split):
    split.lock(order(1, "processing", {11: (1001, 2)}))
    split.send_queue *= 2  # a redelivery, or the lock work asking again after a crash

    assert split.send_all() == [Ack(), Ack()]

    assert split.calls("send") == ["send WC-1"]


def test_a_request_for_an_order_cancelled_since_sends_nothing(split):
    split.lock(order(1, "processing", {11: (1001, 2)}))
    split.lock(order(1, "cancelled", {11: (1001, 2)}, second=1))

    assert split.send_all() == [Ack()]

    assert split.calls("send") == []
    assert split.converge_queue == []


def test_an_order_the_supplier_refuses_is_dead_lettered_with_its_reason(split):
    split.lock(order(1, "processing", {11: (1001, 2)}))
    split.supplier.stock[1001] = 1  # sold elsewhere meanwhile: the supplier answers 412 to the order

    (outcome,) = split.send_all()

    assert isinstance(outcome, DeadLetter)
    assert "refused the dropshipping order" in outcome.reason


def test_a_send_request_given_up_marks_its_lines_and_tells_the_owner(split):
    split.lock(order(1, "processing", {11: (1001, 2), 12: (1002, 1)}))
    (request,) = deliveries(split.send_queue)

    split.sends.dead_lettering([(request, "gave up after 6 attempts: supplier: HTTP 503")])

    states = {k: r["sync_status"] for k, r in split.db.rows("order_lines").items()}
    assert states == {(1, 11): "dead_lettered", (1, 12): "dead_lettered"}
    problems = list(split.db.rows("order_problems").values())
    assert len(problems) == 2  # one per line, as for lines' messages given up
    assert all(p["kind"] == "dead_lettered" and "HTTP 503" in p["note"] for p in problems)


def test_the_lock_work_paces_itself_to_a_quarter_of_the_budget_and_never_longer_than_its_bound():
    assert lock_pace(0) == 0.0
    assert lock_pace(10) == pytest.approx(0.4)
    assert lock_pace(1) == LONGEST_PACE
