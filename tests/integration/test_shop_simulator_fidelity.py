"""The shop simulator answers like the real WooCommerce 9.2.5 that was recorded.

A shop is seeded with orders like the recorded ones (through the control API and the
project's own REST client): a completed order with the tracking meta this system writes
and its notes, an order edited, paid and partly refunded, a gift order cancelled, a few
more to page through, and four REST webhooks. Then every recorded REST request is made
to it, and its answer is held against the recorded one: the status, the structure of the
body (the same keys at every level, the same JSON types), the exact error bodies, and the
headers a client reads (Content-Type, X-WP-Total, X-WP-TotalPages, Allow, and Link in its
form: the API root, or paging links that repeat the request's parameters, oauth_* ones
included). The simulator's webhook deliveries are held against the recorded ones the
same way: header names and values, and a body with the structure of the recorded body.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from shared.clients.shop.auth import shop_auth
from shared.clients.shop.client import WooCommerceClient
from shared.clients.shop.signature import verify
from simulators.shop import ShopControl, ShopSimulator, start_in_thread
from simulators.shop.orders import utc_now
from simulators.shop.php_json import wp_json_encode
from tests.json_shape import Shape, differences, merged
from tests.recordings import RECORDED_SITE, RestAnswer, deliveries, rest_answer, rest_answers
from tests.support import WebhookReceiver, wait_until

KEY = "ck_fidelity"
SECRET = "cs_fidelity-secret"
WEBHOOK_SECRET = "fidelity webhook secret: & spaces"
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")

# The recorded shop's products (rest.json, webhooks.jsonl).
JEANS_M = {"product_id": 141, "variation_id": 143, "quantity": 2, "sku": "RX-JEANS-M", "name": "Slim jeans - M",
           "price": "49.00", "attributes": {"size": "M"}}
JEANS_S = {"product_id": 141, "variation_id": 142, "quantity": 1, "sku": "8050000500021", "name": "Slim jeans - S",
           "price": "49.00", "attributes": {"size": "S"}}
TSHIRT = {"product_id": 137, "variation_id": 0, "quantity": 1, "sku": "RX-TSHIRT-U", "name": "Basic T-shirt",
          "price": "15.00"}
MUG = {"product_id": 140, "variation_id": 0, "quantity": 1, "sku": "MUG-1", "name": "Our own mug", "price": "9.00"}
SNEAKER = {"product_id": 138, "variation_id": 0, "quantity": 1, "sku": "8050000500052", "name": "Sneaker",
           "price": "80.00"}
MARCO = {"first_name": "Marco", "last_name": "Neri", "company": "Neri Import SRL", "address_1": "Viale Europa 99",
         "address_2": "Scala B, int. 7", "city": "Torino", "state": "TO", "postcode": "10121", "country": "IT",
         "phone": "+39 011 5550000"}
GIULIA = {"first_name": "Giulia", "last_name": "Verdi", "company": "", "address_1": "Via Roma 1", "address_2": "",
          "city": "Milano", "state": "MI", "postcode": "20121", "country": "IT", "phone": ""}
TRACKING_META = {"rewix_tracking_code": "TRK123456", "rewix_tracking_url": "https://track.example.com/TRK123456",
                 "rewix_carrier": "BRT"}
# Headers whose presence in a recorded answer the simulator's answer must match.
COUNTED = ("X-WP-Total", "X-WP-TotalPages")
ORDER_ROUTE = re.compile(r"/wp-json/wc/v3/orders(/\d+)?")


def recorded_orders() -> list[dict[str, Any]]:
    """Every order resource in the recordings: in listings, alone, and as webhook bodies."""
    found: list[dict[str, Any]] = []
    for answer in rest_answers():
        if answer.status == 200 and ORDER_ROUTE.fullmatch(answer.path):
            found += answer.body if isinstance(answer.body, list) else [answer.body]
    found += [d.json() for d in deliveries() if not d.is_ping and d.topic != "order.deleted"]
    return found


def order_types(listing: bool) -> Shape:
    """The JSON types each key of an order takes anywhere in the recordings (of a list of orders)."""
    orders = merged(recorded_orders())
    return Shape(element=orders) if listing else orders


@dataclass
class SeededShop:
    sim: ShopSimulator
    control: ShopControl
    ids: dict[int, int]  # recorded id -> the simulator's id of the same part
    modified_after: str  # a moment before every seeded order was made (GMT)
    refund: dict[str, Any]
    receiver: WebhookReceiver


@pytest.fixture(scope="module")
def shop() -> Iterator[SeededShop]:
    receiver = WebhookReceiver()
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET) as sim:
        try:
            yield _seed(sim, receiver)
        finally:
            receiver.close()


def _seed(sim: ShopSimulator, receiver: WebhookReceiver) -> SeededShop:
    control = ShopControl(sim.url)
    client = WooCommerceClient(sim.url, KEY, SECRET, timeout=5.0)
    started = utc_now() - timedelta(hours=1)
    fillers = [
        control.create_order(status="processing", lines=[TSHIRT]),
        control.create_order(status="pending", lines=[JEANS_S, TSHIRT]),
        control.create_order(status="on-hold", lines=[MUG]),
    ]
    for topic in WEBHOOK_TOPICS:
        client.create_webhook(name=f"fidelity {topic}", topic=topic, delivery_url=receiver.url, secret=WEBHOOK_SECRET)
    # 146: paid, then completed by this system with its tracking meta and notes.
    completed = control.create_order(status="processing", lines=[SNEAKER, JEANS_S])
    client.complete_order(completed["id"], meta=TRACKING_META)
    client.add_note(completed["id"], "Supplier order 900001 is now Dispatched. Tracking code: TRK123456.")
    client.add_note(completed["id"], "Your order has been shipped with BRT.", customer_note=True)
    # 157: pending, its jeans raised to 3, paid, trashed and restored; 158: a paid gift, cancelled.
    refunded = control.create_order(status="pending", lines=[JEANS_M, TSHIRT, MUG], billing=MARCO, shipping=MARCO,
                                    customer_note="Consegna dopo le 18 — grazie! 🚚")
    gift = control.create_order(status="processing", lines=[SNEAKER], billing=MARCO, shipping=GIULIA)
    jeans_line = refunded["line_items"][0]["id"]
    control.edit_order(refunded["id"], quantity={jeans_line: 3})
    control.edit_order(refunded["id"], status="processing")
    control.edit_order(gift["id"], status="cancelled")
    control.trash(refunded["id"])
    control.restore(refunded["id"])
    # One pair of jeans refunded: refund 159 follows orders 157 and 158.
    refund = control.refund(refunded["id"], {jeans_line: 1}, reason="one pair returned before shipping",
                            amount="10.00")
    assert control.wait_deliveries(10)
    # The recorded `include=146,148,149,999999` found 2 orders: 149 was no order's id. Here the refund's
    # id stands for it, which no order listing shows either.
    ids = {146: completed["id"], 148: fillers[0]["id"], 149: refund["id"], 157: refunded["id"], 158: gift["id"]}
    return SeededShop(sim, control, ids, started.isoformat(timespec="seconds"), refund, receiver)


# -- the recorded REST answers, one by one -----------------------------------------------------


@pytest.mark.parametrize("recorded", rest_answers(), ids=lambda answer: answer.name)
def test_the_simulator_answers_like_the_recording(shop: SeededShop, recorded: RestAnswer) -> None:
    response = _ask(shop, recorded)
    assert response.status_code == recorded.status, response.text
    assert response.headers["Content-Type"] == recorded.headers["Content-Type"]
    body = response.json()
    if recorded.status >= 400:
        # Errors carry nothing of the shop's data: the whole body is WooCommerce's.
        assert body == recorded.body
    elif ORDER_ROUTE.fullmatch(recorded.path):
        assert differences(recorded.body, body, order_types(isinstance(body, list))) == []
    else:
        assert differences(recorded.body, body) == []
    _assert_headers_like(recorded, response, shop.sim.url)


def _ask(shop: SeededShop, recorded: RestAnswer) -> requests.Response:
    """The recorded request, made to the simulator about its own orders."""
    path = re.sub(r"/(\d+)(?=/|$)", lambda m: f"/{shop.ids.get(int(m.group(1)), int(m.group(1)))}", recorded.path)
    query = {name: str(value) for name, value in recorded.query.items()}
    if "include" in query:
        query["include"] = ",".join(str(shop.ids.get(int(i), int(i))) for i in query["include"].split(","))
    if "modified_after" in query:
        query["modified_after"] = shop.modified_after
    if recorded.name.startswith("Basic over plain http"):
        auth: Any = requests.auth.HTTPBasicAuth(KEY, SECRET)
    elif recorded.name.startswith("OAuth with a wrong secret"):
        auth = shop_auth(shop.sim.url, KEY, "cs_not-the-secret")
    else:
        auth = shop_auth(shop.sim.url, KEY, SECRET)
    return requests.request(recorded.method, shop.sim.url + path, params=query, auth=auth, timeout=10)


def _assert_headers_like(recorded: RestAnswer, response: requests.Response, site: str) -> None:
    for name in COUNTED:
        assert (name in response.headers) == (name in recorded.headers), name
    if "X-WP-Total" in recorded.headers:
        per_page = int(recorded.query.get("per_page", 10))
        total, pages = int(response.headers["X-WP-Total"]), int(response.headers["X-WP-TotalPages"])
        assert pages == math.ceil(total / per_page)
        if recorded.headers["X-WP-TotalPages"] == "1":
            # One page in the recording: the same orders, refunds or webhooks, so the same count.
            assert (total, pages) == (int(recorded.headers["X-WP-Total"]), 1)
        else:
            assert pages > 1
    if "Allow" in recorded.headers:
        assert response.headers.get("Allow") == recorded.headers["Allow"]
    if "X-Robots-Tag" in recorded.headers:
        assert response.headers.get("X-Robots-Tag") == recorded.headers["X-Robots-Tag"]
    assert _link_form(response.headers["Link"], site) == _link_form(recorded.headers["Link"], RECORDED_SITE)


def _link_form(header: str, site: str) -> list[tuple[str, str, list[str], str | None]]:
    """A Link header without its values: each link's rel, path below the site, the names of its
    query parameters in order (oauth_* ones shown as one `oauth_*`), and its page."""
    form = []
    for url, rel in re.findall(r'<([^>]*)>; rel="([^"]*)"', header):
        assert url.startswith(site + "/"), url
        parts = urlsplit(url)
        names: list[str] = []
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            name = "oauth_*" if name.startswith("oauth_") else name
            if not names or names[-1] != name:
                names.append(name)
        page = dict(parse_qsl(parts.query)).get("page")
        form.append((rel, parts.path, names, page))
    return form


def test_a_fields_listing_has_the_recorded_keys_in_order_written_as_php_writes_them(shop: SeededShop) -> None:
    """What the verification sweep reads: `_fields=id,status,date_modified_gmt`, each order those three
    keys in that order and nothing else (no `_links`), compact JSON as wp_json_encode writes it."""
    [recorded] = [a for a in rest_answers() if "_fields" in a.query]
    response = _ask(shop, recorded)
    body = response.json()
    assert len(body) == len(recorded.body)
    assert [list(order) for order in body] == [list(order) for order in recorded.body]
    assert response.content == wp_json_encode(body)


def test_every_recorded_answer_is_compared() -> None:
    """The parametrised test above covers rest.json whole: the kinds of answers this file expects."""
    names = {answer.name for answer in rest_answers()}
    assert len(names) == len(rest_answers()) >= 16
    assert {answer.status for answer in rest_answers()} == {200, 400, 401, 404}


# -- refunds, as the recording shows them -----------------------------------------------------


def test_a_refund_keeps_the_order_lines_and_lists_itself_apart(shop: SeededShop) -> None:
    order = shop.sim.state.order(shop.ids[157])
    assert order is not None
    recorded_order = rest_answer("the refunded order").body
    recorded_refund = rest_answer("refunds of an order (line quantities negative)").body[0]
    # The order keeps the 3 pairs; the refund is listed under `refunds` with a negative total.
    assert [line["quantity"] for line in order["line_items"]] == [3, 1, 1] == [
        line["quantity"] for line in recorded_order["line_items"]]
    assert order["refunds"] == [{"id": shop.refund["id"], "reason": "one pair returned before shipping",
                                 "total": "-10.00"}]
    assert order["refunds"][0].keys() == recorded_order["refunds"][0].keys()
    # Only the refunds route has the refunded quantity, negative, naming the order's line.
    refund_line = shop.refund["line_items"][0]
    recorded_line = recorded_refund["line_items"][0]
    assert refund_line["quantity"] == recorded_line["quantity"] == -1
    assert refund_line["meta_data"][0]["key"] == recorded_line["meta_data"][0]["key"] == "_refunded_item_id"
    assert refund_line["meta_data"][0]["value"] == str(order["line_items"][0]["id"])
    assert shop.refund["amount"] == recorded_refund["amount"] == "10.00"
    # Refunds and orders share one id sequence: the refund follows the gift order made before it.
    assert shop.refund["id"] == shop.ids[158] + 1
    assert recorded_refund["id"] == 159 and recorded_order["id"] == 157


# -- webhook deliveries -------------------------------------------------------------------------


def test_a_recorded_webhook_body_is_the_rest_order_resource() -> None:
    """What WooCommerce sends for an order event is GET /orders/{id}, key for key."""
    refund_delivery = deliveries()[-1].json()
    recorded_order = rest_answer("the refunded order").body
    assert list(refund_delivery) == list(recorded_order)
    assert differences(recorded_order, refund_delivery) == []


def test_the_simulators_deliveries_carry_the_recorded_headers(shop: SeededShop) -> None:
    signed = [d for d in deliveries() if not d.is_ping]
    recorded_names = {name.lower() for name in signed[0].headers}
    assert all({name.lower() for name in d.headers} == recorded_names for d in signed)
    simulated = [(headers, body) for headers, body in shop.receiver.requests if "X-WC-Webhook-Topic" in headers]
    assert {headers["X-WC-Webhook-Topic"] for headers, _ in simulated} == set(WEBHOOK_TOPICS)
    for headers, body in simulated:
        assert {name.lower() for name in headers} == recorded_names
        topic = headers["X-WC-Webhook-Topic"]
        resource, _, event = topic.partition(".")
        assert (headers["X-WC-Webhook-Resource"], headers["X-WC-Webhook-Event"]) == (resource, event)
        assert headers["X-WC-Webhook-Source"] == shop.sim.url + "/"
        assert headers["Content-Type"] == signed[0].headers["Content-Type"] == "application/json"
        assert headers["Connection"] == signed[0].headers["Connection"] == "close"
        assert re.fullmatch(r"\d+", headers["X-WC-Webhook-ID"])
        assert re.fullmatch(r"[0-9a-f]{32}", headers["X-WC-Webhook-Delivery-ID"])
        assert verify(body, headers["X-WC-Webhook-Signature"], WEBHOOK_SECRET)
    user_agent = re.compile(r"WooCommerce/\d+\.\d+\.\d+ Hookshot \(WordPress/\d+\.\d+(\.\d+)?\)")
    assert user_agent.fullmatch(signed[0].headers["User-Agent"])
    assert all(user_agent.fullmatch(headers["User-Agent"]) for headers, _ in shop.receiver.requests)


def test_the_simulators_pings_carry_the_recorded_headers(shop: SeededShop) -> None:
    recorded = [d for d in deliveries() if d.is_ping]
    pings = [(headers, body) for headers, body in shop.receiver.requests if "X-WC-Webhook-Topic" not in headers]
    assert len(recorded) == len(pings) == len(WEBHOOK_TOPICS)
    for headers, body in pings:
        assert {name.lower() for name in headers} == {name.lower() for name in recorded[0].headers}
        assert headers["Content-Type"] == recorded[0].headers["Content-Type"]
        assert re.fullmatch(rb"webhook_id=\d+", body)


def test_the_simulators_order_bodies_have_the_recorded_structure(shop: SeededShop) -> None:
    """Each order body the simulator sent has the structure of what WooCommerce sent (or answered)
    for the same recorded order; the one sent after the refund lists it under `refunds`, as the
    recorded one does."""
    recorded_id = {ours: theirs for theirs, ours in shop.ids.items()}
    sent = [(headers["X-WC-Webhook-Topic"], body) for headers, body in shop.receiver.requests
            if "X-WC-Webhook-Topic" in headers]
    assert {topic for topic, _ in sent} == set(WEBHOOK_TOPICS)
    for topic, body in sent:
        if topic == "order.deleted":
            continue
        order = requests.compat.json.loads(body)
        if order["id"] not in recorded_id:
            continue  # an order of a later test
        like = _recorded_body(recorded_id[order["id"]], topic, bool(order["refunds"]))
        assert differences(like, order, order_types(False)) == [], (topic, order["id"])
    # order.deleted sends only the id, exactly as WooCommerce writes it.
    assert [d.body for d in deliveries() if d.topic == "order.deleted" and not d.is_ping] == [b'{"id":157}']
    assert [body for topic, body in sent if topic == "order.deleted"] == [f'{{"id":{shop.ids[157]}}}'.encode()]
    after_refund = requests.compat.json.loads([body for topic, body in sent if topic == "order.updated"][-1])
    recorded_after_refund = deliveries()[-1].json()
    assert recorded_after_refund["refunds"] and after_refund["refunds"]
    assert differences(recorded_after_refund, after_refund, order_types(False)) == []


def _recorded_body(order_id: int, topic: str, refunded: bool) -> dict[str, Any]:
    """What WooCommerce sent for that order, by preference with that topic and with (or without)
    refunds as asked (a body is built when it is sent, so a restore's may already show a later
    refund), else what GET /orders/{id} answered for it."""
    sent = [d for d in deliveries() if d.topic != "order.deleted" and not d.is_ping and d.json()["id"] == order_id]
    answered = [a for a in rest_answers() if a.status == 200 and a.path.endswith(f"/orders/{order_id}")]
    candidates = [(d.topic, d.json()) for d in sent] + [("", a.body) for a in answered]
    alike = [(t, body) for t, body in candidates if bool(body["refunds"]) == refunded] or candidates
    return next((body for t, body in alike if t == topic), alike[0][1])


def test_a_refund_fires_order_updated_with_a_newer_date_modified(shop: SeededShop) -> None:
    order_id = shop.sim.state.create_order(status="processing", lines=[TSHIRT, MUG])["id"]
    before = shop.sim.state.order(order_id)
    assert before is not None
    wait_until(lambda: shop.sim.webhooks.wait_idle(0), timeout=10)
    seen = len(shop.receiver.requests)
    shop.control.refund(order_id, {before["line_items"][1]["id"]: 1})
    assert shop.control.wait_deliveries(10)
    sent = [(h["X-WC-Webhook-Topic"], requests.compat.json.loads(b)) for h, b in shop.receiver.requests[seen:]]
    assert [topic for topic, _ in sent] == ["order.updated"]
    body = sent[0][1]
    assert body["date_modified_gmt"] > before["date_modified_gmt"]
    assert [line["quantity"] for line in body["line_items"]] == [1, 1]
    assert len(body["refunds"]) == 1
