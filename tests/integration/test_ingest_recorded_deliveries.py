"""Every delivery a real WooCommerce 9.2.5 shop made, sent to ingest byte for byte with its
recorded headers, is answered as WooCommerce needs: the pings 200, each signed delivery
verified with the webhook's secret and converted, and the trashed order's `{"id":157}`
taken as a delete to confirm with the shop.

The recorded shop sold supplier jeans (a variation) and a supplier t-shirt, which the
product map maps, a sneaker the catalog knows by its barcode, and a mug of its own that
nothing maps. Its site was http://127.0.0.1:8090/ (X-WC-Webhook-Source), which is the
WC_URL ingest is given here.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import insert

from shared.db import session_scope
from shared.db.models import CatalogModel
from shared.messaging import topology
from shared.messaging.messages import OrderLineMessage, parse_order_line
from shared.products.mapping import import_product_map
from tests.conftest import drain
from tests.integration.ingest_process import Ingest, serving
from tests.recordings import RECORDED_SITE, Delivery, deliveries

LINES = topology.ORDER_LINES.name
JEANS_M, TSHIRT, SNEAKER, MUG = (141, 143), (137, 0), (138, 0), (140, 0)
STOCK = {JEANS_M: 81001, TSHIRT: 81002, SNEAKER: 81003}
SNEAKER_BARCODE = "8050000500052"
# Headers the HTTP client writes itself for the connection it opens.
CONNECTION_HEADERS = {"host", "content-length"}


def recorded_secret() -> str:
    """Every signed delivery of the recording was signed with the same secret (four webhooks, one
    secret), so one ingest verifies them all."""
    secrets = {d.secret for d in deliveries() if not d.is_ping}
    assert len(secrets) == 1, "the recorded webhooks have different secrets: one ingest per secret is needed"
    return secrets.pop()  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ingest(database_url: str, amqp_url: str) -> Iterator[Ingest]:
    yield from serving(AMQP_URL=amqp_url, DATABASE_URL=database_url, WC_WEBHOOK_SECRET=recorded_secret(),
                       WC_URL=RECORDED_SITE)


@pytest.fixture
def recorded_catalog(db: str, broker: str) -> str:
    """The jeans variation and the t-shirt in the product map, the sneaker in the catalog by its
    barcode; the mug is the shop's own."""
    with session_scope(db) as session:
        import_product_map(session, [(*JEANS_M, STOCK[JEANS_M]), (*TSHIRT, STOCK[TSHIRT])])
        session.execute(insert(CatalogModel), [
            {"stock_id": STOCK[SNEAKER], "product_id": 600, "code": "SNEAKER-80", "barcode": SNEAKER_BARCODE},
        ])
    return db


def send(ingest: Ingest, delivery: Delivery, body: bytes | None = None) -> requests.Response:
    """The recorded request: its exact body and headers, to ingest's webhook path."""
    headers = {name: value for name, value in delivery.headers.items() if name.lower() not in CONNECTION_HEADERS}
    return requests.post(ingest.url + "/webhooks/woocommerce", data=delivery.body if body is None else body,
                         headers=headers, timeout=15)


def supplier_lines(order: dict[str, Any]) -> int:
    return sum((line["product_id"], line["variation_id"]) in STOCK for line in order["line_items"])


def test_every_recorded_delivery_is_answered_as_woocommerce_needs(
    ingest: Ingest, recorded_catalog: str, broker: str
) -> None:
    recorded = deliveries()
    assert [d.topic for d in recorded if d.is_ping] == ["order.created", "order.updated", "order.deleted",
                                                        "order.restored"]
    published: list[OrderLineMessage] = []
    for number, delivery in enumerate(recorded):
        assert int(delivery.headers["Content-Length"]) == len(delivery.body), number
        response = send(ingest, delivery)
        where = f"delivery {number} ({delivery.topic}): {response.text}"
        # WooCommerce counts anything but 2xx (and 301/302) towards disabling the webhook.
        assert response.status_code == 200, where
        if delivery.is_ping:
            assert response.json() == {"status": "ok"}, where
            continue
        order = delivery.json()
        messages = [parse_order_line(body) for _, body in drain(broker, LINES)]
        published += messages
        assert response.json() == {"status": "published", "messages": len(messages)}, where
        assert {m.order_id for m in messages} == {order["id"]}, where
        if delivery.topic in ("order.deleted", "order.restored"):
            # A delete or restore claimed by a webhook is confirmed with the shop before it counts.
            [claim] = messages
            assert claim.confirm and claim.topic == delivery.topic, where
            assert claim.deleted == (delivery.topic == "order.deleted"), where
            continue
        if order.get("refunds"):
            # The lines still say what was ordered; only the shop's refunds route says what was given
            # back, so supplier_sync is asked to read the order and its refunds from the shop.
            [claim] = messages
            assert claim.confirm and claim.topic == "order.updated" and not claim.deleted, where
            continue
        assert all(not m.confirm and m.status == order["status"] for m in messages), where
        assert len(messages) == supplier_lines(order) > 0, where
        lines = {(m.line.product_id, m.line.variation_id): m.line for m in messages if m.line}
        assert MUG not in lines, where
        for key, line in lines.items():
            [item] = [i for i in order["line_items"] if (i["product_id"], i["variation_id"]) == key]
            assert (line.stock_id, line.quantity, line.line_id) == (STOCK[key], item["quantity"], item["id"]), where
    # The deleted one is exactly the id, as WooCommerce sends it for a trashed order.
    assert [d.body for d in recorded if d.topic == "order.deleted" and not d.is_ping] == [b'{"id":157}']
    # Before its refund, 157 asked for 3 pairs of jeans; the refund went to be read from the shop.
    last = [m for m in published if m.order_id == 157 and m.line and m.line.product_id == 141][-1]
    assert last.line is not None and last.line.quantity == 3
    assert published[-1].order_id == 157 and published[-1].confirm
    # The gift goes to the shipping address's person.
    gift = [m for m in published if m.order_id == 158 and m.head and m.recipient]
    assert gift and all(m.recipient and (m.recipient.name, m.recipient.city) == ("Giulia Verdi", "Milano")
                        for m in gift)


def test_a_recorded_delivery_altered_by_one_byte_is_refused(ingest: Ingest, recorded_catalog: str,
                                                           broker: str) -> None:
    """The signatures are checked, not waved through: the same bytes but one is 401."""
    delivery = next(d for d in deliveries() if d.topic == "order.updated" and not d.is_ping)
    altered = delivery.body.replace(b'"quantity":2', b'"quantity":9', 1)
    assert altered != delivery.body
    response = send(ingest, delivery, altered)
    assert response.status_code == 401
    assert drain(broker, LINES) == []
