"""Record -> plan -> apply for whole batches through the in-memory unit of work: no database, no network.

supplier_sync's handler (services/supplier_sync/handler.py) runs as the service
runs it, with tests/unit/fakes.py in place of PostgreSQL, the supplier and the
shop. The timeline says what was committed before which supplier call.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import OperationalError

from shared.failures.retry import Ack, DeadLetter
from shared.messaging.consumer import Delivery
from shared.messaging.messages import OrderLineMessage, ShopRecipient, SupplierLine
from shared.reservations.repository import UNKNOWN_NEEDED
from services.supplier_sync.handler import OrderLineHandler
from tests.unit.fakes import FakeDatabase, FakeShop, FakeSupplier, WouldWait

BASE_DATE = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
RECIPIENT = ShopRecipient(name="Ada Rossi", phone="+39 333 1234567", address_1="Via Roma 1", postcode="20121",
                          city="Milano", state="MI", country="IT")
REFUSED = 1666  # a model the supplier does not sell


@dataclass
class World:
    db: FakeDatabase
    supplier: FakeSupplier
    shop: FakeShop
    handler: OrderLineHandler

    def deliver(self, messages: list[OrderLineMessage]) -> list:
        batch = [Delivery(body=m.to_bytes(), message_id=m.message_id, headers={}, delivery_tag=n, redelivered=False)
                 for n, m in enumerate(messages, 1)]
        return self.handler(batch)

    def line_states(self) -> dict[tuple[int, int], str]:
        return {key: line["sync_status"] for key, line in self.db.rows("order_lines").items()}

    def stock_locks(self) -> dict[int, tuple[int, int]]:
        return {stock_id: (lock.needed, lock.locked) for stock_id, lock in self.db.rows("stock_locks").items()}

    def calls(self, kind: str) -> list[str]:
        return [entry for entry in self.db.timeline if entry.startswith(kind + " ")]


@pytest.fixture
def world() -> World:
    db = FakeDatabase()
    supplier = FakeSupplier({1001: 10, 1002: 10, 1003: 10, REFUSED: 10}, refused={REFUSED}, timeline=db.timeline)
    shop = FakeShop(db.timeline)
    return World(db, supplier, shop, OrderLineHandler(db.units, supplier, shop))


def order(order_id: int, status: str, lines: dict[int, tuple[int, int]], *, second: int = 0,
          source: str = "webhook") -> list[OrderLineMessage]:
    """The messages of one state of an order (line_id -> (stock_id, quantity)); the first is the head."""
    common = dict(topic="order.updated", order_id=order_id, order_number=f"WC-{order_id}", status=status,
                  date_modified_gmt=BASE_DATE + timedelta(seconds=second), event_id=f"event-{order_id}-{second}",
                  line_count=len(lines), source=source)
    head = dict(supplier_line_ids=sorted(lines), recipient=RECIPIENT)
    return [
        OrderLineMessage(line=SupplierLine(line_id=line_id, product_id=stock_id, stock_id=stock_id, quantity=quantity),
                         **common, **(head if index == 0 else {"head": False}))
        for index, (line_id, (stock_id, quantity)) in enumerate(sorted(lines.items()))
    ]


def test_a_batch_of_pending_orders_is_locked_with_one_set(world):
    batch = (order(1, "pending", {11: (1001, 2)}) + order(2, "pending", {21: (1001, 1), 22: (1002, 3)})
             + order(3, "on-hold", {31: (1002, 1)}))

    assert world.deliver(batch) == [Ack()] * 4

    assert world.calls("set") == ["set {1001: 3, 1002: 4}"]
    assert world.supplier.locked == {1001: 3, 1002: 4}
    assert world.stock_locks() == {1001: (3, 3), 1002: (4, 4)}
    assert set(world.line_states().values()) == {"locked"}
    # The same batch again: the supplier is in step, nothing is asked of it.
    assert world.deliver(batch) == [Ack()] * 4
    assert len(world.calls("set")) == 1


def test_a_paid_order_is_sent_once_under_its_key(world):
    world.deliver(order(1, "pending", {11: (1001, 2)}))
    paid = order(1, "processing", {11: (1001, 2)}, second=1)

    assert world.deliver(paid) == [Ack()]

    (sent,) = world.supplier.received
    assert (sent.key, sent.items, sent.recipient.name, sent.recipient.city) == ("WC-1", {1001: 2}, "Ada Rossi", "Milano")
    assert {o: (row["key"], row["items"]) for o, row in world.db.rows("supplier_orders").items()} == {1: ("WC-1", {1001: 2})}
    assert world.line_states() == {(1, 11): "sent"}
    # The sent units left the growing order with the order; nothing is held for it any more.
    assert world.supplier.locked == {}
    assert world.stock_locks() == {1001: (0, 0)}
    # Delivered again (a redelivery, a replay): nothing is sent again.
    assert world.deliver(paid) == [Ack()]
    assert world.calls("send") == ["send WC-1"]


def test_a_cancelled_order_is_released(world):
    world.deliver(order(1, "pending", {11: (1001, 2)}) + order(2, "pending", {21: (1001, 1)}))
    assert world.supplier.locked == {1001: 3}

    assert world.deliver(order(1, "cancelled", {11: (1001, 2)}, second=1)) == [Ack()]

    assert world.supplier.locked == {1001: 1}
    assert world.line_states() == {(1, 11): "released", (2, 21): "locked"}
    assert world.stock_locks() == {1001: (1, 1)}


def test_a_line_the_newer_state_no_longer_lists_is_released_and_an_older_state_changes_nothing(world):
    world.deliver(order(1, "pending", {11: (1001, 1), 12: (1002, 2)}, second=1))

    assert world.deliver(order(1, "pending", {11: (1001, 3)}, second=2)) == [Ack()]  # the head lists line 11 only
    assert world.supplier.locked == {1001: 3}
    assert world.line_states() == {(1, 11): "locked", (1, 12): "released"}
    assert world.db.rows("order_lines")[(1, 12)]["removed"]

    # The first state again, late: older than what is recorded, so nothing changes.
    assert world.deliver(order(1, "pending", {11: (1001, 1), 12: (1002, 2)}, second=1)) == [Ack()] * 2
    assert world.supplier.locked == {1001: 3}
    assert world.db.rows("order_lines")[(1, 11)]["quantity"] == 3


def test_a_state_contradicting_the_recorded_one_of_the_same_date_asks_the_shop(world):
    world.deliver(order(1, "pending", {11: (1001, 1)}))

    # Paid, claiming the very second the pending state was saved in: neither can be told newer.
    assert world.deliver(order(1, "processing", {11: (1001, 1)})) == [Ack()]  # acked once the shop's answer is out

    assert world.shop.asked == [1]
    assert world.db.rows("shop_orders")[1]["status"] == "pending"
    assert world.supplier.received == []
    # The shop's answer comes back marked as its confirmation: at the same date, it wins.
    assert world.deliver(order(1, "processing", {11: (1001, 1)}, source="confirmation")) == [Ack()]
    assert world.calls("send") == ["send WC-1"]
    assert world.shop.asked == [1]


def test_a_model_the_supplier_refuses_fails_alone(world):
    world.db.tables["catalog"][REFUSED] = ("Silk scarf", "", "SC-1")
    batch = (order(1, "pending", {11: (1001, 1)}) + order(2, "pending", {21: (REFUSED, 1)})
             + order(3, "pending", {31: (1002, 1)}))

    outcomes = world.deliver(batch)

    assert outcomes[0] == Ack() and outcomes[2] == Ack()
    assert isinstance(outcomes[1], DeadLetter) and f"supplier refused stock_id {REFUSED}" in outcomes[1].reason
    # One call for all, then split until the refused model is alone.
    assert world.calls("set") == [f"set {{1001: 1, 1002: 1, {REFUSED}: 1}}", "set {1001: 1}",
                                  f"set {{1002: 1, {REFUSED}: 1}}", "set {1002: 1}", f"set {{{REFUSED}: 1}}"]
    assert world.supplier.locked == {1001: 1, 1002: 1}
    assert world.line_states() == {(1, 11): "locked", (2, 21): "failed", (3, 31): "locked"}
    # Its supplier state stays "not known", so the next convergence asks again.
    assert world.stock_locks() == {1001: (1, 1), 1002: (1, 1), REFUSED: (UNKNOWN_NEEDED, 0)}
    (problem,) = world.db.rows("order_problems").values()
    assert (problem["order_id"], problem["line_id"], problem["kind"]) == (2, 21, "refused_model")
    assert "Silk scarf" in problem["note"] and problem["cleared_at"] is None


def test_every_transaction_of_a_convergence_is_committed_explicitly_and_in_order(world):
    world.deliver(order(1, "pending", {11: (1001, 1)}))
    assert world.db.timeline == [
        "commit order_lines, shop_orders",  # the batch recorded
        "commit stock_locks",  # the model marked "not known" before the call that changes it
        "set {1001: 1}",
        "commit order_lines, shop_orders, stock_locks",  # the convergence: the answer, the line, the order
    ]
    world.db.timeline.clear()

    world.deliver(order(1, "processing", {11: (1001, 1)}, second=1))
    assert world.db.timeline == [
        "commit order_lines, shop_orders",
        "commit stock_locks",  # the send takes the model's units out of the growing order
        "commit supplier_keys",  # the key frozen before any request
        "commit supplier_keys",  # the mark that the order may exist at the supplier, before the POST
        "send WC-1",
        "find WC-1",
        "set {1001: 0}",  # the rest of the model, still marked "not known" from before the send
        "commit order_lines, shop_orders, stock_locks, supplier_orders",
    ]


def test_a_convergence_whose_commit_is_lost_after_the_supplier_answered_sets_the_model_again(world):
    """The supplier was set and the transaction saying so never committed: the old row must not be trusted."""
    world.deliver(order(1, "pending", {11: (1001, 2)}))
    world.db.fail_next_commit({"stock_locks", "order_lines"})

    with pytest.raises(OperationalError):
        world.deliver(order(2, "pending", {21: (1001, 2)}))

    assert world.supplier.locked == {1001: 4}  # the supplier took it
    assert world.stock_locks() == {1001: (UNKNOWN_NEEDED, 2)}  # the mark committed before the call stayed
    assert world.line_states() == {(1, 11): "locked", (2, 21): "pending"}  # nothing of the convergence did
    assert world.db.commits()[-1] == "rollback order_lines, shop_orders, stock_locks"
    # Cancelled before the batch comes back: 2 are needed again, what the lost row said is held.
    world.deliver(order(2, "cancelled", {21: (1001, 2)}, second=1))
    assert world.supplier.locked == {1001: 2}
    assert world.stock_locks() == {1001: (2, 2)}


def test_a_send_whose_record_is_lost_is_found_by_its_key_and_never_sent_twice(world):
    world.deliver(order(1, "pending", {11: (1001, 1)}))
    world.db.fail_next_commit({"supplier_orders"})
    paid = order(1, "processing", {11: (1001, 1)}, second=1)

    with pytest.raises(OperationalError):
        world.deliver(paid)

    assert list(world.supplier.orders) == ["WC-1"]
    assert world.db.rows("supplier_orders") == {}
    key = world.db.rows("supplier_keys")[1]
    assert key["key"] == "WC-1" and key["first_sent_at"] is not None  # both committed before the POST
    # The message comes back: the key is looked up first, the order found and recorded.
    assert world.deliver(paid) == [Ack()]
    assert world.calls("send") == ["send WC-1"]
    assert world.db.rows("supplier_orders")[1]["key"] == "WC-1"
    assert world.line_states() == {(1, 11): "sent"}


def test_an_order_sent_before_a_lost_commit_and_cancelled_meanwhile_is_found_and_flagged(world):
    world.deliver(order(1, "pending", {11: (1001, 1)}))
    world.db.fail_next_commit({"supplier_orders"})
    with pytest.raises(OperationalError):
        world.deliver(order(1, "processing", {11: (1001, 1)}, second=1))

    assert world.deliver(order(1, "cancelled", {11: (1001, 1)}, second=2)) == [Ack()]

    assert world.calls("send") == ["send WC-1"]
    (recorded,) = world.db.rows("supplier_orders").values()
    assert recorded["key"] == "WC-1" and recorded["cancelled_in_shop"]
    assert recorded["last_error"] == (
        "the shop order was cancelled after supplier order 7001 was sent: cancel it on the supplier's platform")


def test_dead_lettered_lines_are_marked_and_told_in_one_commit(world):
    messages = order(1, "pending", {11: (1001, 1)})
    world.deliver(messages)
    world.db.timeline.clear()

    world.handler.dead_lettering([(Delivery(body=messages[0].to_bytes(), message_id="m", headers={}, delivery_tag=1,
                                            redelivered=False), "supplier failed on stock_id 1001: HTTP 503")])

    assert world.line_states() == {(1, 11): "dead_lettered"}
    (problem,) = world.db.rows("order_problems").values()
    assert problem["kind"] == "dead_lettered" and "HTTP 503" in problem["note"]
    assert world.db.timeline == ["commit order_lines, order_problems"]


# --- the fake itself: as unforgiving as the database ----------------------------------------------------


def test_nothing_is_kept_of_a_unit_that_raised_or_was_not_committed():
    db = FakeDatabase()
    with db.units() as uow:
        uow.reservations.forget_supplier_state({1001})
    with pytest.raises(RuntimeError), db.units() as uow:
        uow.reservations.forget_supplier_state({1002})
        raise RuntimeError("after the write, before the commit")
    with db.units() as uow:
        uow.reservations.forget_supplier_state({1003})
        uow.commit()
        uow.reservations.forget_supplier_state({1004})  # after the commit, and never committed

    assert list(db.rows("stock_locks")) == [1003]
    assert db.commits() == ["rollback stock_locks", "rollback stock_locks", "commit stock_locks", "rollback stock_locks"]


def test_a_unit_sees_what_others_committed_and_waits_on_what_they_hold():
    db = FakeDatabase()
    with db.units() as first:
        first.reservations.lock({1001})
        first.reservations.forget_supplier_state({1002})
        with db.units() as second:
            with pytest.raises(WouldWait):
                second.reservations.lock({1001})
            with pytest.raises(WouldWait):
                second.reservations.forget_supplier_state({1002})
            second.reservations.forget_supplier_state({1003})
            second.commit()
        assert set(first.reservations.load({1002, 1003}, set()).locks) == {1002, 1003}
        first.commit()
    with db.units() as third:
        third.reservations.lock({1001})  # the locks ended with their transaction
        third.reservations.forget_supplier_state({1002})
        third.commit()
