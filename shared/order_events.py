"""WooCommerce order resource -> order-line messages. Pure: no I/O.

The resolver (product map, then catalog) is passed in, so this conversion is
tested with plain functions and hypothesis.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.messages import MAX_EVENT_LINES, OrderLineMessage, ShopRecipient, SupplierLine, new_message_id
from shared.product_map import OWN, LineRef, Resolution
from shared.vocabulary import ORDER_TOPICS, ShopStatus


# Block checkout's drafts are not orders yet (docs/woocommerce.md §2.4).
IGNORED_STATUSES = frozenset({"checkout-draft", "draft", "auto-draft"})
MAX_ID = 2**63 - 1
MAX_QUANTITY = 1_000_000
# An order with more supplier lines is refused whole (a 400 naming the limit).
MAX_SUPPLIER_LINES = MAX_EVENT_LINES
# A date further ahead is a broken or hostile shop: it would freeze the order (no
# real update is ever newer) and move the catch-up watermark past every real change.
MAX_FUTURE = timedelta(days=1)
# The note is for the supplier's warehouse; longer is cut, not refused.
MAX_CUSTOMER_NOTE = 2000
# What the tables take (shared/db/models.py: shop_orders.number and supplier_orders.key
# are String(100), shop_orders.status String(50)); longer is a 400 naming the field.
MAX_NUMBER = 100
MAX_STATUS = 50
# What the supplier's dropshipping order takes of each recipient field (shared/rewix/xml.py).
RECIPIENT_LIMITS = {
    "first_name": 100, "last_name": 100, "company": 200, "phone": 50, "address_1": 200, "address_2": 200,
    "postcode": 20, "city": 100, "state": 100, "country": 2,
}

# What a WooCommerce REST error code looks like, so a problem text never echoes free text.
_ERROR_CODE = re.compile(r"[a-z0-9_.-]{1,100}")

# A stock_id per supplier line, OWN for the shop's own products (shared/own_products.py); a line missing matched nothing.
Resolver = Callable[[list[LineRef]], Mapping[LineRef, Resolution]]


class InvalidOrder(ValueError):
    """The body is not an order resource; the message names the problem."""


@dataclass(frozen=True)
class Conversion:
    order_id: int
    messages: list[OrderLineMessage]
    has_supplier_lines: bool
    ignored: str | None = None  # why nothing is to be done, when nothing is
    # The order's lines that matched no supplier model (a gap in the map, or the shop's own products
    # not marked as such): what `products unmatched` lists and an open order waits on.
    unmatched: tuple[LineRef, ...] = ()


def _int(value: Any, where: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int:
    # bool is an int in Python; a JSON true is not an id.
    if isinstance(value, bool) or not isinstance(value, int):
        text = value.strip() if isinstance(value, str) else ""
        # WooCommerce hooks sometimes pass numeric strings; only ASCII digits are
        # numbers here ("²".isdigit() is true, yet int("²") fails).
        if text.isascii() and text.isdigit() and len(text) <= 19:
            value = int(text)
        else:
            raise InvalidOrder(f"{where} must be an integer")
    if not minimum <= value <= maximum:
        raise InvalidOrder(f"{where} is out of range")
    return value


def _str(value: Any, where: str, *, required: bool = False, limit: int | None = None) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidOrder(f"{where} must be a string")
    if limit is not None and len(value) > limit:
        raise InvalidOrder(f"{where} is longer than {limit} characters")
    # JSON can carry lone surrogates and NULs; neither survives the message's
    # UTF-8 encoding or a PostgreSQL text column, and WooCommerce sends neither.
    if "\x00" in value:
        raise InvalidOrder(f"{where} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOrder(f"{where} is not valid Unicode") from None
    return value


def not_in_future(moment: datetime, now: datetime | None = None, where: str = "date_modified_gmt") -> datetime:
    """`moment`, unless it lies more than MAX_FUTURE ahead of now (InvalidOrder naming the limit)."""
    if moment > (now or datetime.now(timezone.utc)) + MAX_FUTURE:
        raise InvalidOrder(f"{where} lies more than a day in the future (limit: {MAX_FUTURE.days} day ahead)")
    return moment


def parse_gmt(value: Any, where: str = "date_modified_gmt") -> datetime:
    """WooCommerce's *_gmt dates: ISO-8601 without an offset, meaning UTC."""
    text = _str(value, where, required=True)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidOrder(f"{where} is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # an offset pushing year 1 or 9999 out of range
        raise InvalidOrder(f"{where} is out of range") from None


def _order_id(body: Any) -> int:
    if not isinstance(body, dict):
        raise InvalidOrder("the body must be a JSON object (an order resource)")
    if "id" not in body:
        if "code" in body:
            # WooCommerce sends its REST error object when it could not build the payload. Its
            # code is an identifier ("woocommerce_rest_..."); anything else is not echoed.
            code = body.get("code")
            shown = code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "(not an error code)"
            raise InvalidOrder(f"WooCommerce sent an error instead of an order: {shown}")
        raise InvalidOrder("the order has no id")
    return _int(body["id"], "id", minimum=1)


def recipient_of(order: Mapping[str, Any]) -> ShopRecipient:
    shipping = order.get("shipping") or {}
    billing = order.get("billing") or {}
    if not isinstance(shipping, dict) or not isinstance(billing, dict):
        raise InvalidOrder("shipping and billing must be objects")

    def pick(field: str) -> str:
        # Fall back to billing where the shipping address is empty (no shipping address given).
        limit = RECIPIENT_LIMITS[field]
        value = _str(shipping.get(field), f"shipping.{field}", limit=limit) or _str(
            billing.get(field), f"billing.{field}", limit=limit
        )
        return value.strip()

    name = " ".join(p for p in (pick("first_name"), pick("last_name")) if p)
    return ShopRecipient(
        name=name,
        company=pick("company"),
        phone=pick("phone"),
        address_1=pick("address_1"),
        address_2=pick("address_2"),
        postcode=pick("postcode"),
        city=pick("city"),
        state=pick("state"),
        country=pick("country"),
    )


def convert(
    body: Any, topic: str, resolve: Resolver, source: str = "webhook", now: datetime | None = None
) -> Conversion:
    """One message per supplier line; one line-less message for an order left with none.

    The first message is the event's head: it alone carries the recipient,
    the note and the line ids (shared/messages.py), so the bytes published
    grow linearly with the lines.

    Refuses (InvalidOrder, a 400 at ingest) what the database or the supplier
    could not take, before anything is published: over MAX_SUPPLIER_LINES
    supplier lines, a date more than MAX_FUTURE ahead of `now`, a text field
    longer than its column.
    """
    if topic not in ORDER_TOPICS:
        raise ValueError(f"not an order topic: {topic}")
    order_id = _order_id(body)
    if topic == "order.deleted":
        release = OrderLineMessage(
            source=source, topic=topic, order_id=order_id, status=str(ShopStatus.TRASH), date_modified_gmt=None,
            deleted=True, event_id=new_message_id(), line_count=0,
        )
        return Conversion(order_id, [release], has_supplier_lines=False)

    status = _str(body.get("status"), "status", required=True, limit=MAX_STATUS)
    if status in IGNORED_STATUSES:
        return Conversion(order_id, [], has_supplier_lines=False, ignored=f"status {status}")
    modified = not_in_future(parse_gmt(body.get("date_modified_gmt")), now)
    number = _str(body.get("number"), "number", limit=MAX_NUMBER) or str(order_id)
    items = body.get("line_items") if body.get("line_items") is not None else []
    if not isinstance(items, list):
        raise InvalidOrder("line_items must be an array")

    refs: list[tuple[int, LineRef, int]] = []
    for index, item in enumerate(items):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise InvalidOrder(f"{where} must be an object")
        line_id = _int(item.get("id"), f"{where}.id", minimum=1)
        ref = LineRef(
            product_id=_int(item.get("product_id"), f"{where}.product_id"),
            variation_id=_int(item.get("variation_id") or 0, f"{where}.variation_id"),
            sku=_str(item.get("sku"), f"{where}.sku").strip(),
        )
        quantity = _int(item.get("quantity"), f"{where}.quantity", maximum=MAX_QUANTITY)
        refs.append((line_id, ref, quantity))
    if len({line_id for line_id, _, _ in refs}) != len(refs):
        raise InvalidOrder("line_items ids must be unique")

    resolved = resolve([ref for _, ref, _ in refs]) if refs else {}
    stock_ids = {ref: found for ref, found in resolved.items() if found is not OWN}
    lines = [
        SupplierLine(
            line_id=line_id,
            product_id=ref.product_id,
            variation_id=ref.variation_id,
            stock_id=stock_ids[ref],
            quantity=quantity,
        )
        for line_id, ref, quantity in refs
        if ref in stock_ids
    ]
    if len(lines) > MAX_SUPPLIER_LINES:
        raise InvalidOrder(f"the order has {len(lines)} supplier lines; the limit is {MAX_SUPPLIER_LINES}")
    event = dict(
        source=source,
        topic=topic,
        order_id=order_id,
        order_number=number,
        status=status,
        date_modified_gmt=modified,
        event_id=new_message_id(),
        line_count=len(lines),
    )
    # What belongs to the whole order travels once, on the event's head (its first message).
    head = dict(
        supplier_line_ids=[line.line_id for line in lines],
        recipient=recipient_of(body),
        customer_note=_str(body.get("customer_note"), "customer_note")[:MAX_CUSTOMER_NOTE],
    )
    unmatched = tuple(dict.fromkeys(ref for _, ref, _ in refs if ref not in resolved))
    if not lines:
        return Conversion(order_id, [OrderLineMessage(**event, **head)], has_supplier_lines=False, unmatched=unmatched)
    first, *rest = lines
    messages = [OrderLineMessage(line=first, **event, **head)]
    messages += [OrderLineMessage(line=line, head=False, **event) for line in rest]
    return Conversion(order_id, messages, has_supplier_lines=True, unmatched=unmatched)
