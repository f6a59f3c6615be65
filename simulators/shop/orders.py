"""Realistic WooCommerce REST v3 order resources (docs/woocommerce.md §3).

`make_order` builds the full resource exactly as GET /wp-json/wc/v3/orders/{id}
returns it (and as a webhook body carries it): money as strings, quantities and
ids as integers, `line_items[].price` as a number, dates without offset in the
site's timezone plus `*_gmt` twins in UTC. The other functions change a resource
the way WooCommerce does when the order is saved, so the simulator and tests
that build bodies by hand agree on every derived field.

Line specs, as taken by `make_order(lines=...)` and `replace_lines`, are dicts with
product_id, variation_id (0 = simple product), quantity, sku (or None), name,
price (unit price before tax, str or number) and, for a variation, attributes
(e.g. {"size": "M"}, shown in the line's meta_data as WooCommerce shows a
variation's attributes); only product_id is required.

The shapes follow what a real WooCommerce 9.2.5 answered (the recorded traffic
the fidelity tests compare with): products have no image, so a simple product's
line carries `"image": {"id": "", "src": ""}` and a variation's
`{"id": 0, "src": ""}`; `refunds` lists the order's refunds newest first as
`{"id", "reason", "total"}` with `total` a negative decimal string, while
`line_items` keep their quantities (simulators/shop/refunds.py).
"""
from __future__ import annotations

import hashlib
import itertools
import random
import string
from copy import deepcopy
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

SITE_URL = "https://shop.example.com"
SITE_TZ = ZoneInfo("Europe/Rome")  # date_* fields are site-local, so they differ from date_*_gmt
WC_VERSION = "9.2.5"
WP_VERSION = "7.0"
TAX_RATE = Decimal("0.22")
SHIPPING_COST = Decimal("10.00")

# Display names, used by the status-change note as WooCommerce writes it.
STATUS_NAMES = {
    "pending": "Pending payment",
    "processing": "Processing",
    "on-hold": "On hold",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
    "failed": "Failed",
    "checkout-draft": "Draft",
}
# The REST schema's enum, in WooCommerce's order: "auto-draft" plus the registered statuses.
# "trash" is not in it: an order gets there only by being trashed.
STATUS_ENUM = ("auto-draft", *STATUS_NAMES)
WRITABLE_STATUSES = frozenset(STATUS_ENUM)
PAID_STATUSES = frozenset({"processing", "completed"})
EDITABLE_STATUSES = frozenset({"pending", "on-hold", "auto-draft", "checkout-draft"})

DEFAULT_BILLING: dict[str, Any] = {
    "first_name": "Zoë",
    "last_name": "Müller-Ørsted",
    "company": "",
    "address_1": "ul. Piotrkowska 104/2",
    "address_2": "",
    "city": "Łódź",
    "state": "",
    "postcode": "90-926",
    "country": "PL",
    "email": "zoe.muller@example.com",
    "phone": "+48 42 123 45 67",
}
DEFAULT_SHIPPING: dict[str, Any] = {
    key: DEFAULT_BILLING[key]
    for key in ("first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode", "country", "phone")
}
DEFAULT_LINES: list[dict[str, Any]] = [
    {"product_id": 2101, "variation_id": 2104, "quantity": 1, "sku": "SNK-GRÜN-42",
     "name": "Sneaker „Grünwald“ - 42", "price": "89.90", "attributes": {"size": "42"}},
    {"product_id": 3307, "variation_id": 0, "quantity": 2, "sku": "TEE-0001",
     "name": "T-shirt <Basic> & co. 100% cotton", "price": "19.50"},
]

# WooCommerce draws line item ids from one table for all orders, and meta ids from another.
_item_ids = itertools.count(101)
_meta_ids = itertools.count(5001)
_CENT = Decimal("0.01")


