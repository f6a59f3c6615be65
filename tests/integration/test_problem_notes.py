"""Problems reach the shop owner in the shop: supplier_sync opens and clears them, status_poller's
problem notes loop writes one private note per problem and one more when it clears.
Real RabbitMQ and PostgreSQL, both simulators over HTTP."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from shared.clients.shop import WooCommerceClient
from services.status_poller.shop_watch.problem_notes import ProblemNotes
from simulators.shop import start_in_thread as start_shop
from tests.conftest import queue_depth
from tests.integration.sync_harness import SyncHarness, order_messages

CK, CS = "ck_notes", "cs_notes"
LINE = {"product_id": 2101, "variation_id": 0, "quantity": 1, "sku": "SNK-42", "name": "Sneaker", "price": "89.90"}


class World:
    def __init__(self, broker: str, db: str) -> None:
        self.sync = SyncHarness(broker, db)
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        self.shop_client = WooCommerceClient(self.shop.url, CK, CS, timeout=5)
        self.stop = threading.Event()
        self.notes_loop = ProblemNotes(db, self.shop_client, interval=0.2)
        self.thread = threading.Thread(target=self.notes_loop.run, args=(self.stop,), daemon=True)
        self.thread.start()
        with self.sync.engine.begin() as c:  # the catalog as `rewix-sync catalog sync` stores it
            for stock_id in range(1001, 1011):
                c.execute(text("INSERT INTO catalog_models (stock_id, product_id, code, barcode, name, size, availability)"
                               " VALUES (:s, :s, :code, '', 'Trail sneaker', '42', 100)"), {"s": stock_id, "code": f"SNK-{stock_id}"})

    def shop_order(self) -> int:
        return self.shop.state.create_order(status="pending", lines=[LINE])["id"]

    def notes(self, order_id: int) -> list[str]:
        """The order's notes, oldest first (the shop lists them newest first)."""
        return [n["note"] for n in reversed(self.shop.state.notes(order_id))]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.sync.close()
        self.shop.stop()


@pytest.fixture
def world(broker, db):
    w = World(broker, db)
    yield w
    w.close()


def settled(sync: SyncHarness) -> bool:
    return queue_depth(sync.amqp_url, "rewix.order_lines") == 0


def test_a_short_line_makes_one_note_and_one_more_when_reserved_in_full(world):
    sync = world.sync
    sync.control.seed_catalog([{"stock_id": 1008, "availability": 1}])
    order_id = world.shop_order()
    pending = order_messages(order_id, "pending", {1: (1008, 3)}, version=0)
    sync.publish(pending)
    sync.wait_until(lambda: len(world.notes(order_id)) == 1, what="the short note")
    (note,) = world.notes(order_id)
    assert "Trail sneaker" in note and "SNK-1008" in note and "1 of the 3" in note and "3 ordered" in note
    # The same problem again and again (redeliveries, a newer state still short): no second note.
    sync.publish(pending + pending + order_messages(order_id, "on-hold", {1: (1008, 3)}, version=1))
    sync.wait_until(lambda: settled(sync) and sync.line_statuses() == {(order_id, 1): "short"}, what="still short")
    sync.wait_until(lambda: world.notes_loop.run_once() == 0, what="nothing more to write")
    assert len(world.notes(order_id)) == 1

    sync.control.seed_catalog([{"stock_id": 1008, "availability": 5}])
    sync.publish(order_messages(order_id, "on-hold", {1: (1008, 3)}, version=2))
    sync.wait_until(lambda: len(world.notes(order_id)) == 2, what="the cleared note")
    assert "now reserved in full" in world.notes(order_id)[1] and "SNK-1008" in world.notes(order_id)[1]
    sync.publish(order_messages(order_id, "on-hold", {1: (1008, 3)}, version=3))
    sync.wait_until(lambda: settled(sync), what="handled")
    assert world.notes_loop.run_once() == 0 and len(world.notes(order_id)) == 2


