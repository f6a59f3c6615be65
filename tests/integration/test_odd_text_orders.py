"""An order is never refused for its text, on the real path: the shop simulator delivers the order to a
running ingest, RabbitMQ carries it to supplier_sync, which sends it to the supplier simulator with every
text fitted to the supplier's limits, and status_poller's notes loop tells the shop owner once what was
shortened. Real PostgreSQL and RabbitMQ."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shared.clients.rewix.fitting import cut_on_word
from shared.clients.shop import WooCommerceClient
from shared.db import session_scope
from shared.products.mapping import import_product_map
from services.status_poller.shop_watch.problem_notes import ProblemNotes
from simulators.shop import start_in_thread as start_shop
from simulators.shop.orders import make_order
from tests.integration.sync_harness import SyncHarness
from tests.integration.ingest_process import SECRET, Ingest
from tests.unit.test_rewix_fitting import PHONE_72, STREET_230

CK, CS = "ck_odd_text", "cs_odd_text"
LINE = {"product_id": 2101, "variation_id": 0, "quantity": 1, "sku": "SNK-42", "name": "Sneaker", "price": "89.90"}
STOCK_ID = 1001  # a model of the supplier simulator (SyncHarness)
FITTED_NOTE = "Sent to the supplier with shortened fields"


class World:
    """The shop simulator firing its webhooks at ingest, supplier_sync and the supplier simulator, the notes loop."""

    def __init__(self, broker: str, db: str) -> None:
        with session_scope(db) as session:
            import_product_map(session, [(LINE["product_id"], 0, STOCK_ID)])
        self.sync = SyncHarness(broker, db)
        self.shop = start_shop(consumer_key=CK, consumer_secret=CS)
        # The shop's own site is the one its deliveries name as their source.
        self.ingest = Ingest(AMQP_URL=broker, DATABASE_URL=db, WC_URL=self.shop.url)
        self.shop.webhooks.configure(url=self.ingest.url + "/webhooks/woocommerce", secret=SECRET, enabled=True)
        self.notes_loop = ProblemNotes(db, WooCommerceClient(self.shop.url, CK, CS, timeout=5), interval=0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.notes_loop.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def paid_order(self, **fields: Any) -> int:
        """A paid order made in the shop (its order.created delivery goes to ingest); its id."""
        order_id = self.shop.state.create_order(status="processing", lines=[LINE], **fields)["id"]
        assert self.shop.webhooks.wait_idle(15), "the shop's delivery still waits"
        return order_id

    def answers(self, order_id: int) -> list[int | None]:
        """What ingest answered each of the order's deliveries."""
        return [d["status"] for d in self.shop.webhooks.deliveries() if d["order_id"] == order_id]

    def sent(self, order_id: int) -> dict[str, Any]:
        """The dropshipping order the supplier simulator received for the shop order, once it has it."""
        key = str(order_id)
        self.sync.wait_until(lambda: any(o["key"] == key for o in self.sync.supplier_orders()),
                             what=f"order {order_id} sent to the supplier")
        [order] = [o for o in self.sync.supplier_orders() if o["key"] == key]
        return order

    def fitted_notes(self, order_id: int) -> list[str]:
        return [n["note"] for n in self.shop.state.notes(order_id) if FITTED_NOTE in n["note"]]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        try:
            assert self.ingest.stop() == 0
        finally:
            self.ingest.close()
            self.shop.stop()
            self.sync.close()


@pytest.fixture
def world(broker: str, db: str) -> Iterator[World]:
    w = World(broker, db)
    yield w
    w.close()


def test_a_long_phone_and_street_are_sent_fitted_and_the_owner_gets_one_note(world: World) -> None:
    order_id = world.paid_order(shipping={"phone": PHONE_72, "address_1": STREET_230, "address_2": ""})
    assert world.answers(order_id) == [200]

    recipient = world.sent(order_id)["recipient"]
    assert recipient["phone"] == "+39 333 1234567"  # the number; the words were for a person
    street = cut_on_word(STREET_230, 200)
    assert recipient["street_name"] == street and STREET_230.startswith(street) and len(street) <= 200
    assert (recipient["recipient"], recipient["city"], recipient["countrycode"]) == ("Zoë Müller-Ørsted", "Łódź", "PL")

    world.sync.wait_until(lambda: world.fitted_notes(order_id), what="the note on the shop order")
    [note] = world.fitted_notes(order_id)
    assert 'phone from 72 to 15 characters ("+39 333 1234567")' in note
    assert f'street from 230 to {len(street)} characters ("{street}")' in note
    assert [n["customer_note"] for n in world.shop.state.notes(order_id)] == [False]  # private, and alone

    # The order changes in the shop after it was sent (a delivery more), the loop runs again: one note still.
    world.shop.state.admin_edit(order_id, {"customer_note": "Leave it with the neighbour"})
    assert world.shop.webhooks.wait_idle(15) and world.answers(order_id) == [200, 200]
    world.sync.wait_until(lambda: world.notes_loop.run_once() == 0, what="nothing more to write")
    assert len(world.fitted_notes(order_id)) == 1 and len(world.sync.supplier_orders()) == 1


def test_a_nul_in_the_customer_note_is_answered_200_and_the_order_sent(world: World) -> None:
    order_id = world.paid_order(customer_note="Ring twice\x00, then wait")
    assert world.answers(order_id) == [200]
    assert world.sent(order_id)["recipient"]["notes"] == "Ring twice, then wait"
    # Nothing was shortened: no note for the owner.
    world.sync.wait_until(lambda: world.notes_loop.run_once() == 0, what="nothing to write")
    assert world.shop.state.notes(order_id) == []


def test_a_lone_surrogate_is_answered_200_and_the_order_sent(world: World) -> None:
    # PHP writes no lone surrogate, but JSON can carry one: a body that has one is still an order.
    order = make_order(5301, status="processing", lines=[LINE], customer_note="Ring \ud800twice",
                       shipping={"first_name": "Zo\udce9", "address_1": "Via Roma 1\ud83d"})
    body = json.dumps(order, ensure_ascii=True).encode("ascii")
    assert b"\\ud800" in body
    answer = world.ingest.post(body, "order.created", headers={"X-WC-Webhook-Source": world.shop.url + "/"})
    assert answer.status_code == 200, answer.text
    recipient = world.sent(5301)["recipient"]
    assert (recipient["notes"], recipient["recipient"], recipient["street_name"]) == (
        "Ring twice", "Zo Müller-Ørsted", "Via Roma 1")


def test_a_customer_note_over_2000_characters_is_cut_for_the_supplier_and_the_owner_told(world: World) -> None:
    note = "Bitte beim Nachbarn klingeln, Hinterhaus, 3. Stock. " * 60  # 3,120 characters
    order_id = world.paid_order(customer_note=note)
    sent = world.sent(order_id)["recipient"]["notes"]
    assert sent == cut_on_word(note, 2000) and sent.endswith("Stock. Bitte beim Nachbarn")
    world.sync.wait_until(lambda: world.fitted_notes(order_id), what="the note on the shop order")
    [told] = world.fitted_notes(order_id)
    assert f"customer note from 3,120 to {len(sent):,} characters" in told
    assert note[:200] not in told  # the owner has the note; it is not quoted back