def make_order(
    order_id: int,
    *,
    status: str = "pending",
    lines: list[dict[str, Any]] | None = None,
    shipping: dict[str, Any] | None = None,
    billing: dict[str, Any] | None = None,
    customer_note: str = "",
    number: str | None = None,
    date_created_gmt: datetime | None = None,
    site_url: str = SITE_URL,
) -> dict[str, Any]:
    """A complete v3 order resource.

    `lines` defaults to DEFAULT_LINES; `billing` and `shipping` are merged over the
    defaults (so {"country": "DE"} changes just that). `date_created_gmt` (naive UTC or
    aware; default now) is also the initial date_modified_gmt, and the paid/completed
    dates for orders created in those statuses.
    """
    created = _to_naive_utc(date_created_gmt) if date_created_gmt else utc_now()
    rng = random.Random(order_id)  # keys and hashes stable per order id
    order_key = "wc_order_" + "".join(rng.choices(string.ascii_letters + string.digits, k=13))
    order: dict[str, Any] = {
        "id": order_id,
        "parent_id": 0,
        "status": "pending",
        "currency": "EUR",
        "version": WC_VERSION,
        "prices_include_tax": False,
        "date_created": None,
        "date_modified": None,
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "0.00",
        "shipping_tax": "0.00",
        "cart_tax": "0.00",
        "total": "0.00",
        "total_tax": "0.00",
        "customer_id": 0,
        "order_key": order_key,
        "billing": {**DEFAULT_BILLING, **(billing or {})},
        "shipping": {**DEFAULT_SHIPPING, **(shipping or {})},
        "payment_method": "paypal",
        "payment_method_title": "PayPal",
        "transaction_id": "",
        "customer_ip_address": "203.0.113.47",
        "customer_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "created_via": "checkout",
        "customer_note": customer_note,
        "date_completed": None,
        "date_paid": None,
        "cart_hash": hashlib.md5(order_key.encode()).hexdigest(),
        "number": number if number is not None else str(order_id),
        "meta_data": [
            {"id": next(_meta_ids), "key": "is_vat_exempt", "value": "no"},
            {"id": next(_meta_ids), "key": "_wc_order_attribution_source_type", "value": "typein"},
        ],
        "line_items": [],
        "tax_lines": [],
        "shipping_lines": [],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "payment_url": f"{site_url}/checkout/order-pay/{order_id}/?pay_for_order=true&key={order_key}",
        "is_editable": True,
        "needs_payment": False,
        "needs_processing": True,
        "date_created_gmt": None,
        "date_modified_gmt": None,
        "date_completed_gmt": None,
        "date_paid_gmt": None,
        "currency_symbol": "€",
        "_links": {
            "self": [{
                "href": f"{site_url}/wp-json/wc/v3/orders/{order_id}",
                "targetHints": {"allow": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
            }],
            "collection": [{"href": f"{site_url}/wp-json/wc/v3/orders"}],
        },
    }
    _set_date(order, "date_created", created)
    _set_date(order, "date_modified", created)
    replace_lines(order, DEFAULT_LINES if lines is None else lines)
    set_status(order, status, created)
    if status in PAID_STATUSES:
        order["transaction_id"] = "".join(rng.choices(string.ascii_uppercase + string.digits, k=17))
    return order


def replace_lines(order: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    """Swap the order's line items for new ones (new item ids) and recalculate its totals."""
    order["line_items"] = [_line_item(spec) for spec in lines]
    recalculate(order)


def set_quantity(order: dict[str, Any], line_id: int, quantity: int) -> None:
    """Change one line's quantity at its unit price; 0 removes the line, as the admin screen does."""
    for index, line in enumerate(order["line_items"]):
        if line["id"] == line_id:
            break
    else:
        raise KeyError(line_id)
    if quantity == 0:
        del order["line_items"][index]
    else:
        _price_line(line, Decimal(line["subtotal"]) / line["quantity"], quantity)
    recalculate(order)


def recalculate(order: dict[str, Any]) -> None:
    """Order totals, tax line and the flat-rate shipping line from the line items."""
    items = order["line_items"]
    cart_tax = sum((Decimal(item["total_tax"]) for item in items), Decimal(0))
    net = sum((Decimal(item["total"]) for item in items), Decimal(0))
    shipping = SHIPPING_COST if items else Decimal(0)
    shipping_tax = money(shipping * TAX_RATE)
    order["cart_tax"] = format_money(cart_tax)
    order["shipping_total"] = format_money(shipping)
    order["shipping_tax"] = format_money(shipping_tax)
    order["total_tax"] = format_money(cart_tax + shipping_tax)
    order["total"] = format_money(net + shipping + cart_tax + shipping_tax)
    order["tax_lines"] = [{
        "id": _reuse_id(order["tax_lines"]),
        "rate_code": "IT-IVA-1",
        "rate_id": 1,
        "label": "IVA",
        "compound": False,
        "tax_total": format_money(cart_tax),
        "shipping_tax_total": format_money(shipping_tax),
        "rate_percent": 22,
        "meta_data": [],
    }] if items else []
    summary = ", ".join(f"{item['name']} &times; {item['quantity']}" for item in items)
    order["shipping_lines"] = [{
        "id": _reuse_id(order["shipping_lines"]),
        "method_title": "Flat rate",
        "method_id": "flat_rate",
        "instance_id": "3",
        "total": format_money(shipping),
        "total_tax": format_money(shipping_tax),
        "taxes": [{"id": 1, "total": format_tax(shipping_tax), "subtotal": ""}],
        "meta_data": [{
            "id": _reuse_meta_id(order["shipping_lines"]),
            "key": "Items", "value": summary, "display_key": "Items", "display_value": summary,
        }],
    }] if items else []
    _refresh_flags(order)


def set_status(order: dict[str, Any], status: str, when_gmt: datetime) -> None:
    """Status plus what WooCommerce derives from it: paid/completed dates and the computed flags."""
    order["status"] = status
    if status in PAID_STATUSES and order["date_paid_gmt"] is None:
        _set_date(order, "date_paid", when_gmt)
    if status == "completed":
        _set_date(order, "date_completed", when_gmt)
    _refresh_flags(order)


def stamp_modified(order: dict[str, Any], now_gmt: datetime) -> None:
    """Record a save of the order.

    WooCommerce stores date_modified to the second, so two saves within one second
    carry the same date_modified_gmt and a consumer comparing it cannot tell which
    state is newer. The simulator instead moves date_modified_gmt forward by at least
    one second on every change (previous + 1 s when the clock has not moved on), so any
    two states of one order are strictly ordered. Under bursts it runs ahead of the clock.
    """
    previous = parse_wc_date(order["date_modified_gmt"])
    now = now_gmt.replace(microsecond=0)
    _set_date(order, "date_modified", max(now, previous + timedelta(seconds=1)))


def merge_meta(order: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """REST meta_data semantics: each {key, value} replaces the first meta with that key, or is added."""
    for item in items:
        existing = next((meta for meta in order["meta_data"] if meta["key"] == item["key"]), None)
        if existing is None:
            order["meta_data"].append({"id": next(_meta_ids), "key": item["key"], "value": item.get("value")})
        else:
            existing["value"] = item.get("value")


def status_name(status: str) -> str:
    return STATUS_NAMES.get(status, status)


def utc_now() -> datetime:
    """Naive UTC at one-second resolution, like WooCommerce's stored dates."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def wc_dates(moment_gmt: datetime) -> tuple[str, str]:
    """(site-local, gmt) strings of one naive-UTC moment, in WooCommerce's offset-free format."""
    local = moment_gmt.replace(tzinfo=timezone.utc).astimezone(SITE_TZ).replace(tzinfo=None)
    return local.isoformat(timespec="seconds"), moment_gmt.isoformat(timespec="seconds")


def parse_wc_date(value: str) -> datetime:
    return datetime.fromisoformat(value)


def snapshot(order: dict[str, Any]) -> dict[str, Any]:
    """An independent copy, so a caller can never change the stored state by accident."""
    return deepcopy(order)


def new_item_id() -> int:
    """The next order item id (line, tax, shipping, refund line: one table for them all)."""
    return next(_item_ids)


def new_meta_id() -> int:
    return next(_meta_ids)


def _line_item(spec: dict[str, Any]) -> dict[str, Any]:
    variation_id = int(spec.get("variation_id", 0))
    name = spec.get("name", f"Product {spec['product_id']}")
    sku = spec.get("sku")
    attributes = spec.get("attributes") or {}
    line: dict[str, Any] = {
        "id": next(_item_ids),
        "name": name,
        "product_id": int(spec["product_id"]),
        "variation_id": variation_id,
        "quantity": 0,
        "tax_class": "",
        "subtotal": "0.00",
        "subtotal_tax": "0.00",
        "total": "0.00",
        "total_tax": "0.00",
        "taxes": [],
        # A variation's attributes, as WooCommerce stores them on the line (key, value, and their labels).
        "meta_data": [
            {"id": next(_meta_ids), "key": str(key), "value": str(value),
             "display_key": str(key)[:1].upper() + str(key)[1:], "display_value": str(value)}
            for key, value in attributes.items()
        ] if variation_id else [],
        "sku": sku,
        "price": 0.0,
        # A product without an image: WooCommerce answers "" for a simple product's image id and 0 for
        # a variation's (the variation's own empty image_id).
        "image": {"id": 0 if variation_id else "", "src": ""},
        # A variation's name is "<parent> - <attributes>"; simple products have no parent.
        "parent_name": name.rsplit(" - ", 1)[0] if variation_id else None,
    }
    _price_line(line, Decimal(str(spec.get("price", "10.00"))), int(spec.get("quantity", 1)))
    return line


def _price_line(line: dict[str, Any], unit: Decimal, quantity: int) -> None:
    net = money(unit * quantity)
    tax = money(net * TAX_RATE)
    line["quantity"] = quantity
    line["subtotal"] = line["total"] = format_money(net)
    line["subtotal_tax"] = line["total_tax"] = format_money(tax)
    line["taxes"] = [{"id": 1, "total": format_tax(tax), "subtotal": format_tax(tax)}]
    # WooCommerce computes price as total / quantity: a float, not a money string.
    line["price"] = float(net / quantity)


def _refresh_flags(order: dict[str, Any]) -> None:
    order["is_editable"] = order["status"] in EDITABLE_STATUSES
    order["needs_payment"] = order["status"] in ("pending", "failed") and Decimal(order["total"]) > 0
    order["needs_processing"] = bool(order["line_items"])


def _set_date(order: dict[str, Any], field: str, moment_gmt: datetime) -> None:
    order[field], order[f"{field}_gmt"] = wc_dates(moment_gmt)


def _to_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _reuse_id(rows: list[dict[str, Any]]) -> int:
    """Recalculating keeps an existing tax or shipping line's item id, as WooCommerce updates it in place."""
    return rows[0]["id"] if rows else next(_item_ids)


def _reuse_meta_id(rows: list[dict[str, Any]]) -> int:
    return rows[0]["meta_data"][0]["id"] if rows else next(_meta_ids)


def money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def format_money(value: Decimal) -> str:
    return f"{money(value):.2f}"


def format_tax(value: Decimal) -> str:
    """wc_format_decimal without dp: tax amounts inside `taxes` drop trailing zeros ("2.2")."""
    return format(value.normalize(), "f")
