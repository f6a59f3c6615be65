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

from shared.messaging.messages import MAX_EVENT_LINES, OrderLineMessage, ShopRecipient, SupplierLine, new_message_id
from shared.orders.text import storable
from shared.orders.vocabulary import ORDER_TOPICS, ShopStatus
from shared.products.mapping import OWN, LineRef, Resolution


# Block checkout's drafts are not orders yet (docs/woocommerce.md §2.4).
IGNORED_STATUSES = frozenset({"checkout-draft", "draft", "auto-draft"})
MAX_ID = 2**63 - 1
MAX_QUANTITY = 1_000_000
# An order with more supplier lines is refused whole (a 400 naming the limit).
MAX_SUPPLIER_LINES = MAX_EVENT_LINES
# A date further ahead is a broken or hostile shop: it would freeze the order (no
# real update is ever newer) and move the catch-up watermark past every real change.
MAX_FUTURE = timedelta(days=1)
# What the tables take (shared/db/models.py): shop_orders.status is String(50), and a longer
# status is a 400 naming it (statuses are WooCommerce's, never typed by a customer);
# shop_orders.number is String(100), and a longer number is cut (MAX_NUMBER).
# Every other text is taken as the shop stored it: what the supplier takes of each
# is fitted when the order is sent (shared/clients/rewix/fitting.py), never refused here.
MAX_NUMBER = 100
MAX_STATUS = 50
# Marks a number cut for storage: it is not the shop's number any more, and not a
# safe supplier key either, so the key falls back to `order-{id}` (services/supplier_sync/keys.py).
CUT_MARK = "\u2026"

# What a WooCommerce REST error code looks like, so a problem text never echoes free text.
_ERROR_CODE = re.compile(r"[a-z0-9_.-]{1,100}")

# A stock_id per supplier line, OWN for the shop's own products (shared/products/own.py); a line
# missing matched nothing.
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
    # The order lists refunds whose quantities were not given (only GET /orders/{id}/refunds has them):
    # its messages carry the lines' full quantities, and must not be published as they are.
    refunds_unread: bool = False


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


def _str(value: Any, where: str, *, required: bool = False) -> str:
    """A text field as it can be stored: without NUL and lone surrogates, which JSON can carry
    but neither UTF-8 nor a PostgreSQL text column can. Odd text is cleaned, never refused."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidOrder(f"{where} must be a string")
    return storable(value)


def _number(value: Any, order_id: int) -> str:
    """The order's number, cut for its column (marked as cut) when it is longer."""
    number = _str(value, "number") or str(order_id)
    if len(number) > MAX_NUMBER:
        return number[: MAX_NUMBER - len(CUT_MARK)] + CUT_MARK
    return number


def not_in_future(moment: datetime, now: datetime | None = None, where: str = "date_modified_gmt") -> datetime:
    """`moment`, unless it lies more than MAX_FUTURE ahead of now (InvalidOrder naming the limit)."""
    if moment > (now or datetime.now(timezone.utc)) + MAX_FUTURE:
        raise InvalidOrder(f"{where} lies more than a day in the future (limit: {MAX_FUTURE.days} day ahead)")
    return moment


def parse_gmt(value: Any, where: str = "date_modified_gmt") -> datetime:
    """WooCommerce's *_gmt dates: ISO-8601 without an offset, meaning UTC."""
    if not isinstance(value, str):
        raise InvalidOrder(f"{where} must be a string")
    try:
        parsed = datetime.fromisoformat(value)
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


ADDRESS_FIELDS = ("first_name", "last_name", "company", "address_1", "address_2", "postcode", "city", "state",
                  "country", "phone")


def _address_block(order: Mapping[str, Any], block: str) -> dict[str, str]:
    value = order.get(block) or {}
    if not isinstance(value, dict):
        raise InvalidOrder("shipping and billing must be objects")
    return {field: _str(value.get(field), f"{block}.{field}").strip() for field in ADDRESS_FIELDS}


def has_address(block: Mapping[str, str]) -> bool:
    """A block a parcel can be sent to: a street, or at least a city and its postcode."""
    return bool(block["address_1"] or (block["city"] and block["postcode"]))


def recipient_of(order: Mapping[str, Any]) -> ShopRecipient:
    """Who receives the parcel: the shipping address whole when it has one, else the billing address whole.

    Never a mix of the two, field by field: a gift's empty `address_2` or
    `company` filled from the buyer's, or the buyer's state put on the
    recipient's city, sends the parcel to an address nobody wrote. The phone
    is the shipping phone, else the billing phone, since a courier needs one
    whichever address is used (WooCommerce 9 has a shipping phone, older shops
    only a billing one). The e-mail, billing's, is not carried: the supplier's
    order has no field for it (docs/rewix-api.md §4.3).
    """
    shipping = _address_block(order, "shipping")
    billing = _address_block(order, "billing")
    chosen = shipping if has_address(shipping) else billing
    return ShopRecipient(
        name=" ".join(p for p in (chosen["first_name"], chosen["last_name"]) if p),
        company=chosen["company"],
        phone=shipping["phone"] or billing["phone"],
        address_1=chosen["address_1"],
        address_2=chosen["address_2"],
        postcode=chosen["postcode"],
        city=chosen["city"],
        state=chosen["state"],
        country=chosen["country"],
    )


