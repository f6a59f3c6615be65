"""Refunds in the shop simulator, as WooCommerce's wc_create_refund() and its REST refunds
controller make and show them: the order keeps its lines, lists its refunds apart, and only
GET /orders/{id}/refunds has the refunded quantities, negative."""
from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from shared.clients.shop.auth import shop_auth
from simulators.shop import ShopControl, ShopSimulator, start_in_thread

KEY = "ck_refunds"
SECRET = "cs_refunds-secret"
JEANS = {"product_id": 141, "variation_id": 143, "quantity": 3, "sku": "RX-JEANS-M", "name": "Slim jeans - M",
         "price": "49.00", "attributes": {"size": "M"}}
TSHIRT = {"product_id": 137, "variation_id": 0, "quantity": 1, "sku": "RX-TSHIRT-U", "name": "Basic T-shirt",
          "price": "15.00"}
FREE_GIFT = {"product_id": 150, "variation_id": 0, "quantity": 1, "sku": "GIFT", "name": "Free gift", "price": "0"}


@pytest.fixture(scope="module")
def sim_module() -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET) as simulator:
        yield simulator


@pytest.fixture
def sim(sim_module: ShopSimulator) -> ShopSimulator:
    sim_module.reset()
    sim_module.webhooks.configure(enabled=False)
    return sim_module


@pytest.fixture
def control(sim: ShopSimulator) -> ShopControl:
    return ShopControl(sim.url)


def get(sim: ShopSimulator, path: str, **params: Any) -> requests.Response:
    return requests.get(sim.url + "/wp-json/wc/v3" + path, params=params, auth=shop_auth(sim.url, KEY, SECRET),
                        timeout=5)


def test_a_partial_refund_keeps_the_lines_and_is_listed_apart(sim: ShopSimulator, control: ShopControl) -> None:
    order = control.create_order(status="processing", lines=[JEANS, TSHIRT])
    jeans = order["line_items"][0]
    refund = control.refund(order["id"], {jeans["id"]: 1}, reason="one pair returned")

    after = get(sim, f"/orders/{order['id']}").json()
    assert [line["quantity"] for line in after["line_items"]] == [3, 1]
    assert after["total"] == order["total"] and after["status"] == "processing"
    # The price of one pair with its 22 % tax.
    assert refund["amount"] == "59.78"
    assert after["refunds"] == [{"id": refund["id"], "reason": "one pair returned", "total": "-59.78"}]

    listed = get(sim, f"/orders/{order['id']}/refunds")
    assert (listed.headers["X-WP-Total"], listed.headers["X-WP-TotalPages"]) == ("1", "1")
    [line] = listed.json()[0]["line_items"]
    assert (line["quantity"], line["total"], line["subtotal"], line["total_tax"]) == (-1, "-49.00", "-49.00", "-10.78")
    assert line["price"] == 49 and line["id"] != jeans["id"]
    assert (line["product_id"], line["variation_id"], line["sku"]) == (141, 143, "RX-JEANS-M")
    assert line["meta_data"] == [{"id": line["meta_data"][0]["id"], "key": "_refunded_item_id",
                                  "value": str(jeans["id"]), "display_key": "_refunded_item_id",
                                  "display_value": str(jeans["id"])}]
    assert get(sim, f"/orders/{order['id']}/refunds/{refund['id']}").json() == refund


def test_refunds_share_the_order_id_sequence_and_are_not_orders(sim: ShopSimulator, control: ShopControl) -> None:
    first = control.create_order(lines=[TSHIRT])
    second = control.create_order(lines=[TSHIRT])
    refund = control.refund(first["id"], {first["line_items"][0]["id"]: 1})
    third = control.create_order(lines=[TSHIRT])
    assert (refund["id"], third["id"]) == (second["id"] + 1, second["id"] + 2)
    ids = [o["id"] for o in get(sim, "/orders", per_page=100, orderby="id", order="asc").json()]
    assert ids == [first["id"], second["id"], third["id"]]
    assert get(sim, "/orders", include=f"{first['id']},{refund['id']}").json()[0]["id"] == first["id"]
    assert get(sim, f"/orders/{refund['id']}").status_code == 404
    assert sum(row["total"] for row in get(sim, "/reports/orders/totals").json()) == 3


def test_newest_refund_first_and_each_moves_date_modified_and_fires_order_updated(
    sim: ShopSimulator, control: ShopControl
) -> None:
    order = control.create_order(status="processing", lines=[JEANS])
    sim.webhooks.configure(enabled=True, url="http://127.0.0.1:9/nowhere", secret="s" * 32)
    before = sim.webhooks.deliveries()
    jeans = order["line_items"][0]["id"]
    one = control.refund(order["id"], {jeans: 1})
    modified = sim.state.order(order["id"])["date_modified_gmt"]  # type: ignore[index]
    two = control.refund(order["id"], {jeans: 1}, reason="second")
    after = sim.state.order(order["id"])
    assert after is not None
    assert order["date_modified_gmt"] < modified < after["date_modified_gmt"]
    assert [r["id"] for r in after["refunds"]] == [two["id"], one["id"]]
    assert [r["id"] for r in get(sim, f"/orders/{order['id']}/refunds").json()] == [two["id"], one["id"]]
    assert control.wait_deliveries(10)
    fired = sim.webhooks.deliveries()[len(before):]
    assert [(d["topic"], d["order_id"]) for d in fired] == [("order.updated", order["id"])] * 2