def test_a_refused_order_makes_one_note_and_one_more_when_sent(world):
    sync = world.sync
    order_id = world.shop_order()
    sync.publish(order_messages(order_id, "pending", {1: (1009, 1), 2: (1003, 1)}, version=0))
    sync.wait_until(lambda: sync.locks() == {1009: 1, 1003: 1}, what="locked")
    sync.control.faults(poisoned_stock_ids=[1009])  # the supplier stops selling it: the order is refused
    sync.publish(order_messages(order_id, "processing", {1: (1009, 1), 2: (1003, 1)}, version=1))
    sync.wait_until(lambda: len(world.notes(order_id)) == 1, what="the refused note")
    # A refusal dead-letters at once the messages of the batch that sent the order: both lines' when
    # the worker took them together, the last line's alone when it took them one by one (the head
    # alone does not send a paid order: test_supplier_sync.py). One worker takes the queue in order:
    # once an order published after them has converged, they are all settled.
    before = datetime.now(timezone.utc)
    sync.publish(order_messages(order_id + 1000, "pending", {1: (1005, 1)}))
    sync.wait_until(lambda: sync.converged_since(order_id + 1000, before), what="every message of the paid state settled")
    assert queue_depth(sync.amqp_url, "rewix.order_lines.dead") in (1, 2)
    sync.wait_until(lambda: world.notes_loop.run_once() == 0, what="nothing more to write")
    (note,) = world.notes(order_id)
    assert "refused this order" in note and "1009" in note  # dead-lettering it is the same problem: no second note

    sync.control.faults(poisoned_stock_ids=None)
    sync.publish(order_messages(order_id, "processing", {1: (1009, 1), 2: (1003, 1)}, version=2))
    sync.wait_until(lambda: len(sync.supplier_orders()) == 1, what="sent after all")
    sync.wait_until(lambda: len(world.notes(order_id)) == 2, what="the cleared note")
    assert "now sent to the supplier" in world.notes(order_id)[1]
    sync.wait_until(lambda: world.notes_loop.run_once() == 0, what="nothing more to write")
    assert len(world.notes(order_id)) == 2


def test_a_note_carries_no_secret_of_a_supplier_text(world):
    sync = world.sync
    order_id = world.shop_order()
    sync.control.faults(poisoned_stock_ids=[1002])
    sync.publish(order_messages(order_id, "pending", {1: (1002, 1)}))
    sync.wait_until(lambda: len(world.notes(order_id)) == 1, what="the refused model note")
    (note,) = world.notes(order_id)
    assert "refuses Trail sneaker" in note and "SNK-1002" in note
    assert "test-password" not in note and "test-key" not in note


def test_a_dead_lettered_order_makes_one_note_and_one_more_when_it_goes_through(world):
    from tests.conftest import TEST_RETRY_DELAYS

    sync = world.sync
    order_id = world.shop_order()
    # Sent, the connection cut, and the lookup answers 500 all along the retry schedule.
    sync.control.faults(drop_after_create=1, clientkey_errors=[f"WC-{order_id}"])
    sync.publish(order_messages(order_id, "processing", {1: (1004, 1)}))
    sync.wait_until(lambda: queue_depth(sync.amqp_url, "rewix.order_lines.dead") == 1,
                    timeout=sum(TEST_RETRY_DELAYS) + 30, what="dead-lettered")
    sync.wait_until(lambda: len(world.notes(order_id)) == 1, what="the dead letter note")
    (note,) = world.notes(order_id)
    assert "gave up" in note and "SNK-1004" in note and "rewix-sync dlq list" in note

    sync.control.faults(clientkey_errors=None)
    sync.publish(order_messages(order_id, "processing", {1: (1004, 1)}, version=1))
    sync.wait_until(lambda: sync.line_statuses() == {(order_id, 1): "sent"}, what="found at the supplier")
    sync.wait_until(lambda: len(world.notes(order_id)) == 2, what="the cleared note")
    assert "now reserved in full" in world.notes(order_id)[1]
    assert len(sync.supplier_orders()) == 1
    sync.wait_until(lambda: world.notes_loop.run_once() == 0, what="nothing more to write")
    assert len(world.notes(order_id)) == 2


def test_a_notice_is_written_once_however_often_it_is_asked_for(world):
    from sqlalchemy.orm import Session

    from shared.orders.notices import tell_once

    order_id = world.shop_order()
    with Session(world.sync.engine) as session, session.begin():
        assert tell_once(session, order_id, "fitted", "The phone was shortened for the supplier.")
    with Session(world.sync.engine) as session, session.begin():
        # Asked again (a retried send, another worker): nothing changes, the first words stay.
        assert not tell_once(session, order_id, "fitted", "Other words.")
    world.sync.wait_until(lambda: world.notes(order_id) == ["The phone was shortened for the supplier."],
                          what="the notice")
    assert world.notes_loop.run_once() == 0
    with world.sync.engine.begin() as c:
        # Written, then a crash before it was marked: the next pass finds it on the order and only marks it.
        c.execute(text("UPDATE order_notices SET sent_at = NULL WHERE order_id = :o"), {"o": order_id})
    assert world.notes_loop.run_once() == 0
    assert world.notes(order_id) == ["The phone was shortened for the supplier."]
