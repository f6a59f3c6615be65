"""The Rewix wire format: what we send, what we accept, what we refuse."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from shared.clients.rewix import DropshippingOrder, Recipient, is_final, status_name
from shared.failures.errors import PermanentError
from shared.clients.rewix.xml import (
    build_dropshipping_order,
    build_lock_request,
    format_date,
    parse_catalog,
    parse_lock_response,
    parse_order_statuses,
)
from simulators.rewix.wire import parse_dropshipping_request, parse_lock_request


def _order(**recipient_overrides: str) -> DropshippingOrder:
    fields = dict(name="Zoë Müller", address_1="Via Roma 1", postcode="20121", city="Milano", countrycode="it")
    fields.update(recipient_overrides)
    return DropshippingOrder(
        key="WC-1001",
        date=datetime(2024, 3, 5, 14, 7, 0, tzinfo=timezone.utc),
        recipient=Recipient(**fields),
        items={123456: 2, 123460: 1},
    )


def test_lock_request_always_sends_all_three_operations() -> None:
    root = ET.fromstring(build_lock_request(lock={123456: 1}))
    assert root.tag == "root"
    operations = {op.get("type"): op for op in root.findall("operation")}
    assert set(operations) == {"lock", "unlock", "set"}
    assert [(m.get("stock_id"), m.get("quantity")) for m in operations["lock"]] == [("123456", "1")]
    assert len(operations["unlock"]) == 0 and len(operations["set"]) == 0


def test_lock_request_is_what_the_strict_server_accepts() -> None:
    body = build_lock_request(set={1: 0, 2: 5}, lock={3: 2}, unlock={4: 1})
    ops = {(op.type, op.stock_id, op.quantity) for op in parse_lock_request(body)}
    assert ops == {("set", 1, 0), ("set", 2, 5), ("lock", 3, 2), ("unlock", 4, 1)}


def test_lock_request_refuses_negative_quantities() -> None:
    with pytest.raises(ValueError):
        build_lock_request(set={1: -1})


def test_lock_response_reads_attributes() -> None:
    growing = parse_lock_response(
        b'<root order_id="90211"><model stock_id="123456" locked="2" available="7"/>'
        b'<model stock_id="123460" locked="1" available="0"/></root>'
    )
    assert growing.order_id == 90211
    assert growing.models[123456].locked == 2 and growing.models[123456].available == 7
    assert growing.locked(123460) == 1
    assert growing.locked(999) == 0  # missing model = nothing locked = short


def test_lock_response_without_order_id_means_no_growing_order() -> None:
    assert parse_lock_response(b"<root/>").order_id == 0


@pytest.mark.parametrize("body", [b"", b"<root", b'<root order_id="x"/>', b'<root><model stock_id="1"/></root>', b"<other/>"])
def test_bad_lock_response_is_permanent(body: bytes) -> None:
    with pytest.raises(PermanentError):
        parse_lock_response(body)


def test_date_format_is_utc_with_fixed_offset() -> None:
    rome = timezone(timedelta(hours=1))
    assert format_date(datetime(2024, 3, 5, 15, 7, 0, tzinfo=rome)) == "2024/03/05 14:07:00 +0000"
    assert format_date(datetime(2017, 1, 31, 23, 59, 59)) == "2017/01/31 23:59:59 +0000"


def test_dropshipping_order_layout() -> None:
    root = ET.fromstring(build_dropshipping_order(_order(address_2="Scala B", phone="+39 333 1234567", province="MI")))
    order = root.find("order_list/order")
    assert order is not None
    assert order.findtext("key") == "WC-1001"
    assert order.findtext("date") == "2024/03/05 14:07:00 +0000"
    assert order.findtext("recipient_details/recipient") == "Zoë Müller"
    assert order.findtext("recipient_details/address/street_name") == "Via Roma 1 Scala B"
    assert order.findtext("recipient_details/address/zip") == "20121"
    assert order.findtext("recipient_details/address/province") == "MI"
    assert order.findtext("recipient_details/address/countrycode") == "IT"
    assert order.findtext("recipient_details/phone/number") == "+39 333 1234567"
    items = {i.findtext("stock_id"): i.findtext("quantity") for i in order.iterfind("item_list/item")}
    assert items == {"123456": "2", "123460": "1"}
    assert order.find("parsedDate") is None


def test_address_and_phone_present_even_when_empty() -> None:
    root = ET.fromstring(build_dropshipping_order(_order()))
    details = root.find("order_list/order/recipient_details")
    assert details is not None
    assert details.find("phone") is not None and details.find("phone/number") is not None
    assert details.find("phone/prefix") is not None
    assert details.findtext("address/street_name") == "Via Roma 1"  # no trailing blank for an empty line 2
    for tag in ("street_type", "address_number", "province"):
        assert details.find(f"address/{tag}") is not None


def test_non_ascii_survives_the_strict_server() -> None:
    body = build_dropshipping_order(_order(name="Łukasz Żółć 李雷", city="Kraków", countrycode="PL", careof="Ünïcode & <Co>"))
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    (parsed,) = parse_dropshipping_request(body)
    assert parsed.recipient["recipient"] == "Łukasz Żółć 李雷"
    assert parsed.recipient["careof"] == "Ünïcode & <Co>"
    assert parsed.recipient["city"] == "Kraków"
    assert parsed.items == {123456: 2, 123460: 1}
    assert parsed.date == "2024/03/05 14:07:00 +0000"


def test_order_without_items_is_refused_before_sending() -> None:
    with pytest.raises(ValueError):
        build_dropshipping_order(DropshippingOrder("K", datetime.now(timezone.utc), _order().recipient, {}))


def test_status_response_with_unknown_elements() -> None:
    body = """<?xml version="1.0" encoding="UTF-8"?>
    <root><order_list><order>
      <parsedDate>2024-03-07T09:02:11Z</parsedDate><customer_id>77</customer_id>
      <order_id>4711</order_id><ext_ref>WC-1001</ext_ref><status>3</status><substatus>1</substatus>
      <last_update>2024/03/07 10:02:11 +0100</last_update>
      <tracking_code>1Z999</tracking_code><tracking_url>https://t.example/?n=1Z999</tracking_url>
      <carrier_name>UPS</carrier_name>
    </order></order_list></root>"""
    (status,) = parse_order_statuses(body)
    assert (status.order_id, status.key, status.status, status.substatus) == (4711, "WC-1001", 3, 1)
    assert status.last_update == "2024/03/07 10:02:11 +0100"
    assert (status.tracking_code, status.tracking_url, status.carrier_name) == ("1Z999", "https://t.example/?n=1Z999", "UPS")
    assert status.status_name == "Dispatched" and status.is_final


def test_status_response_optional_fields_and_empty_list() -> None:
    (status,) = parse_order_statuses("<root><order_list><order><order_id>5</order_id><status>5</status></order></order_list></root>")
    assert status.key is None and status.substatus is None and status.tracking_code is None
    assert parse_order_statuses("<root><order_list/></root>") == []


def test_status_without_status_is_permanent() -> None:
    with pytest.raises(PermanentError):
        parse_order_statuses("<root><order_list><order><order_id>5</order_id></order></order_list></root>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<root order_id="1"><model stock_id="1" locked="1" available="&lol3;"/></root>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE root [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<root><order_list><order><order_id>1</order_id><status>5</status><ext_ref>&xxe;</ext_ref></order></order_list></root>"""


