"""shared/clients/rewix/fitting.py: a recipient fitted to what the supplier takes, and what was shortened (pure)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.clients.rewix import DropshippingOrder, Recipient
from shared.clients.rewix.fitting import Shortened, cut_on_word, fit_recipient, phone_number
from shared.clients.rewix.xml import TEXT_LIMITS, build_dropshipping_order, wire_text
from services.supplier_sync.notices import fitted_note
from services.supplier_sync.sending import recipient_for_supplier
from simulators.rewix.wire import parse_dropshipping_request

PHONE_72 = "+39 333 1234567 please call before delivery, the doorbell is broken!!!!!"
STREET_230 = ("Via Giuseppe Garibaldi 112, scala C, interno 14, terzo piano, citofono Bianchi-Rossi; "
              "se assenti lasciare al portiere dello stabile accanto, il civico 114, che è aperto dalle "
              "8 alle 13 e dalle 15 alle 19, grazie davvero, Giulia V.")


def test_the_cases_of_the_integration_test_are_what_they_say() -> None:
    assert (len(PHONE_72), len(STREET_230)) == (72, 230)


# -- cut on a word boundary ----------------------------------------------------------------------


def test_a_text_within_its_limit_is_left_as_it_is() -> None:
    assert cut_on_word("", 10) == ""
    assert cut_on_word("Via Roma 1", 10) == "Via Roma 1"  # exactly the limit
    assert cut_on_word("Via Roma 1 ", 11) == "Via Roma 1 "


def test_a_longer_text_is_cut_between_words_without_what_the_cut_leaves_dangling() -> None:
    assert cut_on_word("Via Roma 1, scala B", 12) == "Via Roma 1"
    assert cut_on_word("Via Roma 1 - scala B", 13) == "Via Roma 1"
    assert cut_on_word("Via Roma 1 scala", 11) == "Via Roma 1"  # the space just after the limit is a boundary
    assert cut_on_word("Via  Roma", 5) == "Via"


def test_a_text_without_a_boundary_in_reach_is_cut_at_the_limit() -> None:
    assert cut_on_word("Hauptstraße" * 3, 20) == ("Hauptstraße" * 3)[:20]
    # A boundary that would keep less than half of the limit is not worth the loss.
    assert cut_on_word("Via " + "x" * 40, 20) == ("Via " + "x" * 40)[:20]


def test_unicode_counts_characters_and_keeps_accents_on_their_letters() -> None:
    assert cut_on_word("Łódź Piotrkowska 104 Śródmieście", 20) == "Łódź Piotrkowska 104"
    decomposed = "Citta\u0300" * 5  # "Città" written with a combining grave accent
    cut = cut_on_word(decomposed, 5)
    assert cut == "Citt" and len(cut) <= 5  # the "a" goes with its accent, or not at all
    assert cut_on_word("東京都千代田区丸の内一丁目", 6) == "東京都千代田"


# -- a phone keeps its number --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "number"),
    [
        ("+39 333 123 4567 call before delivery, doorbell broken", "+39 333 123 4567"),
        (PHONE_72, "+39 333 1234567"),
        ("(+39) 333-1234567 — chiamare prima della consegna per favore", "(+39) 333-1234567"),
        ("+39 (0)2 1234 5678 ufficio, chiedere di Anna al centralino", "+39 (0)2 1234 5678"),
        ("333 1234567 - 02 7654321 la sera dopo le 19, mai prima delle 8", "333 1234567"),
        ("dopo il 12.12.26 chiamare il 333.123.4567, prima il 02/7654321", "333.123.4567"),
    ],
)
def test_a_phone_over_its_limit_keeps_the_number_in_it(phone: str, number: str) -> None:
    assert len(phone) > TEXT_LIMITS["number"]
    assert phone_number(phone, TEXT_LIMITS["number"]) == number


def test_a_phone_within_its_limit_or_without_a_number_in_it() -> None:
    assert phone_number("+39 333 1234567 call first", 50) == "+39 333 1234567 call first"
    assert phone_number("1" * 50, 50) == "1" * 50
    words = "no phone, please ring the bell twice and wait for me at the door"
    assert phone_number(words, 50) == cut_on_word(words, 50)
    assert phone_number("ext. 12 " * 10, 50) == cut_on_word("ext. 12 " * 10, 50)  # too few digits to dial


# -- the whole recipient -------------------------------------------------------------------------


def recipient(**fields: str) -> Recipient:
    return Recipient(**({"name": "Giulia Verdi", "address_1": "Via Roma 1", "postcode": "20121", "city": "Milano",
                         "countrycode": "IT"} | fields))


def test_a_recipient_within_the_limits_is_sent_as_it_is() -> None:
    within = recipient(phone="+39 333 1234567", address_2="Scala B", notes="n" * 2000)
    assert fit_recipient(within).recipient is within and fit_recipient(within).shortened == ()


def test_every_text_over_its_limit_is_fitted_and_listed_in_the_order_of_an_address() -> None:
    fitted = fit_recipient(recipient(phone=PHONE_72, address_1=STREET_230, notes="Ring twice. " * 200,
                                     city="Milano " * 20, careof="Bianchi " * 30))
    r = fitted.recipient
    assert r.phone == "+39 333 1234567"
    assert STREET_230.startswith(r.address_1) and r.address_2 == "" and len(r.address_1) <= 200
    assert r.address_1.endswith("8 alle 13 e dalle 15 alle")
    assert r.notes == ("Ring twice. " * 200)[:1996]  # "… Ring twice. Ring": cut between two words
    assert [(s.field, s.before, s.after) for s in fitted.shortened] == [
        ("company", 240, 199), ("phone", 72, 15), ("street", 230, len(r.address_1)), ("city", 140, 97),
        ("customer note", 2400, 1996)]
    assert all(s.value == getattr(r, a) for s, a in zip(fitted.shortened, ("careof", "phone", "address_1", "city", "notes")))


def test_the_street_is_address_1_and_address_2_fitted_as_one() -> None:
    fitted = fit_recipient(recipient(address_1="Via Roma 1 " + "lungo " * 20, address_2="Scala B " * 20))
    [street] = fitted.shortened
    assert street.field == "street" and street.before == len(("Via Roma 1 " + "lungo " * 20).strip() + " "
                                                              + ("Scala B " * 20).strip())
    assert fitted.recipient.address_2 == "" and fitted.recipient.street == street.value


def test_what_the_supplier_cannot_read_is_not_counted_and_a_country_is_never_cut() -> None:
    # 60 characters of which 15 are control characters XML cannot carry: 45 are sent, nothing is cut.
    phone = "+39 333 1234567\x07" * 3 + "\x01" * 12
    assert fit_recipient(recipient(phone=phone)).shortened == ()
    fitted = fit_recipient(recipient(countrycode="ITALIA"))
    assert fitted.shortened == () and fitted.recipient.countrycode == "ITALIA"


def test_the_mapping_from_the_shop_fits_the_recipient_and_the_note() -> None:
    shop = {"name": "Giulia Verdi", "company": "", "phone": PHONE_72, "address_1": STREET_230, "address_2": "",
            "postcode": "20121", "city": "Milano", "state": "MI", "country": "IT"}
    fitted = recipient_for_supplier(shop, "n" * 2500)
    assert [s.field for s in fitted.shortened] == ["phone", "street", "customer note"]
    assert fitted.recipient.notes == "n" * 2000 and fitted.recipient.province == "MI"


names = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=450)


@settings(max_examples=200, deadline=None)
@given(name=names, careof=names, phone=names, address_1=names, address_2=names, postcode=names, city=names,
       province=names, notes=st.one_of(names, st.text(min_size=1990, max_size=2600)))
def test_a_fitted_recipient_is_sent_exactly_as_fitted(name: str, careof: str, phone: str, address_1: str,
                                                      address_2: str, postcode: str, city: str, province: str,
                                                      notes: str) -> None:
    """Whatever the shop holds, the builder has nothing left to cut, and the simulated platform takes it."""
    fitted = fit_recipient(Recipient(name=name or "x", careof=careof, phone=phone, address_1=address_1,
                                     address_2=address_2, postcode=postcode or "1", city=city or "x",
                                     province=province, countrycode="IT", notes=notes))
    body = build_dropshipping_order(DropshippingOrder(key="WC-1", date=datetime(2026, 12, 1, tzinfo=timezone.utc),
                                                      recipient=fitted.recipient, items={300001: 1}))
    details = ET.fromstring(body).find("order_list/order/recipient_details")  # expat: well-formed XML 1.0
    assert details is not None
    r = fitted.recipient
    for path, value in (("recipient", r.name), ("careof", r.careof), ("notes", r.notes), ("phone/number", r.phone),
                        ("address/street_name", r.street), ("address/zip", r.postcode), ("address/city", r.city),
                        ("address/province", r.province)):
        sent = details.findtext(path) or ""
        assert sent == wire_text(value), path  # nothing left for the builder to cut
        assert len(sent) <= TEXT_LIMITS[path.rsplit("/", 1)[-1]], path
    if all(wire_text(v).strip() for v in (r.name, r.postcode, r.city)):
        [parsed] = parse_dropshipping_request(body)  # the simulated platform, as strict as the real one
        assert parsed.items == {300001: 1}


# -- the note the owner reads --------------------------------------------------------------------


def test_one_note_says_what_was_shortened_from_what_to_what_length() -> None:
    note = fitted_note([Shortened("phone", 72, 15, "+39 333 1234567"), Shortened("street", 230, 196, "Via …"),
                        Shortened("customer note", 5000, 2000, "n" * 2000)])
    assert "phone from 72 to 15 characters (\"+39 333 1234567\")" in note
    assert 'street from 230 to 196 characters ("Via …")' in note
    assert "customer note from 5,000 to 2,000 characters" in note and "n" * 200 not in note
