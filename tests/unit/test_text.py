"""shared.orders.text: what outside text becomes before it is stored, sent to the supplier or logged."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.clients.rewix import DropshippingOrder, Recipient
from shared.clients.rewix.xml import TEXT_LIMITS, build_dropshipping_order, wire_text
from shared.orders.text import bounded, mask_free_text, storable, storable_json, stored_reason, xml_safe
from simulators.rewix.wire import parse_dropshipping_request

# Every code point, surrogates and non-characters included: what JSON from a shop can hold.
ANY_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=300)


def test_storable_removes_nul_and_lone_surrogates_only() -> None:
    assert storable("Zo\x00ë\ud800 Müller\x1b") == "Zoë Müller\x1b"
    assert storable("plain") == "plain"


def test_storable_json_cleans_keys_and_nested_strings() -> None:
    value = {"x-reason\x00": ["a\x00b", {"k": "c\x00"}], "n": 3, "none": None}
    assert storable_json(value) == {"x-reason": ["ab", {"k": "c"}], "n": 3, "none": None}


@given(ANY_TEXT)
def test_storable_text_encodes_as_utf8_without_nul(text: str) -> None:
    cleaned = storable(text)
    assert "\x00" not in cleaned
    cleaned.encode("utf-8")  # raises on a lone surrogate


def test_xml_safe_drops_what_xml_cannot_carry_and_keeps_the_rest() -> None:
    assert xml_safe("Via\x0b Roma\x1b[31m 1\x00\ufffe\ud800\x7f\x85\x9f") == "Via Roma[31m 1"
    assert xml_safe("tab\tnewline\nreturn\r é 😀") == "tab\tnewline\nreturn\r é 😀"


def test_bounded_cuts_only_what_is_too_long() -> None:
    assert bounded("abc", 5) == "abc"
    assert bounded("abcdef", 5) == "abcde"


def test_mask_free_text_masks_emails_phones_and_url_credentials() -> None:
    body = ("HTTP 400: recipient zoe.muller@example.com phone +48 42 123 45 67 refused; "
            "db postgresql://rewix:s3cret@db:5432/rewix")
    masked = mask_free_text(body)
    assert "zoe.muller@example.com" not in masked and "[email]" in masked
    assert "123 45 67" not in masked and "[phone]" in masked
    assert "s3cret" not in masked and "postgresql://rewix:[secret]@db:5432/rewix" in masked
    assert masked.startswith("HTTP 400: recipient")


def test_mask_free_text_leaves_dates_ids_and_paths_readable() -> None:
    text = ("POST /restful/ghost/orders/0/dropshipping: HTTP 500 at 2026-12-01T19:47:38.123456+00:00, "
            "2026/12/01 19:47:38 +0000, order 1234567, stock_id 300001, /clientkey/12345678")
    assert mask_free_text(text) == text


def test_stored_reason_is_masked_and_storable() -> None:
    assert stored_reason("refused\x00 for +39 02 1234 5678") == "refused for [phone]"


# -- the supplier's XML: arbitrary text in, a document a strict parser reads ---------------------


def _text_of(root: ET.Element, path: str) -> str:
    element = root.find(path)
    assert element is not None, path
    return element.text or ""


def _expected(text: str, tag: str) -> str:
    return bounded(xml_safe(text).replace("\r\n", "\n").replace("\r", "\n"), TEXT_LIMITS[tag])


@settings(max_examples=300, deadline=None)
@given(name=ANY_TEXT, careof=ANY_TEXT, note=st.one_of(ANY_TEXT, st.text(min_size=1990, max_size=2100)),
       address_1=ANY_TEXT, postcode=ANY_TEXT, city=ANY_TEXT, province=ANY_TEXT, phone=ANY_TEXT,
       country=ANY_TEXT, key=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                                     min_size=1, max_size=120))
def test_any_text_round_trips_through_the_builder_and_a_strict_parser(
    name: str, careof: str, note: str, address_1: str, postcode: str, city: str, province: str, phone: str,
    country: str, key: str,
) -> None:
    order = DropshippingOrder(
        key=key, date=datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc),
        recipient=Recipient(name=name, careof=careof, notes=note, address_1=address_1, postcode=postcode,
                            city=city, province=province, phone=phone, countrycode=country),
        items={300001: 2},
    )
    body = build_dropshipping_order(order)
    root = ET.fromstring(body)  # expat: any character XML 1.0 forbids is a ParseError
    details = "order_list/order/recipient_details"
    assert _text_of(root, "order_list/order/key") == _expected(key, "key")
    assert _text_of(root, f"{details}/recipient") == _expected(name, "recipient")
    assert _text_of(root, f"{details}/careof") == _expected(careof, "careof")
    assert _text_of(root, f"{details}/notes") == _expected(note, "notes")
    assert len(_text_of(root, f"{details}/notes")) <= 2000
    assert _text_of(root, f"{details}/address/street_name") == _expected(address_1.strip(), "street_name")
    assert _text_of(root, f"{details}/address/zip") == _expected(postcode, "zip")
    assert _text_of(root, f"{details}/address/city") == _expected(city, "city")
    assert _text_of(root, f"{details}/address/province") == _expected(province, "province")
    assert _text_of(root, f"{details}/phone/number") == _expected(phone, "number")
    # Never cut (a cut code names another country): sent as it is, for the supplier to refuse.
    assert _text_of(root, f"{details}/address/countrycode") == wire_text(country).strip().upper()


def test_control_characters_in_a_paid_order_no_longer_break_the_document() -> None:
    order = DropshippingOrder(
        key="WC-1", date=datetime(2026, 12, 1, tzinfo=timezone.utc),
        recipient=Recipient(name="Zoë\x0b Müller", address_1="Via\x1b Roma 1", postcode="20121", city="Milano",
                            countrycode="IT", notes="ring twice\x00\x07" + "x" * 3000),
        items={300001: 1},
    )
    body = build_dropshipping_order(order)
    root = ET.fromstring(body)
    assert _text_of(root, "order_list/order/recipient_details/recipient") == "Zoë Müller"
    assert _text_of(root, "order_list/order/recipient_details/address/street_name") == "Via Roma 1"
    note = _text_of(root, "order_list/order/recipient_details/notes")
    assert note.startswith("ring twicexxx") and len(note) == 2000
    # The simulated platform, which refuses what the real one refuses, takes it.
    [parsed] = parse_dropshipping_request(body)
    assert parsed.items == {300001: 1}


def test_catalog_codes_are_stored_without_nul_and_within_their_column() -> None:
    from shared.clients.rewix.xml import parse_catalog

    body = ('{"lastUpdate": "x", "pageItems": [{"id": 1, "models": ['
            '{"id": 10, "code": "AB\\u0000C", "barcode": "' + "9" * 250 + '", "availability": 1}]}]}')
    [model] = parse_catalog(body).models
    assert model.code == "ABC" and model.barcode == "9" * 200
