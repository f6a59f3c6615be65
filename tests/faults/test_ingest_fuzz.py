"""ingest under fuzzed, correctly signed deliveries: never a 500, never a crash, nothing published
for a body it refuses."""
from __future__ import annotations

import json
import re
import socket
from collections import Counter
from typing import Any

import pika
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.messaging import topology
from shared.orders.vocabulary import ORDER_TOPICS
from simulators.shop.orders import make_order
from tests.faults.conftest import STOCK_OF_PRODUCT, World, figures, queue_depth, shop_line, signed_headers

LINES = topology.ORDER_LINES.name
# Mostly order events (those reach the order conversion), sometimes another topic (202).
TOPICS = sorted(ORDER_TOPICS) * 4 + ["product.updated", "order.unknown", "coupon.created"]
# gunicorn's own words for a worker that died or hung.
WORKER_TROUBLE = re.compile(r"WORKER TIMEOUT|Worker \(pid:\d+\)|Traceback|Worker exiting")

# -- what a delivery can carry --------------------------------------------------------------------

HUGE_INTS = st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 10**30, -1, 0, 2**64 + 5, 10**4000])
WEIRD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["١٢٣", "²", "１２", "𝟘𝟙", "nul\x00byte", "日本語", "Zoë Müller-Ørsted", "", " 12 ", "1e3", "0x1F",
                     "2026-13-45T99:99:99", "9999-12-31T23:59:59", "0001-01-01T00:00:00+14:00", "processing\u200b"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE_INTS, st.floats(allow_nan=True, allow_infinity=True), WEIRD_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
ORDER_KEYS = ["id", "status", "number", "date_modified_gmt", "line_items", "shipping", "billing", "customer_note",
              "date_created_gmt", "meta_data", "currency", "total"]
LINE_KEYS = ["id", "product_id", "variation_id", "quantity", "sku", "name", "price", "meta_data"]
PRODUCTS = list(STOCK_OF_PRODUCT)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@st.composite
def base_orders(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(["pending", "processing", "on-hold", "cancelled", "completed", "checkout-draft"]))
    lines = [shop_line(p, draw(st.integers(1, 3))) for p in draw(st.lists(st.sampled_from(PRODUCTS), min_size=1,
                                                                          max_size=3, unique=True))]
    return make_order(draw(st.integers(1, 10**6)), status=status, lines=lines)


@st.composite
def mutated_orders(draw: st.DrawFn) -> bytes:
    """A real order resource with some fields set to wrong types, huge numbers or odd text."""
    order = draw(base_orders())
    for _ in range(draw(st.integers(1, 4))):
        value = draw(JSON_VALUES)
        lines = [line for line in order.get("line_items") or [] if isinstance(line, dict)] \
            if isinstance(order.get("line_items"), list) else []
        if lines and draw(st.booleans()):
            line = lines[draw(st.integers(0, len(lines) - 1))]
            line[draw(st.sampled_from(LINE_KEYS))] = value
        elif draw(st.booleans()):
            order.pop(draw(st.sampled_from(ORDER_KEYS)), None)
        else:
            order[draw(st.sampled_from(ORDER_KEYS))] = value
    return dumps(order).encode("utf-8", "surrogatepass")


@st.composite
def duplicate_keys(draw: st.DrawFn) -> bytes:
    """An order object in which some keys appear twice, the copy holding another value."""
    items = list(draw(base_orders()).items())
    for key in draw(st.lists(st.sampled_from(ORDER_KEYS), min_size=1, max_size=4)):
        items.insert(draw(st.integers(0, len(items))), (key, draw(JSON_VALUES)))
    return ("{" + ",".join(f"{dumps(k)}:{dumps(v)}" for k, v in items) + "}").encode("utf-8", "surrogatepass")


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    depth = draw(st.one_of(st.integers(100, 5000), st.integers(400_000, 600_000)))  # past 524,288: over 1 MiB
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"id": 5, "status": "pending", "line_items": [' + inner + b"]}" if draw(st.booleans()) else inner


@st.composite
def huge_numbers(draw: st.DrawFn) -> bytes:
    digits = draw(st.integers(15, 9000))
    number = draw(st.sampled_from([b"9" * digits, b"-" + b"1" * digits, b"1e" + b"9" * min(digits, 50), b"0." + b"0" * digits + b"1"]))
    where = draw(st.sampled_from([b'{"id": %s}', b'{"id": 7, "line_items": [{"id": 1, "product_id": 7000, "quantity": %s}]}',
                                  b'{"id": 7, "status": "pending", "date_modified_gmt": "2026-11-26T09:00:00", '
                                  b'"line_items": [{"id": %s, "product_id": 7000, "quantity": 1}]}']))
    return where % number


@st.composite
def odd_text(draw: st.DrawFn) -> bytes:
    """Non-ASCII, invalid UTF-8, lone surrogates and NULs inside an otherwise plausible order."""
    order = draw(base_orders())
    field = draw(st.sampled_from(["status", "number", "customer_note", "date_modified_gmt"]))
    order[field] = "@@"
    text = dumps(order).encode("utf-8")
    odd = draw(st.sampled_from([b"\xff\xfe", b"\\ud800", b"\\udfff\\ud800", b"\\u0000", b"\xc3\x28", b"\xe2\x82",
                                "Zoë 日本 😀".encode(), b"\\u00e9\\u65e5"]))
    return text.replace(b"@@", odd)


# Bodies that are not order resources at all, or barely.
SHAPELESS = st.one_of(
    st.binary(max_size=2048),
    JSON_VALUES.map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
    deep_nesting(),
    huge_numbers(),
)
# Real order resources spoiled in one way or another.
SPOILED_ORDERS = st.one_of(mutated_orders(), duplicate_keys(), odd_text())


def fuzz(world: World, bodies: st.SearchStrategy[bytes], name: str) -> None:
    """Deliver 200 fuzzed bodies, signed, to a running ingest; check every answer and the queue."""
    ingest = world.ingest()
    connection = pika.BlockingConnection(pika.URLParameters(world.amqp_url))
    channel = connection.channel()
    answers: Counter[int] = Counter()
    refused_but_published: list[bytes] = []

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=bodies, topic=st.sampled_from(TOPICS))
    def deliver(body: bytes, topic: str) -> None:
        # A connection of its own for each delivery, as WordPress makes one for each.
        response = requests.post(ingest.webhook_url, data=body, headers=signed_headers(body, topic), timeout=30)
        answers[response.status_code] += 1
        assert response.status_code in (200, 202, 400, 413), (response.status_code, response.text[:300], body[:300])
        if response.status_code >= 400:
            if queue_depth(channel, LINES):
                refused_but_published.append(body[:300])
                channel.queue_purge(LINES)
            assert not refused_but_published, f"published for a refused body: {refused_but_published[-1]!r}"
        else:
            channel.queue_purge(LINES)

    try:
        deliver()
    finally:
        connection.close()
    health = requests.get(ingest.url + "/healthz", timeout=10)
    trouble = [line for line in ingest.text().splitlines() if WORKER_TROUBLE.search(line)]
    errors = ingest.count_events("webhook failed")
    figures(name, deliveries=sum(answers.values()), answers=dict(sorted(answers.items())),
            answered_500=answers[500], refused_but_published=len(refused_but_published), logged_errors=errors,
            healthz=health.status_code)
    assert health.status_code == 200
    assert ingest.alive
    assert answers[500] == 0 and errors == 0
    assert not trouble, trouble[:5]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_fuzzed_shapeless_bodies_never_break_ingest(world: World) -> None:
    """Random bytes, random JSON, nesting a million levels deep, numbers thousands of digits long."""
    fuzz(world, SHAPELESS, "ingest fuzz: shapeless bodies")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_fuzzed_order_resources_never_break_ingest(world: World) -> None:
    """Orders with wrong types, huge numbers, odd text, invalid UTF-8 and duplicate keys."""
    fuzz(world, SPOILED_ORDERS, "ingest fuzz: spoiled orders")


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_413_does_not_leave_a_dead_keep_alive_connection(world: World) -> None:
    """A body far over the limit is answered 413 without being read. Either that answer says
    `Connection: close`, or the next request on the same connection is answered: a client that
    keeps the connection (as the 413 invites it to) must not meet a silent hang-up."""
    ingest = world.ingest()
    host, port = ingest.url.removeprefix("http://").rsplit(":", 1)
    big = b"[" * 600_000 + b"]" * 600_000  # 1.2 MB: 150 kB over the limit
    small = b'{"id": 1}'

    def request(body: bytes) -> bytes:
        headers = signed_headers(body, "order.updated") | {"Host": f"{host}:{port}", "Content-Length": str(len(body))}
        return ("POST /webhooks/woocommerce HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + "\r\n").encode() + body

    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request(big))
        first = read_response(sock)
        status_line, _, rest = first.partition(b"\r\n")
        says_close = re.search(rb"(?im)^connection:\s*close\s*$", rest.split(b"\r\n\r\n", 1)[0]) is not None
        second = b""
        if not says_close:
            sock.sendall(request(small))
            second = read_response(sock)
    figures("ingest 413 keep-alive", first=status_line.decode(), connection_close=says_close,
            next_request=second.partition(b"\r\n")[0].decode() or "no answer: connection closed")
    assert status_line.startswith(b"HTTP/1.1 413")
    assert says_close or second.startswith(b"HTTP/1.1 400"), "the 413 kept the connection alive, then it was dropped"


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response (headers and a Content-Length body), or what came before the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    want = int(length.group(1)) if length else 0
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
