"""Orders waiting for a product map and the shop's own products: the pure parts (no I/O).

shared/products/waiting.py says what an event makes of an order's wait and what a mapping lets go;
shared/products/own.py reads what the owner names; shared/orders/events.py leaves the shop's own
lines out of both the supplier lines and the unmatched ones."""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.orders.events import convert
from shared.products.mapping import OWN, LineRef, Resolution
from shared.products.own import BadTarget, Mark, parse_mark
from shared.products.waiting import FORGET, PICKUP_SOURCE, Summary, Waiting, sort_out, wait_of
from services.admin.health_report import ATTENTION, OK, _waiting_for_map_row
from services.admin.own_marking import Outcome
from services.admin.product_matching import CatalogEntry, ShopItem, match

MUG = LineRef(9100, 0, "MUG-OWN")
BAG = LineRef(2205, 0, "BAG-07")
SNEAKER = LineRef(2101, 2104, "SNK-42")


def resolve(lines: list[LineRef]) -> Mapping[LineRef, Resolution]:
    return {line: {SNEAKER: 70001, MUG: OWN}[line] for line in lines if line in (SNEAKER, MUG)}


def order(status: str = "pending", *refs: LineRef) -> dict[str, Any]:
    return {
        "id": 812, "number": "A-812", "status": status, "date_modified_gmt": "2026-11-26T09:30:00",
        "billing": {}, "shipping": {},
        "line_items": [{"id": i + 1, "product_id": r.product_id, "variation_id": r.variation_id, "sku": r.sku,
                        "quantity": 1} for i, r in enumerate(refs or (SNEAKER, BAG, MUG))],
    }


# -- what ingest makes of a line ---------------------------------------------------------------------


def test_the_shop_s_own_line_is_neither_a_supplier_line_nor_unmatched() -> None:
    conversion = convert(order("processing"), "order.updated", resolve)
    assert [m.line.product_id for m in conversion.messages] == [2101]
    assert conversion.unmatched == (BAG,)


def test_an_open_order_with_an_unmatched_line_waits_on_it() -> None:
    for status in ("pending", "on-hold", "processing"):
        wait = wait_of(convert(order(status), "order.updated", resolve))
        assert json.loads(wait) == {"number": "A-812", "status": status, "lines": [[2205, 0, "BAG-07"]]}


def test_an_order_that_waits_on_nothing_or_is_not_open_forgets_its_wait() -> None:
    assert wait_of(convert(order("pending", SNEAKER, MUG), "order.updated", resolve)) == FORGET
    for status in ("completed", "cancelled", "refunded", "failed", "trash"):
        assert wait_of(convert(order(status), "order.updated", resolve)) == FORGET
    assert wait_of(convert({"id": 812}, "order.deleted", resolve)) == FORGET


def test_what_the_shop_has_not_confirmed_leaves_the_wait_as_it_is() -> None:
    assert wait_of(convert(order(), "order.restored", resolve), unconfirmed=True) is None
    assert wait_of(convert({"id": 812}, "order.deleted", resolve), unconfirmed=True) is None
    assert wait_of(convert(order(status="checkout-draft"), "order.updated", resolve)) is None  # not an order yet


def test_the_pickup_forgets_a_wait_itself_once_its_messages_are_confirmed() -> None:
    assert wait_of(convert(order("pending", SNEAKER), "order.updated", resolve), source=PICKUP_SOURCE) is None
    still = wait_of(convert(order(), "order.updated", resolve), source=PICKUP_SOURCE)
    assert json.loads(still)["lines"] == [[2205, 0, "BAG-07"]]


# -- what a mapping lets go ----------------------------------------------------------------------------


def waiting(order_id: int, *lines: LineRef) -> Waiting:
    return Waiting(order_id, str(order_id), "pending", lines, lookup_version=3)


def test_an_order_with_a_line_that_matches_now_is_picked_up_with_that_line() -> None:
    out = sort_out([waiting(1, BAG, MUG), waiting(2, MUG), waiting(3, BAG)], {BAG: 1003})
    assert [(row.order_id, matched) for row, matched in out.pick_up] == [(1, (BAG,)), (3, (BAG,))]
    assert out.still == {2: (MUG,)}


def test_lines_marked_as_the_shop_s_own_stop_counting_and_an_order_left_with_none_is_let_go() -> None:
    out = sort_out([waiting(1, BAG, MUG), waiting(2, MUG)], {MUG: OWN})
    assert out.pick_up == []
    assert out.still == {1: (BAG,), 2: ()}


