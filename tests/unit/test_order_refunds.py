"""Refunds, without I/O: what an order needs of the supplier is each line's quantity less what was refunded."""
from __future__ import annotations

import pytest

from shared.orders.events import InvalidOrder, convert, refund_ids, refunded_quantities
from shared.products.mapping import LineRef
from shared.reservations.model import TrackedLine, releases
from tests.recordings import deliveries, delivery_of, rest_answer

JEANS, T_SHIRT = 1001, 1002  # the recorded order's supplier products, as mapped here
MAPPED = {(141, 143): JEANS, (137, 0): T_SHIRT}


def resolve(refs: list[LineRef]) -> dict[LineRef, int]:
    return {ref: MAPPED[(ref.product_id, ref.variation_id)] for ref in refs if (ref.product_id, ref.variation_id) in MAPPED}


def units(conversion) -> dict[int, int]:
    return {m.line.stock_id: m.line.quantity for m in conversion.messages if m.line is not None}


def test_the_recorded_refunds_give_back_one_pair_of_jeans() -> None:
    assert refunded_quantities(rest_answer("refunds of an order (line quantities negative)").body) == {149: 1}


def test_the_recorded_refunded_order_needs_two_pairs_of_jeans_not_three() -> None:
    order = rest_answer("the refunded order").body
    assert [line["quantity"] for line in order["line_items"]] == [3, 1, 1]  # WooCommerce keeps the quantity
    assert refund_ids(order) == [159]
    refunded = refunded_quantities(rest_answer("refunds of an order (line quantities negative)").body)
    assert units(convert(order, "order.updated", resolve, refunded=refunded)) == {JEANS: 2, T_SHIRT: 1}


def test_an_order_whose_refunds_were_not_read_says_so() -> None:
    delivery = delivery_of("order.updated", 157)
    assert not convert(delivery.json(), "order.updated", resolve).refunds_unread  # the first one: no refund yet
    refunded_delivery = [d for d in deliveries()
                         if not d.is_ping and d.topic == "order.updated" and d.json().get("refunds")][-1]
    conversion = convert(refunded_delivery.json(), "order.updated", resolve)
    assert conversion.refunds_unread and units(conversion) == {JEANS: 3, T_SHIRT: 1}
    assert not convert(refunded_delivery.json(), "order.updated", resolve, refunded={}).refunds_unread


def test_a_line_refunded_whole_needs_nothing_and_is_released() -> None:
    order = rest_answer("the refunded order").body
    conversion = convert(order, "order.updated", resolve, refunded={149: 3, 150: 5})
    assert units(conversion) == {JEANS: 0, T_SHIRT: 0}  # still the order's lines: what they held is released
    assert releases(TrackedLine(157, 149, removed=False, order_status="processing", deleted=False, sent=False,
                                quantity=0))
    assert not releases(TrackedLine(157, 149, removed=False, order_status="processing", deleted=False, sent=False,
                                    quantity=2))


def test_refunds_of_amounts_and_of_fees_give_back_no_unit() -> None:
    refunds = [
        {"id": 7, "line_items": []},  # an amount only
        {"id": 8, "line_items": [{"id": 9, "quantity": -1, "meta_data": [{"key": "_other", "value": "x"}]}]},
        {"id": 9, "line_items": [{"id": 10, "quantity": -2, "meta_data": [{"key": "_refunded_item_id", "value": "149"}]},
                                 {"id": 11, "quantity": -1, "meta_data": [{"key": "_refunded_item_id", "value": 149}]}]},
    ]
    assert refunded_quantities(refunds) == {149: 3}


@pytest.mark.parametrize("refunds", [
    {"id": 1},
    [{"id": 1, "line_items": {}}],
    [{"id": 1, "line_items": [{"quantity": 2, "meta_data": [{"key": "_refunded_item_id", "value": "149"}]}]}],
    [{"id": 1, "line_items": [{"quantity": "-1", "meta_data": [{"key": "_refunded_item_id", "value": "149"}]}]}],
    [{"id": 1, "line_items": [{"quantity": -1, "meta_data": [{"key": "_refunded_item_id", "value": "x"}]}]}],
])
def test_refunds_the_shop_did_not_answer_as_refunds_are_refused(refunds) -> None:
    with pytest.raises(InvalidOrder):
        refunded_quantities(refunds)


def test_an_order_listing_refunds_badly_is_not_an_order() -> None:
    order = {**rest_answer("the refunded order").body, "refunds": [{"reason": "no id"}]}
    with pytest.raises(InvalidOrder, match=r"refunds\[0\]\.id"):
        convert(order, "order.updated", resolve)