def refund_ids(body: Any) -> list[int]:
    """The ids of the refunds an order resource lists (`refunds`: id, reason, total)."""
    refunds = body.get("refunds") if isinstance(body, dict) else None
    if refunds is None:
        return []
    if not isinstance(refunds, list) or not all(isinstance(r, dict) for r in refunds):
        raise InvalidOrder("refunds must be an array of objects")
    return [_int(r.get("id"), f"refunds[{index}].id", minimum=1) for index, r in enumerate(refunds)]


def refunded_quantities(refunds: Any) -> dict[int, int]:
    """line item id -> units refunded, from GET /orders/{id}/refunds.

    WooCommerce keeps a line's quantity after a refund; each refund lists its
    own line items with a negative `quantity` and, in their `meta_data`, the
    order line they refund (`_refunded_item_id`). A refund of an amount only
    has no line items and refunds no unit.
    """
    if not isinstance(refunds, list):
        raise InvalidOrder("the refunds of an order must be an array")
    refunded: dict[int, int] = {}
    for index, refund in enumerate(refunds):
        items = refund.get("line_items") if isinstance(refund, dict) else None
        if not isinstance(items, list):
            raise InvalidOrder(f"refunds[{index}].line_items must be an array")
        for position, item in enumerate(items):
            where = f"refunds[{index}].line_items[{position}]"
            meta = item.get("meta_data") if isinstance(item, dict) else None
            refunded_item = next((m.get("value") for m in meta or () if isinstance(m, dict)
                                  and m.get("key") == "_refunded_item_id"), None)
            if refunded_item is None:
                continue  # not a refund of an order line (a fee, say): no unit to give back
            line_id = _int(refunded_item, f"{where}._refunded_item_id", minimum=1)
            units = item.get("quantity")
            # WooCommerce stores refunded units negative; a string or a positive number is not a refund.
            if isinstance(units, bool) or not isinstance(units, int) or not -MAX_QUANTITY <= units <= 0:
                raise InvalidOrder(f"{where}.quantity must be a negative integer")
            refunded[line_id] = refunded.get(line_id, 0) - units
    return refunded


def convert(
    body: Any, topic: str, resolve: Resolver, source: str = "webhook", now: datetime | None = None,
    refunded: Mapping[int, int] | None = None,
) -> Conversion:
    """One message per supplier line; one line-less message for an order left with none.

    The first message is the event's head: it alone carries the recipient,
    the note and the line ids (shared/messaging/messages.py), so the bytes published
    grow linearly with the lines.

    Refuses (InvalidOrder, a 400 at ingest), before anything is published,
    only what is not an order or could never be one: a body of the wrong
    shape, over MAX_SUPPLIER_LINES supplier lines, a date that is not one or
    lies more than MAX_FUTURE ahead of `now`, a status longer than its column.
    Text is never a reason to refuse an order: it is cleaned for storage, a
    number too long for its column is cut, and what the supplier cannot take
    is fitted when the order is sent.

    A line's quantity is what is still to be delivered: the quantity less what
    `refunded` (line item id -> units, `refunded_quantities`) gives back; a line
    refunded whole needs nothing. An order that lists refunds, converted
    without `refunded`, says so (`refunds_unread`): its quantities are not
    known yet.
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

    status = _str(body.get("status"), "status", required=True)
    if len(status) > MAX_STATUS:
        raise InvalidOrder(f"status is longer than {MAX_STATUS} characters")
    if status in IGNORED_STATUSES:
        return Conversion(order_id, [], has_supplier_lines=False, ignored=f"status {status}")
    modified = not_in_future(parse_gmt(body.get("date_modified_gmt")), now)
    number = _number(body.get("number"), order_id)
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
    refunds_unread = bool(refund_ids(body)) and refunded is None
    if refunded:
        refs = [(line_id, ref, max(0, quantity - refunded.get(line_id, 0))) for line_id, ref, quantity in refs]

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
        # Whole: what the supplier takes of it is fitted when the order is sent, and the owner told.
        customer_note=_str(body.get("customer_note"), "customer_note"),
    )
    unmatched = tuple(dict.fromkeys(ref for _, ref, _ in refs if ref not in resolved))
    if not lines:
        return Conversion(order_id, [OrderLineMessage(**event, **head)], has_supplier_lines=False, unmatched=unmatched)
    first, *rest = lines
    messages = [OrderLineMessage(line=first, **event, **head)]
    messages += [OrderLineMessage(line=line, head=False, **event) for line in rest]
    return Conversion(order_id, messages, has_supplier_lines=True, unmatched=unmatched, refunds_unread=refunds_unread)
