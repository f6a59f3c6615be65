"""shared.orders.events.convert: WooCommerce order resource -> order-line messages (pure, no I/O)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.messaging.messages import ShopRecipient, parse_order_line
from shared.orders.events import CUT_MARK, MAX_QUANTITY, InvalidOrder, convert, parse_gmt
from shared.orders.vocabulary import ORDER_TOPICS
from shared.products.mapping import LineRef

MAPPED = {(2101, 2104): 70001, (3307, 0): 70002}
SKUS = {"JKT-M": 70003}


def resolve(lines: list[LineRef]) -> Mapping[LineRef, int]:
    """The product map first, then the SKU, like ProductResolver."""
    found = {}
    for line in lines:
        if (line.product_id, line.variation_id) in MAPPED:
            found[line] = MAPPED[(line.product_id, line.variation_id)]
        elif line.sku in SKUS:
            found[line] = SKUS[line.sku]
    return found


def item(line_id: int, product_id: int, variation_id: int = 0, quantity: int = 1, sku: str | None = None,
         **extra: Any) -> dict[str, Any]:
    return {"id": line_id, "name": f"Product {product_id}", "product_id": product_id, "variation_id": variation_id,
            "quantity": quantity, "sku": sku, "price": 10.0, "meta_data": [], **extra}


def order(**fields: Any) -> dict[str, Any]:
    base = {
        "id": 812,
        "number": "812",
        "status": "processing",
        "date_modified_gmt": "2026-11-26T09:30:00",
        "billing": {"first_name": "Zoë", "last_name": "Müller", "address_1": "ul. Piotrkowska 104/2",
                    "city": "Łódź", "postcode": "90-926", "country": "PL", "phone": "+48 42 123 45 67",
                    "email": "zoe@example.com"},
        "shipping": {"first_name": "", "last_name": "", "address_1": "", "city": "", "postcode": "",
                     "country": "", "phone": ""},
        "customer_note": "",
        "line_items": [item(1, 2101, 2104, 2), item(2, 3307, 0, 1), item(3, 9100, 0, 5, "GIFT")],
    }
    return base | fields


# -- examples --------------------------------------------------------------------------------------


def test_one_message_per_supplier_line_with_every_supplier_line_listed() -> None:
    result = convert(order(), "order.created", resolve)
    assert result.order_id == 812 and result.has_supplier_lines
    assert [(m.line.line_id, m.line.stock_id, m.line.quantity) for m in result.messages] == [(1, 70001, 2), (2, 70002, 1)]
    head, *others = result.messages
    assert head.head and head.supplier_line_ids == [1, 2]
    assert all(not m.head and m.supplier_line_ids == [] and m.recipient is None for m in others)
    assert {(m.event_id, m.line_count) for m in result.messages} == {(head.event_id, 2)} and head.event_id
    for message in result.messages:
        assert (message.topic, message.status, message.order_number, message.source) == (
            "order.created", "processing", "812", "webhook")
        assert message.date_modified_gmt == datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
        assert parse_order_line(message.to_bytes()) == message


def test_a_line_resolves_by_sku_when_not_in_the_product_map() -> None:
    result = convert(order(line_items=[item(7, 4400, 4401, 3, "JKT-M")]), "order.updated", resolve)
    [message] = result.messages
    assert (message.line.stock_id, message.line.variation_id, message.line.quantity) == (70003, 4401, 3)


# -- who receives the parcel: one address block whole, never a mix --------------------------------

GIFT_SHIPPING = {"first_name": "Giulia", "last_name": "Verdi", "company": "", "address_1": "Via Roma 1",
                 "address_2": "", "city": "Milano", "state": "MI", "postcode": "20121", "country": "IT", "phone": ""}
BUYER_BILLING = {"first_name": "Marco", "last_name": "Neri", "company": "Neri Import SRL",
                 "address_1": "Viale Europa 99", "address_2": "Scala B, int. 7", "city": "Torino", "state": "CA",
                 "postcode": "10121", "country": "IT", "email": "marco.neri@example.test", "phone": "+39 011 5550000"}


def recipient(**fields: Any) -> ShopRecipient:
    [head, *_] = convert(order(**fields), "order.created", resolve).messages
    assert head.recipient is not None
    return head.recipient


def test_a_gift_goes_to_the_shipping_address_whole_with_nothing_of_the_buyers() -> None:
    gift = recipient(shipping=GIFT_SHIPPING, billing=BUYER_BILLING)
    assert gift == ShopRecipient(name="Giulia Verdi", company="", phone="+39 011 5550000", address_1="Via Roma 1",
                                 address_2="", postcode="20121", city="Milano", state="MI", country="IT")
    # The empty shipping state stays empty: the buyer's "CA" is not a province of Milano.
    assert recipient(shipping=GIFT_SHIPPING | {"state": ""}, billing=BUYER_BILLING).state == ""


def test_an_order_without_a_shipping_address_goes_to_the_billing_address_whole() -> None:
    empty = {field: "" for field in GIFT_SHIPPING}
    for shipping in (empty, {}, None, empty | {"country": "IT", "first_name": "Giulia", "city": "Milano"}):
        assert recipient(shipping=shipping, billing=BUYER_BILLING) == ShopRecipient(
            name="Marco Neri", company="Neri Import SRL", phone="+39 011 5550000", address_1="Viale Europa 99",
            address_2="Scala B, int. 7", postcode="10121", city="Torino", state="CA", country="IT")


def test_a_city_and_its_postcode_are_a_shipping_address() -> None:
    shipping = {"first_name": "Ana", "last_name": "Lima", "city": "Porto", "postcode": "4000-322", "country": "PT"}
    assert recipient(shipping=shipping, billing=BUYER_BILLING) == ShopRecipient(
        name="Ana Lima", phone="+39 011 5550000", postcode="4000-322", city="Porto", country="PT")
    # A street alone is one too; blanks are not.
    assert recipient(shipping={"address_1": "Rua Nova 5"}, billing=BUYER_BILLING).address_1 == "Rua Nova 5"
    assert recipient(shipping={"address_1": "  ", "city": "Porto"}, billing=BUYER_BILLING).city == "Torino"


def test_the_phone_is_the_shipping_phone_else_the_billing_phone() -> None:
    assert recipient(shipping=GIFT_SHIPPING | {"phone": "+39 333 7654321"}, billing=BUYER_BILLING).phone == "+39 333 7654321"
    assert recipient(shipping=GIFT_SHIPPING, billing=BUYER_BILLING).phone == "+39 011 5550000"
    # Also when the billing block is the address: a shipping phone alone is still the courier's number.
    assert recipient(shipping={"phone": "+39 333 7654321"}, billing=BUYER_BILLING).phone == "+39 333 7654321"
    assert recipient(shipping={}, billing=BUYER_BILLING | {"phone": ""}).phone == ""


def test_the_recipient_carries_no_e_mail() -> None:
    # The supplier's order has no field for one (docs/rewix-api.md §4.3): none is made up.
    assert "email" not in recipient(shipping=GIFT_SHIPPING, billing=BUYER_BILLING).model_dump()


def test_an_order_without_supplier_lines_gives_one_line_less_message() -> None:
    result = convert(order(line_items=[item(3, 9100, 0, 5, "GIFT")]), "order.updated", resolve)
    assert not result.has_supplier_lines
    [message] = result.messages
    assert (message.line, message.supplier_line_ids) == (None, [])


def test_a_delete_carries_only_the_id_and_releases() -> None:
    result = convert({"id": 812}, "order.deleted", resolve)
    [message] = result.messages
    assert (message.order_id, message.deleted, message.status, message.date_modified_gmt, message.line) == (
        812, True, "trash", None, None)


@pytest.mark.parametrize("status", ["checkout-draft", "draft", "auto-draft"])
def test_drafts_are_ignored(status: str) -> None:
    result = convert(order(status=status), "order.created", resolve)
    assert result.messages == [] and status in (result.ignored or "")


def test_missing_optional_fields_and_unknown_extras() -> None:
    body = {"id": "77", "status": "on-hold", "date_modified_gmt": "2026-11-26T09:30:00",
            "line_items": [{"id": 5, "product_id": "3307", "quantity": 1, "whatever": [1, {"x": None}]}],
            "x_plugin_field": {"nested": True}}
    [message] = convert(body, "order.updated", resolve).messages
    assert (message.order_id, message.order_number, message.line.stock_id) == (77, "77", 70002)
    assert message.recipient.name == "" and message.customer_note == ""


def test_dates_are_utc_whatever_their_offset() -> None:
    assert parse_gmt("2026-11-26T09:30:00") == datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    assert parse_gmt("2026-11-26T10:30:00+01:00") == datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "JSON object"),
        ({"code": "woocommerce_rest_cannot_view", "message": "no"}, "woocommerce_rest_cannot_view"),
        ({"status": "pending"}, "no id"),
        ({"id": 0}, "id is out of range"),
        ({"id": True}, "id must be an integer"),
        ({"id": "²"}, "id must be an integer"),
        ({"id": "١٢"}, "id must be an integer"),
        ({"id": 1.5}, "id must be an integer"),
        ({"id": 2**63}, "id is out of range"),
        (order(status=None), "status must be a string"),
        (order(date_modified_gmt=None), "date_modified_gmt must be a string"),
        (order(date_modified_gmt="0001-01-01T00:00:00+05:00"), "date_modified_gmt is out of range"),
        (order(date_modified_gmt="9999-12-31T23:00:00-05:00"), "date_modified_gmt is out of range"),
        (order(date_modified_gmt="26/11/2026"), "ISO-8601"),
        (order(line_items="none"), "line_items must be an array"),
        (order(line_items=[[1]]), "line_items[0] must be an object"),
        (order(line_items=[item(1, 2101, 2104), item(1, 3307)]), "unique"),
        (order(line_items=[item(1, 2101, 2104, -1)]), "line_items[0].quantity is out of range"),
        (order(line_items=[item(1, 2101, 2104, MAX_QUANTITY + 1)]), "line_items[0].quantity is out of range"),
        (order(line_items=[item(1, 2101, 2104, sku=5)]), "line_items[0].sku must be a string"),
        (order(shipping="Via Roma 1"), "shipping and billing must be objects"),
        (order(billing={"phone": 3331234567}), "billing.phone must be a string"),
    ],
)
def test_what_is_not_an_order_raises_invalid_order_naming_it(body: Any, problem: str) -> None:
    with pytest.raises(InvalidOrder) as raised:
        convert(body, "order.updated", resolve)
    assert problem in str(raised.value)


def test_a_topic_that_is_not_an_order_event_is_the_callers_mistake() -> None:
    with pytest.raises(ValueError) as raised:
        convert(order(), "product.updated", resolve)
    assert not isinstance(raised.value, InvalidOrder)


# -- properties ------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# Values a field may take: right-looking and wrong-looking.
ids = st.one_of(st.integers(min_value=-5, max_value=2**64), st.sampled_from(["12", " 7 ", "²", "", "x", "1e3"]), json_values)
dates = st.one_of(
    st.sampled_from(["2026-11-26T09:30:00", "2026-11-26T10:30:00+01:00", "0001-01-01T00:00:00+05:00",
                     "9999-12-31T23:59:59-01:00", "2026-02-30T00:00:00", "2026-11-26"]),
    st.datetimes().map(lambda d: d.isoformat()),
    json_values,
)
texts = st.one_of(st.none(), st.text(max_size=10), st.sampled_from(["\ud800", "a\x00b"]), json_values)
line_items_like = st.lists(
    st.one_of(
        st.fixed_dictionaries({}, optional={"id": ids, "product_id": ids, "variation_id": ids, "quantity": ids,
                                            "sku": texts, "name": texts}),
        json_values,
    ),
    max_size=4,
) | json_values
address_like = st.fixed_dictionaries({}, optional={k: texts for k in ("first_name", "last_name", "city", "phone")}) | json_values
order_like = st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "code": texts,
        "status": st.one_of(st.sampled_from(["pending", "processing", "checkout-draft", "trash"]), texts),
        "number": texts,
        "date_modified_gmt": dates,
        "line_items": line_items_like,
        "shipping": address_like,
        "billing": address_like,
        "customer_note": texts,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(json_values, order_like), topic=st.sampled_from(sorted(ORDER_TOPICS)))
def test_convert_raises_nothing_but_invalid_order(body: Any, topic: str) -> None:
    try:
        result = convert(body, topic, resolve)
    except InvalidOrder:
        return
    for message in result.messages:  # whatever it accepted can be sent and read back
        assert parse_order_line(message.to_bytes()) == message


@st.composite
def valid_orders(draw: st.DrawFn) -> tuple[dict[str, Any], dict[tuple[int, int], int]]:
    """A well-formed order and a product map covering some of its lines."""
    line_ids = draw(st.lists(st.integers(min_value=1, max_value=2**40), unique=True, max_size=8))
    lines = [
        item(
            line_id,
            draw(st.integers(min_value=1, max_value=50)),
            draw(st.sampled_from([0, 0, 1, 2])),
            draw(st.integers(min_value=0, max_value=MAX_QUANTITY)),
            draw(st.none() | st.text(max_size=6).filter(lambda s: "\x00" not in s)),
        )
        for line_id in line_ids
    ]
    pairs = sorted({(line["product_id"], line["variation_id"]) for line in lines})
    mapped = draw(st.sets(st.sampled_from(pairs), max_size=len(pairs))) if pairs else set()
    product_map = {pair: 10_000 + index for index, pair in enumerate(sorted(mapped))}
    status = draw(st.sampled_from(["pending", "on-hold", "processing", "completed", "cancelled", "refunded", "failed"]))
    body = order(id=draw(st.integers(min_value=1, max_value=2**40)), status=status, line_items=lines,
                 number=draw(st.text(min_size=1, max_size=8).filter(lambda s: s.isprintable())))
    return body, product_map


@settings(max_examples=200, deadline=None)
@given(case=valid_orders(), topic=st.sampled_from(["order.created", "order.updated", "order.restored"]))
def test_valid_orders_give_one_message_per_resolvable_line(
    case: tuple[dict[str, Any], dict[tuple[int, int], int]], topic: str
) -> None:
    body, product_map = case

    def by_map(lines: list[LineRef]) -> Mapping[LineRef, int]:
        return {l: product_map[(l.product_id, l.variation_id)] for l in lines if (l.product_id, l.variation_id) in product_map}

    result = convert(body, topic, by_map)
    resolvable = [line for line in body["line_items"] if (line["product_id"], line["variation_id"]) in product_map]
    expected_ids = [line["id"] for line in resolvable]
    assert result.order_id == body["id"]
    if not resolvable:
        [message] = result.messages
        assert message.line is None and message.supplier_line_ids == [] and not result.has_supplier_lines
        return
    assert result.has_supplier_lines
    assert [m.line.line_id for m in result.messages] == expected_ids
    for message, line in zip(result.messages, resolvable):
        assert message.line.quantity == line["quantity"]
        assert message.line.stock_id == product_map[(line["product_id"], line["variation_id"])]
        assert message.supplier_line_ids == (expected_ids if message is result.messages[0] else [])
        assert message.head == (message is result.messages[0]) and message.line_count == len(expected_ids)
        assert (message.order_id, message.status, message.topic) == (body["id"], body["status"], topic)
    assert len({m.message_id for m in result.messages}) == len(result.messages)


# -- limits: what the database and the supplier could not take is refused here, by name ----------


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def test_a_date_more_than_a_day_ahead_is_refused_naming_the_limit() -> None:
    with pytest.raises(InvalidOrder, match="more than a day in the future"):
        convert(order(date_modified_gmt="9999-12-31T23:59:59"), "order.updated", resolve, now=NOW)
    with pytest.raises(InvalidOrder, match="date_modified_gmt"):
        convert(order(date_modified_gmt="2026-11-27T12:00:01"), "order.updated", resolve, now=NOW)
    # A shop clock a few hours fast is still a shop.
    assert convert(order(date_modified_gmt="2026-11-27T11:59:00"), "order.updated", resolve, now=NOW).messages


def test_more_than_500_supplier_lines_is_refused_naming_the_limit() -> None:
    many = [item(n, 2101, 2104) for n in range(1, 502)]
    with pytest.raises(InvalidOrder, match="501 supplier lines; the limit is 500"):
        convert(order(line_items=many), "order.updated", resolve, now=NOW)
    assert len(convert(order(line_items=many[:500]), "order.updated", resolve, now=NOW).messages) == 500
    # The shop's own lines do not count.
    own = many[:500] + [item(n, 9100, 0, 1, "GIFT") for n in range(600, 700)]
    assert len(convert(order(line_items=own), "order.updated", resolve, now=NOW).messages) == 500


def test_a_status_longer_than_its_column_is_refused_naming_it() -> None:
    # Statuses are WooCommerce's, never typed by a customer: a longer one is not a real shop's.
    with pytest.raises(InvalidOrder, match="status is longer than 50 characters"):
        convert(order(status="x" * 51), "order.updated", resolve, now=NOW)
    assert convert(order(status="x" * 50), "order.updated", resolve, now=NOW).messages


# -- text is never a reason to refuse an order ---------------------------------------------------


def test_long_text_is_taken_whole_and_fitted_only_when_the_order_is_sent() -> None:
    street, phone = "Via Roma 1, " + "scala B interno 7 " * 12, "+39 333 1234567 " + "call before delivery " * 3
    body = order(shipping={"first_name": "Z" * 300, "address_1": street, "phone": phone, "postcode": "9" * 30,
                           "country": "ITALIA"}, customer_note="n" * 5000)
    [first, *_] = convert(body, "order.updated", resolve, now=NOW).messages
    assert (first.recipient.name, first.recipient.address_1, first.recipient.phone) == ("Z" * 300, street.strip(), phone.strip())
    assert (first.recipient.postcode, first.recipient.country) == ("9" * 30, "ITALIA")
    assert first.customer_note == "n" * 5000


def test_a_number_longer_than_its_column_is_cut_and_marked_as_cut() -> None:
    [first, *_] = convert(order(number="9" * 150), "order.updated", resolve, now=NOW).messages
    assert first.order_number == "9" * 99 + CUT_MARK and len(first.order_number) == 100
    [first, *_] = convert(order(number="9" * 100), "order.updated", resolve, now=NOW).messages
    assert first.order_number == "9" * 100


def test_nul_and_lone_surrogates_are_dropped_from_every_text() -> None:
    body = order(number="A\x00B", status="processing\x00", customer_note="ring\x00 twice \ud800",
                 shipping={"first_name": "Zo\udce9", "address_1": "Via\x00 Roma 1", "phone": "+39\x00 333 1234567"},
                 line_items=[item(7, 4400, 4401, 1, "JKT\x00-M")])
    [first] = convert(body, "order.updated", resolve, now=NOW).messages
    assert (first.order_number, first.status, first.customer_note) == ("AB", "processing", "ring twice ")
    assert (first.recipient.name, first.recipient.address_1, first.recipient.phone) == ("Zo", "Via Roma 1", "+39 333 1234567")
    assert first.line.stock_id == 70003  # the SKU, cleaned, still matches
    assert parse_order_line(first.to_bytes()) == first


# Any text at all, control characters, NUL and lone surrogates included.
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300)


@settings(max_examples=200, deadline=None)
@given(texts=st.fixed_dictionaries({field: any_text for field in ("number", "customer_note", "sku", "first_name",
                                                                   "address_1", "address_2", "phone", "city", "state")}))
def test_no_text_in_a_well_formed_order_gets_it_refused(texts: dict[str, str]) -> None:
    address = {f: texts[f] for f in ("first_name", "address_1", "address_2", "phone", "city", "state")}
    body = order(number=texts["number"], customer_note=texts["customer_note"], shipping=address, billing=address,
                 line_items=[item(1, 2101, 2104, 2, texts["sku"])])
    [message] = convert(body, "order.updated", resolve, now=NOW).messages
    assert parse_order_line(message.to_bytes()) == message
    assert len(message.order_number) <= 100