def test_entity_expansion_is_refused() -> None:
    with pytest.raises(PermanentError):
        parse_lock_response(BILLION_LAUGHS)
    with pytest.raises(PermanentError):
        parse_order_statuses(EXTERNAL_ENTITY)


def test_catalog_json() -> None:
    catalog = parse_catalog(
        b'{"lastUpdate": "2024-03-05T14:07:00.000Z", "pageItems": ['
        b'{"id": 10, "code": "P10", "models": [{"id": 101, "code": "P10", "barcode": "8001234567890", "availability": 4},'
        b'{"id": 102, "code": "P10", "barcode": null, "availability": 0}]},'
        b'{"id": 11, "code": "P11", "models": []}]}'
    )
    assert catalog.last_update == "2024-03-05T14:07:00.000Z"
    assert [(m.stock_id, m.product_id, m.barcode, m.availability) for m in catalog.models] == [
        (101, 10, "8001234567890", 4),
        (102, 10, "", 0),
    ]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"pageItems": [{"models": [{"id": 1}]}]}'])
def test_bad_catalog_is_permanent(body: bytes) -> None:
    with pytest.raises(PermanentError):
        parse_catalog(body)


def test_status_names_and_finality() -> None:
    assert [status_name(c) for c in (5, 2, 3001, 3002, 3, 2000, 2001, 2002)] == [
        "Booked", "Confirmed", "Working on", "Ready", "Dispatched", "Cancelled", "Failed", "Verify failed",
    ]
    assert status_name(42) == "Unknown status 42"
    assert all(is_final(c) for c in (3, 2000, 2001, 2002, 2003, 2005, 2999))
    assert not any(is_final(c) for c in (0, 2, 5, 3001, 3002, 5003))
