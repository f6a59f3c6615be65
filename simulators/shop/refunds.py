"""Order refunds, made and shown as WooCommerce 9.2.5 makes and shows them.

WooCommerce's `wc_create_refund()` never touches the order's own lines: a
refund is an order of its own (type `shop_order_refund`, its id drawn from the
same sequence as orders, its parent the order) whose line items copy the
refunded lines with a new item id, a negative `quantity`, negative `subtotal`
and `total`, and one meta `_refunded_item_id` naming the order's line. So:

- the order keeps every line's quantity and total; it lists its refunds,
  newest first, under `refunds` as `{"id", "reason", "total"}` with `total`
  the negative amount as a decimal string (`"-10.00"`);
- only `GET /orders/{id}/refunds` (and `/refunds/{refund_id}`) shows what was
  refunded line by line, with negative quantities;
- a refund may not exceed what is left to refund (the order's total less the
  earlier refunds); one that leaves nothing to refund sets the order
  `refunded` (unless a free line is still unrefunded), and an order set
  `refunded` by hand gets a refund of what was left ("Order fully refunded.",
  no lines), as `wc_order_fully_refunded()` does.

The amount of a refund is the refunded lines at their price with their tax,
as the order screen proposes it, unless one is given (WooCommerce keeps the
amount and the lines' refund totals apart, and so does this module).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from simulators.shop.orders import format_money, format_tax, money, new_item_id, new_meta_id, wc_dates

REFUNDED_BY = 1  # the user id of the shop's admin, who refunds on the order screen
FULL_REFUND_REASON = "Order fully refunded."


class RefundRefused(ValueError):
    """What WooCommerce (or its order screen) would not let through, said the way it says it."""


def build_refund(
    refund_id: int,
    order: dict[str, Any],
    earlier: list[dict[str, Any]],
    *,
    quantities: dict[int, int],
    reason: str,
    amount: Any,
    when_gmt: datetime,
    site_url: str,
) -> dict[str, Any]:
    """The refund resource (as GET /orders/{id}/refunds/{refund_id} answers it) of `quantities`
    ({line item id: how many}) of `order`, whose `earlier` refunds are given. Raises RefundRefused."""
    lines = {line["id"]: line for line in order["line_items"]}
    refund_lines = []
    net_total = tax_total = Decimal(0)
    for line_id, quantity in quantities.items():
        line = lines.get(line_id)
        if line is None:
            raise RefundRefused(f"Order {order['id']} has no line item {line_id}.")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise RefundRefused(f"The quantity to refund of line {line_id} must be a positive integer.")
        left = line["quantity"] - refunded_quantity(earlier, line_id)
        if quantity > left:
            raise RefundRefused(f"Line {line_id} has {left} left to refund, not {quantity}.")
        net = money(Decimal(line["total"]) / line["quantity"] * quantity)
        tax = money(Decimal(line["total_tax"]) / line["quantity"] * quantity)
        refund_lines.append(_refund_line(line, quantity, net, tax))
        net_total += net
        tax_total += tax
    refund_amount = net_total + tax_total if amount is None else _amount(amount)
    if refund_amount < 0 or refund_amount > remaining_amount(order, earlier):
        raise RefundRefused("Invalid refund amount.")
    if not refund_lines and refund_amount == 0:
        raise RefundRefused("A refund needs lines or an amount.")
    local, gmt = wc_dates(when_gmt)
    base = f"{site_url}/wp-json/wc/v3/orders/{order['id']}"
    return {
        "id": refund_id,
        "date_created": local,
        "date_created_gmt": gmt,
        "amount": format_money(refund_amount),
        "reason": reason,
        "refunded_by": REFUNDED_BY,
        "refunded_payment": False,
        "meta_data": [],
        "line_items": refund_lines,
        "shipping_lines": [],
        "tax_lines": _tax_lines(tax_total),
        "fee_lines": [],
        "_links": {
            "self": [{"href": f"{base}/refunds/{refund_id}", "targetHints": {"allow": ["GET", "DELETE"]}}],
            "collection": [{"href": f"{base}/refunds"}],
            "up": [{"href": base}],
        },
    }


def full_refund(refund_id: int, order: dict[str, Any], earlier: list[dict[str, Any]], *, when_gmt: datetime,
                site_url: str) -> dict[str, Any] | None:
    """What `wc_order_fully_refunded()` adds when an order is set `refunded`: a refund of what is
    left, without lines; None when nothing is left."""
    left = remaining_amount(order, earlier)
    if left <= 0:
        return None
    return build_refund(refund_id, order, earlier, quantities={}, reason=FULL_REFUND_REASON, amount=left,
                        when_gmt=when_gmt, site_url=site_url)


def leaves_nothing(order: dict[str, Any], earlier: list[dict[str, Any]], refund: dict[str, Any]) -> bool:
    """wc_create_refund()'s test for "fully refunded": nothing left to refund after this one, unless
    the refund names lines and a free line still has items left (a free line costs nothing to refund)."""
    if remaining_amount(order, earlier) - Decimal(refund["amount"]) > 0:
        return False
    if refund["line_items"] and any(Decimal(line["total"]) == 0 for line in order["line_items"]):
        ordered = sum(line["quantity"] for line in order["line_items"])
        refunded = sum(refunded_quantity([*earlier, refund], line["id"]) for line in order["line_items"])
        return ordered - refunded <= 0
    return True


def summary(refunds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order's `refunds`: newest first, each {"id", "reason", "total": "-<amount>"}."""
    return [{"id": r["id"], "reason": r["reason"], "total": "-" + r["amount"]} for r in reversed(refunds)]