# -- what the owner names ------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "mark"), [
    ("42", Mark(product_id=42)),
    (" 42:7 ", Mark(product_id=42, variation_id=7)),
    ("42:0", Mark(product_id=42, variation_id=0)),
    ("MUG-OWN", Mark(sku="MUG-OWN")),
    ("12:AB", Mark(sku="12:AB")),
])
def test_digits_are_ids_and_anything_else_a_sku(given: str, mark: Mark) -> None:
    assert parse_mark(given) == mark


def test_a_sku_of_digits_is_taken_as_a_sku_when_asked() -> None:
    assert parse_mark("12345", as_sku=True) == Mark(sku="12345")


@pytest.mark.parametrize(("given", "why"), [
    ("", "give a SKU"), ("   ", "give a SKU"), ("0", "positive"), ("99999999999999999999", "larger than"),
    ("x" * 201, "at most 200"), ("MUG\x00", "NUL"),
])
def test_what_names_no_product_is_refused_saying_why(given: str, why: str) -> None:
    with pytest.raises(BadTarget, match=why):
        parse_mark(given)


def test_a_mark_names_a_product_with_every_variation_one_variation_or_a_sku() -> None:
    whole, one, by_sku = Mark(product_id=2101), Mark(product_id=2101, variation_id=2104), Mark(sku="SNK-42")
    other_size = LineRef(2101, 2105, "SNK-43")
    assert whole.matches(SNEAKER) and whole.matches(other_size)
    assert one.matches(SNEAKER) and not one.matches(other_size)
    assert by_sku.matches(SNEAKER) and not by_sku.matches(other_size)
    assert not Mark(sku="").matches(LineRef(1, 0, ""))  # a line without SKU matches no SKU mark
    assert [m.describe() for m in (whole, one, Mark(product_id=5, variation_id=0), by_sku)] == [
        "product 2101 (every variation)", "product 2101 variation 2104", "product 5 (the simple product)",
        "SKU SNK-42"]


def test_products_match_leaves_the_shop_s_own_products_unmatched_even_when_the_catalog_has_their_sku() -> None:
    items = [ShopItem(9100, 0, "TEE-RED-M", "Our own tee"), ShopItem(11, 0, "TEE-RED-M", "Supplier tee")]
    report = match(items, [CatalogEntry(100003, "TEE-RED-M", "")], [Mark(product_id=9100)])
    assert [(m.item.product_id, m.stock_id) for m in report.matched] == [(11, 100003)]
    assert report.own == [items[0]] and report.unmatched == []


def test_marking_says_what_was_seen_what_wins_and_what_no_longer_waits() -> None:
    outcome = Outcome(Mark(product_id=2101), True, seen=[SNEAKER], mapped=[(2101, 2104, 70001)], let_go=1)
    assert outcome.lines(undo=False) == [
        "marked product 2101 (every variation) as the shop's own: its order lines are never the supplier's, "
        "and `products unmatched` no longer lists it",
        "seen in orders: product 2101 variation 2104 (SKU SNK-42)",
        "note: the product map maps product 2101 variation 2104 to stock_id 70001, and the product map wins "
        "over this mark: those lines stay the supplier's",
        "1 open order waited only on it and waits for a product map no more",
    ]
    unseen = Outcome(Mark(product_id=12345), True, sku_given="12345")
    assert unseen.lines(undo=False)[1:] == [
        "not seen in any order yet: marked anyway, for when it sells",
        "orders have the SKU 12345 but no product 12345: if you meant the SKU, run "
        "`rewix-sync products own --sku 12345` (and undo this with --undo)",
    ]
    nothing = Outcome(Mark(sku="MUG"), False, other_marks=[Mark(product_id=9100)])
    assert nothing.lines(undo=True) == [
        "SKU MUG was not marked as the shop's own: nothing to undo (marked: product 9100 (every variation))"]


# -- what `status` shows -------------------------------------------------------------------------------


def test_orders_waiting_for_a_map_need_a_person_with_how_many_and_the_oldest() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    assert _waiting_for_map_row(Summary(0), now).state == OK
    row = _waiting_for_map_row(Summary(2, "1042", now - timedelta(hours=3)), now)
    assert row.state == ATTENTION
    assert row.text.startswith("2 open orders wait for a product map (lines that match no supplier model), "
                               "the oldest #1042 for 3 h: `rewix-sync products unmatched` lists the products")
    assert "`products own`" in row.text
    assert _waiting_for_map_row(Summary(1, "7", now), now).text.startswith("1 open order waits for a product map")
