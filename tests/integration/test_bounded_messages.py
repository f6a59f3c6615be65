"""What an order puts on RabbitMQ grows linearly with its lines, over real HTTP and RabbitMQ.

The recipient, the customer note and the line ids travel once per order
event, on its head message (shared/messaging/messages.py); the other messages carry
their own line and the event's identity only.
"""
from __future__ import annotations

from tests.conftest import drain
from tests.integration.ingest_process import LINES, VARIATION, Ingest
from shared.messaging.messages import parse_order_line
from simulators.shop.orders import make_order

NOTE = "Bitte beim Nachbarn klingeln, Hinterhaus, 3. Stock — ring twice. " * 40  # cut at 2,000 characters
LONG_ADDRESS = {"first_name": "Zoë", "last_name": "Müller-Ørsted", "company": "Ørsted & Søn ApS",
                "address_1": "ul. Piotrkowska 104/2 " * 9, "address_2": "Oficyna, klatka B " * 10,
                "city": "Łódź", "postcode": "90-926", "country": "PL", "phone": "+48 42 123 45 67"}


def published_bytes(ingest: Ingest, broker: str, order_id: int, lines: int) -> list[bytes]:
    order = make_order(order_id, status="processing", lines=[dict(VARIATION, quantity=1) for _ in range(lines)],
                       shipping=LONG_ADDRESS, customer_note=NOTE, number=f"WC-{order_id}")
    response = ingest.order(order, "order.created")
    assert response.status_code == 200, response.text
    bodies = [body for _props, body in drain(broker, LINES)]
    assert len(bodies) == lines
    return bodies


def test_bytes_on_the_broker_grow_linearly_with_the_lines(ingest: Ingest, catalog: str, broker: str) -> None:
    sizes: dict[int, int] = {}
    line_only: dict[int, int] = {}
    for order_id, lines in ((7010, 10), (7100, 100), (7500, 500)):
        bodies = published_bytes(ingest, broker, order_id, lines)
        messages = [parse_order_line(body) for body in bodies]
        heads = [m for m in messages if m.head]
        # The recipient, the note and every line id are on the broker once per event.
        assert len(heads) == 1 and len(heads[0].supplier_line_ids) == lines
        assert sum(NOTE[:100].encode() in body for body in bodies) == 1
        assert sum(b"Piotrkowska" in body for body in bodies) == 1
        assert {(m.event_id, m.line_count) for m in messages} == {(heads[0].event_id, lines)}
        sizes[lines] = sum(map(len, bodies))
        line_only[lines] = max(len(body) for body, m in zip(bodies, messages) if not m.head)
        print(f"{lines} lines: {sizes[lines]} bytes published, {sizes[lines] / lines:.0f} per line, "
              f"largest line message {line_only[lines]} bytes")
    # A line message does not grow with its order (a few more digits in the ids at most) ...
    assert line_only[500] <= line_only[10] + 16, line_only
    # ... so each further line costs the same: with the ids on every line, the 100 -> 500 lines
    # step would cost about five times more per line than 10 -> 100.
    per_line_small = (sizes[100] - sizes[10]) / 90
    per_line_large = (sizes[500] - sizes[100]) / 400
    assert per_line_large <= 1.1 * per_line_small, (per_line_small, per_line_large)
    assert sizes[500] <= 500 * line_only[500] + 16_000, sizes
