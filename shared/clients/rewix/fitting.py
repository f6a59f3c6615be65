"""A recipient fitted to what the supplier takes of each text (xml.TEXT_LIMITS), and what was shortened.

The supplier refuses a whole order for one text longer than its column, while
customers type delivery instructions into the phone field and directions into
the street, and WooCommerce stores them. Rather than lose the order, each text
over its limit is fitted when the order is sent:

- a phone keeps the number in it: the courier dials or texts the phone field,
  so "+39 333 123 4567 call before delivery, doorbell broken" becomes
  "+39 333 123 4567"; a phone with no number in it is cut like any text;
- any other text is cut on a word boundary, without the punctuation the cut
  leaves dangling; a text with no boundary in reach (one long run of
  characters) is cut at the limit, never inside a character with its accents.

Limits count characters as the supplier reads them (`xml.wire_text`). Pure and
repeatable: every attempt to send an order fits it the same way, so the owner
is told once what the supplier received.
"""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass

from shared.clients.rewix.values import Recipient
from shared.clients.rewix.xml import TEXT_LIMITS, wire_text
from shared.orders.text import is_phone_number

# One phone number as people write it: an optional "+" or "(+39)", digit groups joined by one
# separator (" ", ".", "-", "/", parentheses). A wider gap (" - ", " / ", ", ") ends the number,
# so "333 1234567 - 02 7654321" gives its first number only.
_PHONE_NUMBER = re.compile(r"(?:\+|\(\+?\d+\)\s?)?\d+(?:(?:[ .\-/]|\)\s?|\s?\()\d+)*")
# What a cut on a word boundary leaves at its end and is better without.
_DANGLING = " \t\n,;:-–—/(&+"


@dataclass(frozen=True)
class Shortened:
    """One text sent shorter than the shop has it."""

    field: str  # as the shop owner calls it: "phone", "street", "customer note"…
    before: int  # characters, as the supplier would have read it whole
    after: int
    value: str  # what the supplier receives


@dataclass(frozen=True)
class FittedRecipient:
    recipient: Recipient
    shortened: tuple[Shortened, ...] = ()


# Recipient attribute, the element whose limit it meets, the owner's word for it.
_FIELDS = (
    ("name", "recipient", "name"),
    ("careof", "careof", "company"),
    ("phone", "number", "phone"),
    ("postcode", "zip", "postcode"),
    ("city", "city", "city"),
    ("province", "province", "state"),
    ("notes", "notes", "customer note"),
)


def fit_recipient(recipient: Recipient) -> FittedRecipient:
    """`recipient` with every text within the supplier's limits, and the list of what was shortened."""
    changes: dict[str, str] = {}
    shortened: list[Shortened] = []
    for attribute, tag, label in _FIELDS:
        text = wire_text(getattr(recipient, attribute))
        limit = TEXT_LIMITS[tag]
        if len(text) > limit:
            fitted = phone_number(text, limit) if attribute == "phone" else cut_on_word(text, limit)
            changes[attribute] = fitted
            shortened.append(Shortened(label, len(text), len(fitted), fitted))
    # The street is address_1 and address_2 in one element: fitted whole, it goes as address_1.
    street = wire_text(recipient.street)
    if len(street) > TEXT_LIMITS["street_name"]:
        fitted = cut_on_word(street, TEXT_LIMITS["street_name"])
        changes |= {"address_1": fitted, "address_2": ""}
        shortened.insert(_position_of_street(shortened), Shortened("street", len(street), len(fitted), fitted))
    if not changes:
        return FittedRecipient(recipient)
    return FittedRecipient(dataclasses.replace(recipient, **changes), tuple(shortened))


def _position_of_street(shortened: list[Shortened]) -> int:
    """The street is told after the name, company and phone, before the rest: the order of an address."""
    return sum(1 for s in shortened if s.field in ("name", "company", "phone"))


def cut_on_word(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut between words when that keeps at least half of it."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]  # a space right after the limit is a boundary too
    boundary = max((i for i, char in enumerate(head) if char.isspace()), default=0)
    cut = head[:boundary].rstrip(_DANGLING)
    if len(cut) >= max(1, limit // 2):
        return cut
    return _cut_at(text, limit)


def _cut_at(text: str, limit: int) -> str:
    """The first `limit` characters, less a character whose accents (combining marks) would be cut off."""
    end = limit
    while end > 0 and unicodedata.combining(text[end]):
        end -= 1
    return text[:end].rstrip("\u200d")


def phone_number(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: the first phone number in it, else cut like any text."""
    if len(text) <= limit:
        return text
    for found in _PHONE_NUMBER.finditer(text):
        number = found.group(0)
        if len(number) <= limit and is_phone_number(number):
            return number
    return cut_on_word(text, limit)
