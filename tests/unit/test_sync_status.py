"""The sync status the shop owner reads in the order meta and the operator in `rewix-sync orders`: every keyword."""
from __future__ import annotations

import re

import pytest

from shared.clients.rewix import BOOKED, CANCELLED, CONFIRMED, DISPATCHED, FAILED, READY, WORKING_ON
from shared.orders.sync_facts import waiting_for
from shared.orders.sync_status import (
    KEYWORDS, MAX_LENGTH, Line, OrderFacts, SupplierOrder, keyword, supplier_order, sync_status,
)
from shared.orders.vocabulary import REFUSED_ORDER_ERROR


def facts(status: str = "on-hold", *lines: Line, **more) -> OrderFacts:
    return OrderFacts(order_id=1001, shop_status=status, lines=lines, **more)


LOCKED = Line(100001, 2, "locked")
PENDING = Line(100002, 1, "pending")
SHORT = Line(100003, 3, "short", "supplier locked 1 of 3 for stock_id 100003")
SENT = Line(100001, 2, "sent")
RELEASED = Line(100001, 2, "released")


def test_reserved_when_every_line_is_locked() -> None:
    assert sync_status(facts("on-hold", LOCKED)) == "reserved"
    assert sync_status(facts("processing", LOCKED, Line(100004, 1, "locked"))) == "reserved"


def test_pending_while_a_line_is_not_reserved_yet() -> None:
    assert sync_status(facts("pending", LOCKED, PENDING)) == "pending"


def test_short_names_what_is_short_and_never_the_supplier_s_changing_counts() -> None:
    text = sync_status(facts("processing", LOCKED, SHORT, PENDING))
    assert text == "short: stock_id 100003 x3"
    # The supplier holds more of the model now: the order is still short of the same line, the text the same.
    assert sync_status(facts("processing", LOCKED, Line(100003, 3, "short", "supplier locked 2 of 3"))) == text


def test_held_says_how_to_send_it() -> None:
    text = sync_status(facts("processing", LOCKED, held=True))
    assert text == "held: it may have been ordered by hand; to send it: rewix-sync backfill --order 1001 --send-paid"


def test_waiting_names_the_products_it_waits_for() -> None:
    assert sync_status(facts("processing", LOCKED, waiting_for=("MUG-1",))) == "waiting: no product map for MUG-1"
    # Known only as waiting (no line matched at all): still waiting.
    only_waiting = OrderFacts(order_id=7, shop_status=None, waiting_for=waiting_for([[9100, 0, "MUG-1"], [9200, 9201, ""]]))
    assert sync_status(only_waiting) == "waiting: no product map for MUG-1, product 9200 variation 9201"
    assert waiting_for([[1, 0, "A\x1b[2JB "]]) == ("A[2JB",)  # nothing a terminal or a page would obey


@pytest.mark.parametrize(("status", "name"), [
    (BOOKED, "Booked"), (CONFIRMED, "Confirmed"), (WORKING_ON, "Working on"), (READY, "Ready"),
    (DISPATCHED, "Dispatched"),
])
def test_sent_says_the_supplier_s_status(status: int, name: str) -> None:
    order = facts("processing", SENT, supplier=SupplierOrder(status, 4711))
    assert sync_status(order) == f"sent: {name}"
    assert supplier_order(order) == "4711"
    # Completed with the dispatch: still what the supplier says.
    assert sync_status(facts("completed", SENT, supplier=SupplierOrder(status, 4711))) == f"sent: {name}"


@pytest.mark.parametrize("status", ["cancelled", "refunded", "failed", "trash", "completed"])
def test_released_when_it_holds_nothing_any_more(status: str) -> None:
    assert sync_status(facts(status, RELEASED)) == "released"
    assert sync_status(facts(status, LOCKED)) == "released"  # the release is on its way: it holds nothing
    assert supplier_order(facts(status, RELEASED)) == ""


def test_released_when_deleted_or_without_supplier_lines() -> None:
    assert sync_status(facts("processing", LOCKED, deleted=True)) == "released"
    assert sync_status(facts("on-hold")) == "released"
    # Cancelled in the shop after it was sent, and cancelled at the supplier too: nothing left to do.
    both = facts("cancelled", SENT, supplier=SupplierOrder(CANCELLED, 4711, cancelled_in_shop=True))
    assert sync_status(both) == "released"


def test_problems_say_what_a_person_must_look_at() -> None:
    refused = Line(100005, 1, "failed", "supplier refused stock_id 100005: 400 unknown model")
    dead = Line(100006, 1, "dead_lettered", "unparseable")
    whole = Line(100001, 2, "failed", f"{REFUSED_ORDER_ERROR}: 400 bad address")
    assert sync_status(facts("on-hold", LOCKED, refused)) == "problem: the supplier refused stock_id 100005"
    assert sync_status(facts("on-hold", dead)) == "problem: stock_id 100006 failed for good (rewix-sync dlq list)"
    assert sync_status(facts("processing", whole)) == "problem: the supplier refused the order"
    assert sync_status(facts("on-hold", refused, dead, LOCKED)) == (
        "problem: the supplier refused stock_id 100005; stock_id 100006 failed for good (rewix-sync dlq list)")
    # A problem outranks a hold, a wait, a shortage and a cancellation.
    assert sync_status(facts("cancelled", refused, held=True, waiting_for=("X",))).startswith("problem: ")
    assert sync_status(facts("processing", SENT, supplier=SupplierOrder(FAILED, 4711))) == (
        "problem: the supplier's order is Failed")
    assert sync_status(facts("processing", SENT, supplier=SupplierOrder(CANCELLED, 4711))) == (
        "problem: the supplier's order is Cancelled")
    after = facts("cancelled", SENT, supplier=SupplierOrder(READY, 4711, cancelled_in_shop=True))
    assert sync_status(after) == "problem: cancelled in the shop after it was sent; the supplier's order is Ready"


def test_an_order_the_records_do_not_know_reads_empty() -> None:
    assert sync_status(None) == "" and supplier_order(None) == ""
    assert sync_status(OrderFacts(order_id=1, shop_status=None)) == ""
    # Sent, but the supplier's id is not known yet: no supplier order written before there is one.
    assert supplier_order(facts("processing", SENT, supplier=SupplierOrder(BOOKED, None))) == ""


def test_every_text_is_a_keyword_the_plugin_knows_bounded_and_without_a_time() -> None:
    many = tuple(Line(100000 + i, 1, "short", "x") for i in range(40))
    texts = [
        sync_status(facts("on-hold", LOCKED)), sync_status(facts("pending", PENDING)),
        sync_status(facts("processing", *many)), sync_status(facts("processing", LOCKED, held=True)),
        sync_status(facts("processing", LOCKED, waiting_for=tuple("SKU-" + "x" * 60 + str(i) for i in range(9)))),
        sync_status(facts("processing", SENT, supplier=SupplierOrder(BOOKED, 1))),
        sync_status(facts("cancelled", RELEASED)), sync_status(facts("on-hold", Line(1, 1, "dead_lettered"))),
    ]
    assert sorted({keyword(t) for t in texts}) == sorted(KEYWORDS)
    assert all(len(t) <= MAX_LENGTH for t in texts)
    assert sync_status(facts("processing", *many)).endswith("and 35 more")
    assert not any(re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}", t) for t in texts)
