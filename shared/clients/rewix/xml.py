"""The Rewix wire format: every element name, attribute and date pattern lives here.

docs/rewix-api.md §10 lists what is guessed about the protocol; when a guess turns
out wrong, this module is the one to change. Parsing goes through defusedxml
so a hostile or broken answer cannot expand entities or load a DTD; any body
that does not parse raises PermanentError (repeating the call cannot fix it).
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _defused_fromstring

from shared.failures.errors import PermanentError
from shared.clients.rewix.values import (
    Catalog,
    CatalogModel,
    DropshippingOrder,
    GrowingOrder,
    ModelLock,
    SupplierOrderStatus,
)
from shared.orders.text import bounded, storable, xml_safe

# §4.1: "yyyy/MM/dd HH:mm:ss Z". We always send UTC, so the offset is fixed.
DATE_FORMAT = "%Y/%m/%d %H:%M:%S +0000"

# §3.2: every plugin sends all three operations, empty ones included.
LOCK_OPERATIONS = ("lock", "unlock", "set")


def format_date(moment: datetime) -> str:
    """A moment in the order date format, in UTC; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(DATE_FORMAT)


def _to_bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _parse(body: bytes | str, what: str) -> ET.Element:
    try:
        # No legitimate answer carries a DTD: refusing it also refuses
        # entity-expansion and external-entity tricks outright.
        return _defused_fromstring(body, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise PermanentError(f"unparsable {what}: {exc}", body=_excerpt(body)) from exc


def _excerpt(body: bytes | str) -> str:
    if isinstance(body, bytes):
        return body[:500].decode("utf-8", "replace")
    return body[:500]


def _int(value: str | None, what: str, body: bytes | str) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        raise PermanentError(f"{what} is not an integer: {value!r}", body=_excerpt(body)) from None


# --- growing order (§3) ---------------------------------------------------

def build_lock_request(
    *,
    set: Mapping[int, int] | None = None,  # noqa: A002 - the protocol's own word
    lock: Mapping[int, int] | None = None,
    unlock: Mapping[int, int] | None = None,
) -> bytes:
    """POST orders/sold body: one <operation> per type, each with its <model/>s."""
    by_type = {"lock": lock or {}, "unlock": unlock or {}, "set": set or {}}
    root = ET.Element("root")
    for op_type in LOCK_OPERATIONS:
        operation = ET.SubElement(root, "operation", type=op_type)
        for stock_id, quantity in by_type[op_type].items():
            if quantity < 0:
                raise ValueError(f"negative quantity {quantity} for stock_id {stock_id}")
            ET.SubElement(operation, "model", stock_id=str(int(stock_id)), quantity=str(int(quantity)))
    return _to_bytes(root)


def parse_lock_response(body: bytes | str) -> GrowingOrder:
    """<root order_id="N"><model stock_id locked available/>…</root> (all attributes)."""
    root = _parse(body, "growing order")
    if root.tag != "root":
        raise PermanentError(f"growing order: unexpected root <{root.tag}>", body=_excerpt(body))
    # The docs' JSON example shows order_id 0 for "no growing order yet".
    order_id = _int(root.get("order_id", "0"), "order_id", body)
    models: dict[int, ModelLock] = {}
    for model in root.iter("model"):
        stock_id = _int(model.get("stock_id"), "model stock_id", body)
        models[stock_id] = ModelLock(
            stock_id=stock_id,
            locked=_int(model.get("locked"), "model locked", body),
            available=_int(model.get("available", "0"), "model available", body),
        )
    return GrowingOrder(order_id=order_id, models=models)


# --- dropshipping order (§4) ------------------------------------------------

# What the platform takes of each text of a dropshipping order: a guess (docs/rewix-api.md §10),
# kept here and nowhere else. The platform keeps each text in one column of its order and
# refuses the whole order when one is longer. 200 is the guess for a name or an address line,
# and the recipient (first and last name joined) and the street (address_1 and address_2
# joined, §4.3) are one column each. A recipient is fitted to these before it is sent
# (shared/clients/rewix/fitting.py: cut on a word boundary, a phone down to its number, the owner
# told); `_text` cuts whatever is still longer as a last resort, so nothing sent is refused
# for its length. The country code has no limit here: it is never cut (a cut code names
# another country), so one that is not a code reaches the supplier as it is and is refused.
TEXT_LIMITS = {
    "key": 100, "recipient": 200, "careof": 200, "notes": 2000, "street_name": 200, "zip": 20,
    "city": 100, "province": 100, "number": 50,
}


def wire_text(value: str | int) -> str:
    """`value` as the supplier reads it: without what XML 1.0 cannot carry, line ends as LF.

    A parser turns every CR and CRLF into LF (XML 1.0 §2.11): what is measured
    against a limit is what the supplier will read.
    """
    return xml_safe(str(value)).replace("\r\n", "\n").replace("\r", "\n")


def _text(parent: ET.Element, tag: str, value: str | int) -> ET.Element:
    """A child element holding `value` as XML 1.0 can carry it, cut to what the supplier takes."""
    child = ET.SubElement(parent, tag)
    text = wire_text(value)
    limit = TEXT_LIMITS.get(tag)
    child.text = bounded(text, limit) if limit is not None else text
    return child


# §4.4: the order asks to be confirmed at once (e-credit or the account's auto-confirmation).
AUTO_CONFIRM = "autoConfirm"


def build_dropshipping_order(order: DropshippingOrder) -> bytes:
    """POST orders/0/dropshipping body, filled the way the mature plugins do (§4.3).

    The whole street goes into street_name; street_type, address_number and the
    phone prefix stay empty. <address> and <phone> are always present because
    the platform dereferences both without a null check (§4.1).
    """
    if not order.items:
        raise ValueError(f"order {order.key} has no items")
    r = order.recipient
    root = ET.Element("root")
    xml_order = ET.SubElement(ET.SubElement(root, "order_list"), "order")
    _text(xml_order, "key", order.key)
    _text(xml_order, "date", format_date(order.date))
    if order.auto_confirm:
        # A guess (docs/rewix-api.md §10): a JAXB Boolean child of <order>, as in the platform's own
        # client model. Left out otherwise, so an order is sent exactly as before without it.
        _text(xml_order, AUTO_CONFIRM, "true")

    details = ET.SubElement(xml_order, "recipient_details")
    _text(details, "recipient", r.name)
    _text(details, "careof", r.careof)
    _text(details, "cfpiva", "")
    _text(details, "customer_key", "")
    _text(details, "notes", r.notes)
    address = ET.SubElement(details, "address")
    _text(address, "street_type", "")
    _text(address, "street_name", r.street)
    _text(address, "address_number", "")
    _text(address, "zip", r.postcode)
    _text(address, "city", r.city)
    _text(address, "province", r.province)
    _text(address, "countrycode", wire_text(r.countrycode).strip().upper())
    phone = ET.SubElement(details, "phone")
    _text(phone, "prefix", "")
    _text(phone, "number", r.phone)

    item_list = ET.SubElement(xml_order, "item_list")
    for stock_id, quantity in order.items.items():
        if quantity <= 0:
            raise ValueError(f"order {order.key}: quantity {quantity} for stock_id {stock_id}")
        item = ET.SubElement(item_list, "item")
        _text(item, "stock_id", int(stock_id))
        _text(item, "quantity", int(quantity))
    return _to_bytes(root)


# --- order status (§5.2) ----------------------------------------------------

def _child_text(parent: ET.Element, tag: str) -> str | None:
    child = parent.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def parse_order_statuses(body: bytes | str) -> list[SupplierOrderStatus]:
    """root > order_list > order*; elements not read here (parsedDate, customer_id…) are ignored."""
    root = _parse(body, "order status")
    statuses = []
    for order in root.iterfind("order_list/order"):
        order_id = _child_text(order, "order_id")
        status = _child_text(order, "status")
        if order_id is None or status is None:
            raise PermanentError("order status without order_id or status", body=_excerpt(body))
        substatus = _child_text(order, "substatus")
        statuses.append(
            SupplierOrderStatus(
                order_id=_int(order_id, "order_id", body),
                key=_child_text(order, "ext_ref"),
                status=_int(status, "status", body),
                substatus=_int(substatus, "substatus", body) if substatus is not None else None,
                last_update=_child_text(order, "last_update"),
                tracking_code=_child_text(order, "tracking_code"),
                tracking_url=_child_text(order, "tracking_url"),
                carrier_name=_child_text(order, "carrier_name"),
            )
        )
    return statuses


CATALOG_CODE_LIMIT = 200  # catalog_models.code and .barcode
# What the dropshipper pays for a unit, before VAT: the model's own price first, then its product's
# (§6; `bestTaxable` is what the platform's own client takes as the buy price). A guess (§10).
PRICE_FIELDS = ("bestTaxable", "taxable")
PRICE_LIMIT = Decimal("1e10")  # catalog_models.price is numeric(14, 4)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


# --- catalog export (§6, JSON TEAL) -----------------------------------------

def parse_catalog(body: bytes | str) -> Catalog:
    """Top-level lastUpdate plus pageItems[] products, each with models[] (id = stock_id)."""
    try:
        data: Any = json.loads(body)
        models = [
            CatalogModel(
                stock_id=int(model["id"]),
                product_id=int(product["id"]),
                # Stored in String(200) columns: without NUL, and cut rather than fail the whole sync.
                code=storable(str(model.get("code") or ""))[:CATALOG_CODE_LIMIT],
                barcode=storable(str(model.get("barcode") or ""))[:CATALOG_CODE_LIMIT],
                availability=int(model.get("availability") or 0),
                name=str(product.get("name") or ""),
                size=str(model.get("size") or ""),
                price=_unit_price(model, product),
                currency=_currency(model, product),
            )
            for product in data.get("pageItems") or []
            for model in product.get("models") or []
        ]
        last_update = data.get("lastUpdate")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PermanentError(f"unparsable catalog: {exc!r}", body=_excerpt(body)) from exc
    return Catalog(last_update=str(last_update) if last_update is not None else None, models=models)


def _unit_price(model: Mapping[str, Any], product: Mapping[str, Any]) -> Decimal | None:
    """The first price the export gives for a unit (model before product); None when it gives none.

    A price that is not a non-negative number is treated as missing: the amount
    of an order is then "unknown", which is true, rather than wrong.
    """
    for source in (model, product):
        for name in PRICE_FIELDS:
            value = source.get(name)
            if value is None or isinstance(value, bool) or value == "":
                continue
            try:
                price = Decimal(str(value).strip())
            except InvalidOperation:
                continue
            if price.is_finite() and 0 <= price < PRICE_LIMIT:
                return price.quantize(Decimal("0.0001"))
    return None


def _currency(model: Mapping[str, Any], product: Mapping[str, Any]) -> str:
    """The ISO 4217 code of the price (model before product), or "" when none is given."""
    for source in (model, product):
        value = str(source.get("currency") or "").strip().upper()
        if _CURRENCY.match(value):
            return value
    return ""