def remaining_amount(order: dict[str, Any], refunds: list[dict[str, Any]]) -> Decimal:
    return Decimal(order["total"]) - sum((Decimal(r["amount"]) for r in refunds), Decimal(0))


def refunded_quantity(refunds: list[dict[str, Any]], line_id: int) -> int:
    """How many of the order's line `line_id` the refunds took back (a positive number)."""
    return sum(
        -item["quantity"]
        for refund in refunds
        for item in refund["line_items"]
        if any(meta["key"] == "_refunded_item_id" and meta["value"] == str(line_id) for meta in item["meta_data"])
    )


def _refund_line(line: dict[str, Any], quantity: int, net: Decimal, tax: Decimal) -> dict[str, Any]:
    """The order's line copied as WooCommerce copies it into a refund: a new id, everything
    negative, and only the `_refunded_item_id` meta (the variation's attributes are not copied)."""
    meta_id = new_meta_id()
    return {
        **line,
        "id": new_item_id(),
        "quantity": -quantity,
        "subtotal": format_money(-net),
        "subtotal_tax": format_money(-tax),
        "total": format_money(-net),
        "total_tax": format_money(-tax),
        "taxes": [{"id": 1, "total": format_tax(-tax), "subtotal": format_tax(-tax)}] if tax else [],
        "meta_data": [{"id": meta_id, "key": "_refunded_item_id", "value": str(line["id"]),
                       "display_key": "_refunded_item_id", "display_value": str(line["id"])}],
        # total / quantity, as the REST controller computes it: positive, a number.
        "price": float(-net / -quantity),
        "image": dict(line["image"]),
    }


def _tax_lines(tax_total: Decimal) -> list[dict[str, Any]]:
    """The refund's own tax line (WC_Order_Refund::update_taxes), when the refunded lines carried tax."""
    if not tax_total:
        return []
    return [{
        "id": new_item_id(), "rate_code": "IT-IVA-1", "rate_id": 1, "label": "IVA", "compound": False,
        "tax_total": format_money(-tax_total), "shipping_tax_total": "0.00", "rate_percent": 22, "meta_data": [],
    }]


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RefundRefused("Invalid refund amount.") from None
    if not amount.is_finite():
        raise RefundRefused("Invalid refund amount.")
    return money(amount)
