"""Strict reading and writing of the supplier's XML, as the simulator enforces it.

Written independently of shared.clients.rewix.xml on purpose: the simulator checks the
client against the protocol description, not against the client's own guesses.
Every rejection raises BadRequest with the plain-text reason the server sends.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

STATUS_DATE_FORMAT = "%Y/%m/%d %H:%M:%S +0000"
_ORDER_DATE = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$")
_UNSIGNED = re.compile(r"^\d+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
LOCK_TYPES = frozenset({"lock", "unlock", "set"})


class BadRequest(Exception):
    """The request breaks the protocol: answered 400 with this text."""


@dataclass(frozen=True)
class LockOperation:
    type: str
    stock_id: int
    quantity: int


@dataclass(frozen=True)
class OrderRequest:
    key: str
    date: str
    recipient: dict[str, str]
    items: dict[int, int]
    # <autoConfirm> (§4.4): None when the order does not carry it.
    auto_confirm: bool | None = None


def _parse(body: bytes) -> ET.Element:
    if not body.strip():
        raise BadRequest("empty body")
    try:
        return fromstring(body, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise BadRequest(f"malformed XML: {exc}") from None


def _unsigned(value: str | None, what: str) -> int:
    if value is None or not _UNSIGNED.match(value.strip()):
        raise BadRequest(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _text(parent: ET.Element, tag: str, where: str, *, required: bool) -> str:
    child = parent.find(tag)
    if child is None:
        raise BadRequest(f"{where}: missing <{tag}>")
    text = (child.text or "").strip()
    if required and not text:
        raise BadRequest(f"{where}: <{tag}> must not be empty")
    return text


def _require(parent: ET.Element, tag: str, where: str) -> ET.Element:
    child = parent.find(tag)
    if child is None:
        raise BadRequest(f"{where}: missing <{tag}>")
    return child


def parse_lock_request(body: bytes) -> list[LockOperation]:
    """<root><operation type=".."><model stock_id quantity/>…</operation>…</root>, in document order."""
    root = _parse(body)
    if root.tag != "root":
        raise BadRequest(f"root element must be <root>, got <{root.tag}>")
    operations = []
    for operation in root:
        if operation.tag != "operation":
            raise BadRequest(f"unexpected element <{operation.tag}> in <root>")
        op_type = operation.get("type")
        if op_type not in LOCK_TYPES:
            raise BadRequest(f"operation type must be lock, unlock or set, got {op_type!r}")
        for model in operation:
            if model.tag != "model":
                raise BadRequest(f"unexpected element <{model.tag}> in <operation>")
            stock_id = _unsigned(model.get("stock_id"), "model stock_id")
            quantity = _unsigned(model.get("quantity"), "model quantity")
            operations.append(LockOperation(op_type, stock_id, quantity))
    return operations


def parse_dropshipping_request(body: bytes) -> list[OrderRequest]:
    """root > order_list > order+ (§4.1); elements not named here are ignored like JAXB does."""
    root = _parse(body)
    if root.tag != "root":
        raise BadRequest(f"root element must be <root>, got <{root.tag}>")
    order_list = _require(root, "order_list", "root")
    orders = [_parse_order(order, n) for n, order in enumerate(order_list.findall("order"), 1)]
    if not orders:
        raise BadRequest("order_list holds no <order>")
    return orders


def _parse_order(order: ET.Element, n: int) -> OrderRequest:
    where = f"order #{n}"
    key = _text(order, "key", where, required=True)
    date = _text(order, "date", where, required=True)
    if not _ORDER_DATE.match(date):
        raise BadRequest(f"{where}: date {date!r} is not 'yyyy/MM/dd HH:mm:ss +hhmm'")
    try:
        datetime.strptime(date, "%Y/%m/%d %H:%M:%S %z")
    except ValueError:
        raise BadRequest(f"{where}: date {date!r} is not a valid date") from None

    details = _require(order, "recipient_details", where)
    address = _require(details, "address", f"{where} recipient_details")
    phone = _require(details, "phone", f"{where} recipient_details")
    in_address = f"{where} address"
    recipient = {
        "recipient": _text(details, "recipient", f"{where} recipient_details", required=True),
        "careof": _optional(details, "careof"),
        "notes": _optional(details, "notes"),
        "street_name": _optional(address, "street_name"),
        "zip": _text(address, "zip", in_address, required=True),
        "city": _text(address, "city", in_address, required=True),
        "province": _optional(address, "province"),
        "countrycode": _text(address, "countrycode", in_address, required=True),
        "phone": " ".join(p for p in (_optional(phone, "prefix"), _optional(phone, "number")) if p),
    }
    if not _COUNTRY.match(recipient["countrycode"]):
        raise BadRequest(f"{in_address}: countrycode {recipient['countrycode']!r} is not ISO 3166-1 alpha-2")

    item_list = _require(order, "item_list", where)
    items: dict[int, int] = {}
    for item in item_list.findall("item"):
        stock_id = _unsigned(_text(item, "stock_id", f"{where} item", required=True), "item stock_id")
        quantity = _unsigned(_text(item, "quantity", f"{where} item", required=True), "item quantity")
        if stock_id == 0 or quantity == 0:
            raise BadRequest(f"{where}: item stock_id and quantity must be positive")
        items[stock_id] = items.get(stock_id, 0) + quantity
    if not items:
        raise BadRequest(f"{where}: item_list holds no <item>")
    return OrderRequest(key=key, date=date, recipient=recipient, items=items,
                        auto_confirm=_boolean(order, "autoConfirm", where))


# xs:boolean's lexical space, which is what JAXB reads a Boolean from.
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _boolean(parent: ET.Element, tag: str, where: str) -> bool | None:
    """An optional xs:boolean child: None when absent; anything but true/false/1/0 is refused."""
    child = parent.find(tag)
    if child is None:
        return None
    text = (child.text or "").strip()
    if text not in _BOOLEANS:
        raise BadRequest(f"{where}: <{tag}> must be true or false, got {text!r}")
    return _BOOLEANS[text]


def _optional(parent: ET.Element, tag: str) -> str:
    child = parent.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _to_bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def render_growing_order(order_id: int, models: list[tuple[int, int, int]]) -> bytes:
    """<root order_id="N"><model stock_id locked available/>…</root> from (stock_id, locked, available)."""
    root = ET.Element("root", order_id=str(order_id))
    for stock_id, locked, available in models:
        ET.SubElement(root, "model", stock_id=str(stock_id), locked=str(locked), available=str(available))
    return _to_bytes(root)


def format_status_date(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(STATUS_DATE_FORMAT)


def render_order_statuses(orders: list[dict[str, object]]) -> bytes:
    """root > order_list > order with child elements; None values are omitted like JAXB does."""
    root = ET.Element("root")
    order_list = ET.SubElement(root, "order_list")
    fields = ("order_id", "ext_ref", "status", "substatus", "last_update", "tracking_code", "tracking_url", "carrier_name")
    for order in orders:
        element = ET.SubElement(order_list, "order")
        for name in fields:
            value = order.get(name)
            if value is not None:
                ET.SubElement(element, name).text = str(value)
    return _to_bytes(root)
