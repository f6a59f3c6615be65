"""ingest over real HTTP: a `python -m services.ingest` subprocess, the run's
PostgreSQL database and RabbitMQ vhost, and what reached the broker."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from shared.clients.shop.signature import sign
from shared.db import HOT_PATH_STATEMENT_TIMEOUT_SECONDS, get_autocommit_engine, normalise_url
from shared.messaging.messages import parse_order_line
from simulators.shop.orders import make_order, replace_lines
from simulators.shop.php_json import wp_json_encode
from tests.conftest import drain
from tests.integration.ingest_process import (
    BY_BARCODE, BY_CODE, DECODED_SECRET, LINES, MAX_BODY, ROOT, SECRET, SHOP_OWN, SIMPLE, STOCK, STOP_TIMEOUT,
    VARIATION, Ingest, published,
)
from tests.support import TcpProxy



def a_valid_order(order_id: int = 5001) -> bytes:
    return wp_json_encode(make_order(order_id, lines=[VARIATION]))


# -- the table of docs/interfaces.md, row by row ---------------------------------------------------------


def test_ping_is_answered_exactly_200_and_publishes_nothing(ingest: Ingest, broker: str) -> None:
    response = requests.post(
        ingest.url + "/webhooks/woocommerce", data=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
                 "User-Agent": "WooCommerce/9.9.0 Hookshot (WordPress/6.8)"},
        timeout=5,
    )
    assert response.status_code == 200
    assert drain(broker, LINES) == []
    # The same body with X-WC-* headers is not a ping: it needs a signature.
    assert ingest.post(b"webhook_id=12", "order.updated", signed=False).status_code == 401


@pytest.mark.parametrize("how", ["missing", "garbage", "other body", "raw secret", "hex digest", "non-ascii"])
def test_missing_or_wrong_signature_is_401(ingest: Ingest, catalog: str, broker: str, how: str) -> None:
    body = a_valid_order()
    raw = hmac.new(SECRET.encode(), body, hashlib.sha256)
    signature = {
        "missing": None,
        "garbage": "not-a-signature",
        "other body": sign(body + b" ", SECRET),
        "raw secret": base64.b64encode(raw.digest()).decode(),  # entities not decoded: WooCommerce #21693
        "hex digest": hmac.new(DECODED_SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "non-ascii": "é" * 44,
    }[how]
    headers = {} if signature is None else {"X-WC-Webhook-Signature": signature}
    if signature is not None and not signature.isascii():
        headers = {"X-WC-Webhook-Signature": signature.encode("latin-1")}  # type: ignore[dict-item]
    response = ingest.post(body, "order.created", signed=False, headers=headers)
    assert response.status_code == 401
    assert "error" in response.json()
    assert drain(broker, LINES) == []


def test_signature_uses_the_secret_with_html_entities_decoded(ingest: Ingest, catalog: str, broker: str) -> None:
    body = a_valid_order()
    signature = base64.b64encode(hmac.new(DECODED_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    response = ingest.post(body, "order.created", signed=False, headers={"X-WC-Webhook-Signature": signature})
    assert response.status_code == 200
    assert len(published(broker)) == 1


def test_body_over_1_mib_is_413(ingest: Ingest, broker: str) -> None:
    too_big = b"x" * (MAX_BODY + 1)
    response = ingest.post(too_big, "order.updated")  # Content-Length says it
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length, so the read itself is capped
        for _ in range(16):
            yield b"y" * (64 * 1024)
        yield b"y" * 100

    response = ingest.post(chunks(), "order.updated", signed=False)  # type: ignore[arg-type]
    assert response.status_code == 413
    # Exactly 1 MiB passes the size check and fails later, as not JSON.
    assert ingest.post(b"z" * MAX_BODY, "order.updated").status_code == 400
    assert drain(broker, LINES) == []


def test_a_body_cut_short_is_400_not_a_crash(ingest: Ingest, broker: str) -> None:
    host, port = ingest.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(b"POST /webhooks/woocommerce HTTP/1.1\r\nHost: ingest\r\nTransfer-Encoding: chunked\r\n"
                       b"X-WC-Webhook-Topic: order.updated\r\n\r\n10\r\n{\"id\":")
        client.shutdown(socket.SHUT_WR)
        answer = client.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert drain(broker, LINES) == []


@pytest.mark.parametrize("body", [b"not json", b"{\"id\": 1,", b"\xff\xfe\x00garbage", b"", b"[" * 100_000])
def test_not_json_is_400_naming_the_problem(ingest: Ingest, broker: str, body: bytes) -> None:
    response = ingest.post(body, "order.created")
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]
    assert drain(broker, LINES) == []


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([{"id": 1}], "JSON object"),
        ("a string", "JSON object"),
        ({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot view this resource.",
          "data": {"status": 401}}, "woocommerce_rest_cannot_view"),
        ({"status": "pending", "line_items": []}, "no id"),
        ({"id": 5001, "status": "pending", "date_modified_gmt": "2026-11-26T09:00:00", "line_items": {"0": {}}},
         "line_items must be an array"),
        ({"id": 5001, "status": "pending", "date_modified_gmt": "yesterday", "line_items": []}, "date_modified_gmt"),
        ({"id": 5001, "status": "pending", "date_modified_gmt": "2026-11-26T09:00:00",
          "line_items": [{"id": 1, "product_id": 2101, "quantity": "two"}]}, "line_items[0].quantity"),
        ({"id": True}, "id must be an integer"),
    ],
)
def test_json_that_is_not_an_order_is_400_naming_the_problem(
    ingest: Ingest, catalog: str, broker: str, payload: Any, problem: str
) -> None:
    response = ingest.post(wp_json_encode(payload), "order.updated")
    assert response.status_code == 400
    assert problem in response.json()["error"]
    assert drain(broker, LINES) == []


def test_other_topics_are_202_ignored_and_counted(ingest: Ingest, broker: str) -> None:
    before = ingest.metric("rewix_ingest_webhooks_total", outcome="other_topic")
    product = wp_json_encode({"id": 2101, "name": "Sneaker", "sku": "SNK"})
    assert ingest.post(product, "product.updated").status_code == 202
    assert ingest.post(wp_json_encode({"action": "woocommerce_payment_complete", "arg": 5001}),
                       "action.woocommerce_payment_complete").status_code == 202
    assert ingest.metric("rewix_ingest_webhooks_total", outcome="other_topic") == before + 2
    assert ingest.metric("rewix_ingest_other_topics_total", topic="product.updated") >= 1
    assert drain(broker, LINES) == []


def test_a_valid_order_publishes_one_message_per_supplier_line(ingest: Ingest, catalog: str, broker: str) -> None:
    order = make_order(5002, status="processing", lines=[VARIATION, SIMPLE, SHOP_OWN, BY_CODE, BY_BARCODE],
                       customer_note="Bitte beim Nachbarn abgeben / ring twice", number="WC-5002")
    before = ingest.metric("rewix_ingest_messages_published_total")
    response = ingest.order(order, "order.created")
    assert response.status_code == 200, response.text
    assert response.json()["messages"] == 4

    deliveries = drain(broker, LINES)
    messages = [parse_order_line(body) for _props, body in deliveries]
    items = {item["product_id"]: item for item in order["line_items"]}
    supplier_ids = sorted(items[p]["id"] for p in (2101, 3307, 4400, 4500))
    by_product = {m.line.product_id: m for m in messages if m.line}
    heads = [m for m in messages if m.head]
    assert len(heads) == 1
    assert sorted(by_product) == [2101, 3307, 4400, 4500]  # the gift card is the shop's own
    for product_id, message in by_product.items():
        item = items[product_id]
        assert message.line.stock_id == STOCK[product_id]
        assert message.line.line_id == item["id"]
        assert message.line.variation_id == item["variation_id"]
        assert message.line.quantity == item["quantity"]
        assert (message.topic, message.source, message.order_id) == ("order.created", "webhook", 5002)
        assert (message.order_number, message.status, message.deleted) == ("WC-5002", "processing", False)
        assert message.date_modified_gmt.isoformat().startswith(order["date_modified_gmt"])
        assert message.line_count == 4 and message.event_id == heads[0].event_id
        # The order's own fields travel once, on the event's head.
        if not message.head:
            assert (message.supplier_line_ids, message.recipient, message.customer_note) == ([], None, "")
            continue
        assert sorted(message.supplier_line_ids) == supplier_ids
        assert message.recipient.name == "Zoë Müller-Ørsted"
        assert message.recipient.city == "Łódź"
        assert message.customer_note == "Bitte beim Nachbarn abgeben / ring twice"
    for properties, body in deliveries:
        assert properties.delivery_mode == 2
        assert properties.message_id == json.loads(body)["message_id"]
        assert properties.content_type == "application/json"
    assert len({m.message_id for m in messages}) == 4
    assert ingest.metric("rewix_ingest_messages_published_total") == before + 4


def test_missing_optional_fields_and_unknown_extra_fields(ingest: Ingest, catalog: str, broker: str) -> None:
    order = {
        "id": 5003,
        "status": "on-hold",
        "date_modified_gmt": "2026-11-26T09:15:00",
        "line_items": [{"id": 9, "product_id": 3307, "quantity": 2, "sku": None, "x_plugin": {"gift": True}}],
        "x_custom_field": [1, {"nested": "ünïcödé"}],
        "meta_data": [{"id": 1, "key": "_something", "value": {"a": [1, 2]}}],
    }
    assert ingest.order(order).status_code == 200
    [message] = published(broker)
    assert message.order_number == "5003"
    assert message.line.stock_id == STOCK[3307] and message.line.variation_id == 0 and message.line.quantity == 2
    assert message.recipient.name == "" and message.customer_note == ""


def test_order_deleted_releases_a_known_order_and_ignores_an_unknown_one(
    ingest: Ingest, catalog: str, broker: str
) -> None:
    assert ingest.order(make_order(5004, lines=[VARIATION, SHOP_OWN]), "order.created").status_code == 200
    assert len(published(broker)) == 1

    response = ingest.post(wp_json_encode({"id": 5004}), "order.deleted")
    assert response.status_code == 200
    [release] = published(broker)
    assert (release.order_id, release.deleted, release.line, release.topic) == (5004, True, None, "order.deleted")

    response = ingest.post(wp_json_encode({"id": 5999}), "order.deleted")
    assert response.status_code == 200
    assert published(broker) == []


def test_an_order_losing_its_last_supplier_line_publishes_one_line_less_message(
    ingest: Ingest, catalog: str, broker: str
) -> None:
    order = make_order(5005, lines=[SIMPLE, SHOP_OWN])
    assert ingest.order(order, "order.created").status_code == 200
    assert len(published(broker)) == 1

    replace_lines(order, [SHOP_OWN])
    # Later than the first state, but not more than a day ahead (that would be refused).
    later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=1)
    order["date_modified_gmt"] = later.isoformat(timespec="seconds")
    assert ingest.order(order).status_code == 200
    [message] = published(broker)
    assert (message.order_id, message.line, message.supplier_line_ids) == (5005, None, [])


def test_orders_without_supplier_lines_and_drafts_cost_nothing(ingest: Ingest, catalog: str, broker: str) -> None:
    response = ingest.order(make_order(5006, lines=[SHOP_OWN]), "order.created")
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    draft = make_order(5007, status="checkout-draft", lines=[VARIATION])
    response = ingest.order(draft)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert drain(broker, LINES) == []


def test_health_readiness_and_metrics(ingest: Ingest, broker: str) -> None:
    assert ingest.get("/healthz").status_code == 200
    assert ingest.get("/readyz").status_code == 200
    metrics = ingest.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain")
    for name in ("rewix_ingest_webhooks_total", "rewix_ingest_messages_published_total",
                 "rewix_ingest_webhook_duration_seconds_bucket"):
        assert name in metrics.text
    assert ingest.get("/nowhere").status_code == 404
    assert requests.get(ingest.url + "/webhooks/woocommerce", timeout=5).status_code == 405


def test_one_log_line_per_webhook_without_body_secret_or_address(ingest: Ingest, catalog: str, broker: str) -> None:
    assert ingest.order(make_order(5008, lines=[VARIATION]), "order.created").status_code == 200
    assert ingest.post(b"garbage", "order.created", signed=False,
                       headers={"X-WC-Webhook-Signature": "x"}).status_code == 401
    drain(broker, LINES)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in ingest.lines() if l.get("event") == "webhook"]
        if any(l.get("order_id") == 5008 for l in lines):
            break
        time.sleep(0.05)
    [line] = [l for l in lines if l.get("order_id") == 5008]
    assert line["topic"] == "order.created" and line["outcome"] == "published" and line["status"] == 200
    assert line["messages"] == 1 and isinstance(line["duration_ms"], float)
    text = ingest.text()
    for private in ("Piotrkowska", "zoe.muller", "Müller", "42 123 45 67", "90-926", SECRET, DECODED_SECRET,
                    "wc_order_", "Sneaker"):
        assert private not in text, private


# -- broker and database failures, in processes of their own ----------------------------------------


def test_broker_unreachable_at_start_answers_503_and_starts_anyway(
    database_url: str, catalog: str, broker: str
) -> None:
    server = Ingest(AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F", DATABASE_URL=database_url)
    try:
        assert server.get("/healthz").status_code == 200
        assert server.get("/readyz").status_code == 503
        assert server.order(make_order(5101, lines=[VARIATION])).status_code == 503
        assert requests.post(server.url + "/webhooks/woocommerce", data=b"webhook_id=3", timeout=5).status_code == 200
        assert drain(broker, LINES) == []
        deadline = time.monotonic() + 5
        while not any(l.get("level") == "warning" and "rabbitmq" in l.get("event", "") for l in server.lines()):
            assert time.monotonic() < deadline, server.text()
            time.sleep(0.05)
        assert server.stop() == 0
    finally:
        server.close()


def test_database_unreachable_answers_503_and_publishes_nothing(amqp_url: str, catalog: str, broker: str) -> None:
    server = Ingest(AMQP_URL=amqp_url, DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing")
    try:
        response = server.order(make_order(5102, lines=[VARIATION]))
        assert response.status_code == 503 and "database" in response.json()["error"]
        assert server.get("/readyz").status_code == 503
        assert drain(broker, LINES) == []
        assert server.stop() == 0
    finally:
        server.close()


def test_broker_outage_answers_503_and_recovers_without_restart(
    database_url: str, catalog: str, broker: str
) -> None:
    address = urllib.parse.urlsplit(broker)
    proxy = TcpProxy((address.hostname or "127.0.0.1", address.port or 5672))
    server = Ingest(AMQP_URL=proxy.url_for(broker), DATABASE_URL=database_url)
    try:
        assert server.order(make_order(5103, lines=[VARIATION])).status_code == 200
        assert len(published(broker)) == 1

        proxy.cut()
        for order_id in (5104, 5105, 5106):  # whichever thread answers, its connection is gone
            response = server.order(make_order(order_id, lines=[VARIATION]))
            assert response.status_code == 503, response.text
        assert server.get("/readyz").status_code == 503
        assert published(broker) == []

        proxy.restore()
        deadline = time.monotonic() + 10
        while (status := server.order(make_order(5107, lines=[VARIATION])).status_code) != 200:
            assert status == 503 and time.monotonic() < deadline
            time.sleep(0.1)
        assert server.get("/readyz").status_code == 200
        assert {m.order_id for m in published(broker)} == {5107}
        assert server.stop() == 0
    finally:
        server.close()
        proxy.cut()


def test_sigterm_stops_cleanly_with_exit_0(database_url: str, amqp_url: str) -> None:
    server = Ingest(AMQP_URL=amqp_url, DATABASE_URL=database_url)
    try:
        assert server.get("/readyz").status_code == 200
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < STOP_TIMEOUT
        # Read as text, not line by line: the arbiter and its workers write to one file, and a line
        # of one may land inside a line of another.
        assert '"event": "ingest stopped"' in server.text(), server.text()[-2000:]
    finally:
        server.close()


def test_missing_secret_stops_at_start_with_one_line_naming_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "WC_WEBHOOK_SECRET"}
    result = subprocess.run([sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "WC_WEBHOOK_SECRET" in lines[0]


def test_a_statement_that_waits_on_a_lock_is_answered_503_within_the_limit(
    ingest: Ingest, catalog: str, broker: str
) -> None:
    """A migration (or anything else holding a table lock) must not hold every server thread."""
    engine = create_engine(normalise_url(catalog))
    try:
        with engine.connect() as locker:
            locker.execute(text("LOCK TABLE order_versions IN ACCESS EXCLUSIVE MODE"))  # held until rollback
            started = time.monotonic()
            response = ingest.order(make_order(5301, lines=[VARIATION]))
            waited = time.monotonic() - started
            locker.rollback()
        assert response.status_code == 503 and "database" in response.json()["error"], response.text
        assert waited < HOT_PATH_STATEMENT_TIMEOUT_SECONDS + 3
        assert published(broker) == []
        # The lock gone, the same order goes through.
        assert ingest.order(make_order(5301, lines=[VARIATION])).status_code == 200
    finally:
        engine.dispose()


def test_the_statement_timeout_keeps_the_options_given_in_database_url(database_url: str) -> None:
    separator = "&" if "?" in database_url else "?"
    with get_autocommit_engine(f"{database_url}{separator}options=-c%20work_mem%3D7MB").connect() as connection:
        assert connection.execute(text("SHOW work_mem")).scalar() == "7MB"
        assert connection.execute(text("SHOW statement_timeout")).scalar() == f"{HOT_PATH_STATEMENT_TIMEOUT_SECONDS}s"