def test_refunding_everything_left_sets_the_order_refunded(sim: ShopSimulator, control: ShopControl) -> None:
    order = control.create_order(status="processing", lines=[JEANS])
    jeans = order["line_items"][0]["id"]
    first = control.refund(order["id"], {jeans: 2})
    assert sim.state.order(order["id"])["status"] == "processing"  # type: ignore[index]
    # The last pair and the shipping: all that is left, as the order screen can refund it.
    left = Decimal(order["total"]) - Decimal(first["amount"])
    control.refund(order["id"], {jeans: 1}, amount=str(left))
    after = get(sim, f"/orders/{order['id']}").json()
    assert after["status"] == "refunded" and [line["quantity"] for line in after["line_items"]] == [3]
    notes = [note["note"] for note in get(sim, f"/orders/{order['id']}/notes").json()]
    assert "Order status changed from Processing to Refunded." in notes


def test_a_free_line_not_yet_refunded_keeps_the_order_open(sim: ShopSimulator, control: ShopControl) -> None:
    """wc_create_refund(): a refund of lines that leaves no money but a free item is partial."""
    order = control.create_order(status="processing", lines=[TSHIRT, FREE_GIFT])
    control.refund(order["id"], {order["line_items"][0]["id"]: 1}, amount=order["total"])
    assert sim.state.order(order["id"])["status"] == "processing"  # type: ignore[index]


def test_an_order_set_refunded_by_hand_is_refunded_whole(sim: ShopSimulator, control: ShopControl) -> None:
    order = control.create_order(status="processing", lines=[TSHIRT])
    control.edit_order(order["id"], status="refunded")
    [refund] = get(sim, f"/orders/{order['id']}/refunds").json()
    assert (refund["amount"], refund["reason"], refund["line_items"]) == (order["total"], "Order fully refunded.", [])
    after = sim.state.order(order["id"])
    assert after is not None and after["refunds"] == [{"id": refund["id"], "reason": "Order fully refunded.",
                                                       "total": "-" + order["total"]}]


@pytest.mark.parametrize(
    ("lines", "amount", "message"),
    [
        ("all+1", None, "left to refund"),
        ("unknown", None, "has no line item"),
        ("zero", None, "positive integer"),
        ("one", "999.00", "Invalid refund amount."),
        ("one", "-1", "Invalid refund amount."),
        ("one", "ten", "Invalid refund amount."),
        ("none", None, "needs lines or an amount"),
    ],
)
def test_what_woocommerce_would_not_refund_is_refused(
    sim: ShopSimulator, control: ShopControl, lines: str, amount: str | None, message: str
) -> None:
    order = control.create_order(status="processing", lines=[JEANS])
    jeans = order["line_items"][0]["id"]
    quantities = {"all+1": {jeans: 4}, "unknown": {jeans + 1000: 1}, "zero": {jeans: 0}, "one": {jeans: 1},
                  "none": {}}[lines]
    with pytest.raises(requests.HTTPError) as refused:
        control.refund(order["id"], quantities, amount=amount)
    assert refused.value.response.status_code == 400
    assert message in refused.value.response.json()["message"]
    assert get(sim, f"/orders/{order['id']}/refunds").json() == []
    assert sim.state.order(order["id"])["refunds"] == []  # type: ignore[index]


def test_the_refund_routes_answer_woocommerces_404s(sim: ShopSimulator, control: ShopControl) -> None:
    order = control.create_order(status="processing", lines=[TSHIRT])
    other = control.create_order(status="processing", lines=[TSHIRT])
    refund = control.refund(order["id"], {order["line_items"][0]["id"]: 1})
    codes = {
        f"/orders/{other['id']}/refunds/{refund['id']}": "woocommerce_rest_invalid_order_refund_id",
        f"/orders/{order['id']}/refunds/{other['id']}": "woocommerce_rest_invalid_order_refund_id",
        f"/orders/999999/refunds/{refund['id']}": "woocommerce_rest_invalid_order_id",
        f"/orders/{order['id']}/refunds/999999": "woocommerce_rest_shop_order_refund_invalid_id",
    }
    for path, code in codes.items():
        answer = get(sim, path)
        assert (answer.status_code, answer.json()["code"]) == (404, code), path
    # WooCommerce lists refunds by parent: an unknown order simply has none.
    assert get(sim, "/orders/999999/refunds").json() == []
    # A permanent delete takes the order's refunds with it.
    control.delete(order["id"])
    assert get(sim, f"/orders/{order['id']}/refunds").json() == []
