"""The order-line message schema: version 2 carries the order's own fields once per event; version 1 is still read."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from services.supplier_sync.batch_changes import order_state
from shared.messaging.messages import (
    MAX_CONVERGE_STOCK_IDS, ConvergeMessage, OrderLineMessage, ShopRecipient, SupplierLine, UnparseableMessage,
    parse_order_line, parse_order_lines_message,
)

DATE = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
LATER = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
LINE = {"line_id": 1, "product_id": 10, "variation_id": 0, "stock_id": 70001, "quantity": 2}


def version_1_body(**fields: object) -> bytes:
    """A message as the previous ingest published it: every line carried the whole order."""
    body = {
        "schema_version": 1, "message_id": "m1", "kind": "order_line", "source": "webhook", "topic": "order.updated",
        "order_id": 812, "order_number": "812", "status": "processing", "date_modified_gmt": DATE.isoformat(),
        "deleted": False, "line": LINE, "supplier_line_ids": [1, 2], "customer_note": "ring twice",
        "recipient": {"name": "Zoë Müller", "city": "Łódź"}, "confirm": False,
    }
    return json.dumps(body | fields).encode()


def test_a_version_1_message_is_read_as_the_head_of_its_event() -> None:
    message = parse_order_line(version_1_body())
    assert (message.schema_version, message.head, message.line_count, message.event_id) == (1, True, None, "")
    assert message.supplier_line_ids == [1, 2] and message.recipient.name == "Zoë Müller"


def test_new_messages_are_version_2_and_round_trip() -> None:
    message = OrderLineMessage(topic="order.updated", order_id=1, status="pending", date_modified_gmt=DATE,
                               line=SupplierLine(**LINE), head=False, event_id="e1", line_count=3)
    assert message.schema_version == 2
    assert parse_order_line(message.to_bytes()) == message


@pytest.mark.parametrize("fields, problem", [
    ({"head": False, "supplier_line_ids": [1]}, "only the head"),
    ({"head": False, "recipient": ShopRecipient(name="x")}, "only the head"),
    ({"head": False, "customer_note": "x"}, "only the head"),
    ({"line_count": 3, "supplier_line_ids": [1, 2]}, "line_count"),
    ({"line_count": 501, "supplier_line_ids": list(range(501))}, "line_count"),
    ({"supplier_line_ids": list(range(501))}, "at most 500 supplier lines"),
])
def test_a_message_breaking_the_event_shape_is_refused(fields: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        OrderLineMessage(topic="order.updated", order_id=1, status="pending", date_modified_gmt=DATE, **fields)


def test_an_unknown_schema_version_is_unparseable() -> None:
    with pytest.raises(UnparseableMessage, match="schema_version"):
        parse_order_line(version_1_body(schema_version=3))


def line_message(date: datetime, *, head: bool) -> OrderLineMessage:
    extra = {"supplier_line_ids": [1, 2], "recipient": ShopRecipient(name="Ana"), "customer_note": "n"} if head else {}
    return OrderLineMessage(topic="order.updated", order_id=1, order_number="1", status="processing",
                            date_modified_gmt=date, line=SupplierLine(**LINE), head=head, line_count=2, **extra)


def test_the_head_records_the_orders_own_fields() -> None:
    state = order_state(line_message(DATE, head=True), {"date_modified_gmt": None})
    assert (state["supplier_line_ids"], state["recipient"]["name"], state["customer_note"]) == ([1, 2], "Ana", "n")
    assert (state["status"], state["date_modified_gmt"], state["deleted"]) == ("processing", DATE, False)


def test_a_line_of_the_recorded_state_keeps_what_its_head_recorded() -> None:
    state = order_state(line_message(DATE, head=False), {"date_modified_gmt": DATE, "supplier_line_ids": [1, 2]})
    assert "supplier_line_ids" not in state and "recipient" not in state and "customer_note" not in state


def test_a_line_of_a_newer_state_before_its_head_leaves_the_line_ids_unknown() -> None:
    state = order_state(line_message(LATER, head=False), {"date_modified_gmt": DATE, "supplier_line_ids": [1, 2]})
    assert state["supplier_line_ids"] == [] and state["date_modified_gmt"] == LATER


def test_a_version_1_message_of_more_than_500_lines_is_still_read_for_a_replay() -> None:
    message = parse_order_line(version_1_body(supplier_line_ids=list(range(1, 602))))
    assert len(message.supplier_line_ids) == 601


def test_a_convergence_request_is_read_by_its_kind_and_an_order_line_as_before() -> None:
    request = ConvergeMessage(stock_ids=[1001, 1002])
    assert (request.kind, request.schema_version, request.source) == ("converge", 1, "reconcile")
    assert parse_order_lines_message(request.to_bytes()) == request
    line = parse_order_lines_message(version_1_body())
    assert isinstance(line, OrderLineMessage) and line.order_id == 812
    # A body without a kind is an order line, so it fails with an order line's reason.
    with pytest.raises(UnparseableMessage, match="topic"):
        parse_order_lines_message(b'{"order_id": 1}')
    with pytest.raises(UnparseableMessage):
        parse_order_lines_message(b"not json")


@pytest.mark.parametrize("body, problem", [
    ({"kind": "converge", "stock_ids": []}, "stock_ids"),
    ({"kind": "converge", "stock_ids": list(range(MAX_CONVERGE_STOCK_IDS + 1))}, "stock_ids"),
    ({"kind": "converge", "stock_ids": ["x"]}, "stock_ids"),
    ({"kind": "converge", "stock_ids": [1], "schema_version": 2}, "schema_version"),
    ({"kind": "converge", "stock_ids": [1], "order_id": 5}, "order_id"),
    ({"kind": "something_else", "stock_ids": [1]}, "kind"),
])
def test_a_convergence_request_out_of_its_schema_is_unparseable(body: dict, problem: str) -> None:
    with pytest.raises(UnparseableMessage, match=problem):
        parse_order_lines_message(json.dumps(body).encode())
