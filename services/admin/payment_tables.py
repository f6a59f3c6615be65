"""The payment report (services/admin/payments.py) as the terminal and the page show it.

Two tables, written once for both (columns.py): the supplier orders waiting
for payment, and the differences to fix before paying; then the verdict and
the link where the dropshipper pays (SUPPLIER_PAYMENT_URL).
"""
from __future__ import annotations

from typing import Any

from shared.orders.payment_waits import utc_text
from services.admin import columns
from services.admin.columns import Column, Piece, Row, Table
from services.admin.health_report import ago
from services.admin.payments import Difference, PaymentReport, WaitingOrder

UNKNOWN_AMOUNT = "amount unknown"
READY = ("Ready to pay: the growing order holds exactly what the shop's open orders need, "
         "and every paid order is booked.")
NOTHING_WAITS = "No supplier order waits for payment: nothing to pay."
NO_LINK = "(set SUPPLIER_PAYMENT_URL to show here where the supplier's booked orders are paid)"


def _item(item: Any) -> Piece:
    named = " ".join(p for p in (item.code, item.name, item.size) if p)
    return Piece(f"{item.stock_id}{' ' + named if named else ''} ×{item.quantity}")


def _waited(row: Row) -> str:
    order: WaitingOrder = row["order"]
    text = ago(order.wait.waited_seconds)
    return text + " (overdue)" if order.overdue else text


def _amount(row: Row) -> str:
    amount = row["order"].amount
    return str(amount) if amount is not None else UNKNOWN_AMOUNT


def _order(row: Row) -> str:
    wait = row["order"].wait
    return wait.label + (" (cancelled in shop: do not pay)" if wait.cancelled_in_shop else "")


WAITING = Table(
    anchor="payments",
    title="Waiting for payment",
    intro="Supplier orders in Booked: the supplier prepares them only once they are paid on its platform.",
    empty="No supplier order waits for payment.",
    columns=(
        Column("Order", _order),
        Column("Customer", lambda r: r["order"].wait.customer),
        Column("Supplier order", lambda r: r["order"].wait.supplier_order_id, numeric=True),
        Column("Waiting since", lambda r: utc_text(r["order"].wait.waiting_since)),
        Column("Waited", _waited, css=lambda r: "status-overdue" if r["order"].overdue else None),
        Column("Amount", _amount, numeric=True),
        Column("Items", lambda r: [_item(i) for i in r["order"].items] or "none on record", stacked=True),
    ),
    free_last=True,
)


def _subject(row: Row) -> str:
    d: Difference = row["difference"]
    if d.stock_id is not None:
        return f"Remote ID {d.stock_id}"
    return f"order #{d.number or d.order_id}"


def _side(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        status = value.get("status")
        units = value.get("needs", value.get("holds")) or {}
        held = ", ".join(f"{s}×{q}" for s, q in sorted(units.items())) or "nothing"
        return f"{status or 'unknown'}: {held}"
    return str(value)


DIFFERENCES = Table(
    anchor="payment-differences",
    title="Before paying",
    intro="Where the growing order, the records and the shop's orders differ, and what to do about each.",
    empty="Nothing differs.",
    columns=(
        Column("What", _subject),
        Column("Shop", lambda r: _side(r["difference"].shop)),
        Column("Records", lambda r: _side(r["difference"].records)),
        Column("Supplier", lambda r: _side(r["difference"].supplier)),
        Column("Wrong", lambda r: r["difference"].wrong),
        Column("What to do", lambda r: r["difference"].fix),
    ),
    free_last=True,
)


def waiting_rows(report: PaymentReport) -> list[Row]:
    return [{"order": o} for o in report.orders]


def difference_rows(report: PaymentReport) -> list[Row]:
    return [{"difference": d} for d in report.differences]


def summary(report: PaymentReport) -> str:
    """`2 supplier orders wait for payment, EUR 50.00 in all, the oldest for 3 h.`"""
    n = len(report.orders)
    total = report.total
    if total is not None:
        cost = f", {total} in all (catalog prices before VAT and shipping)"
    elif any(i.unit_price is None for o in report.orders for i in o.items) or not all(o.items for o in report.orders):
        cost = ", the total unknown (the catalog gives no price for some items)"
    else:
        cost = ", the total unknown (the prices are in different currencies)"
    oldest = max(o.wait.waited_seconds for o in report.orders)
    late = sum(1 for o in report.orders if o.overdue)
    overdue = (f"; {late} waited longer than {ago(report.alert_after)}, their customers wait" if late else "")
    return (f"{n} supplier order{'s' if n != 1 else ''} {'wait' if n != 1 else 'waits'} for payment{cost}, "
            f"the oldest for {ago(oldest)}{overdue}.")


def verdict(report: PaymentReport) -> str:
    if not report.orders:
        return NOTHING_WAITS
    if report.compared is None:
        return "Not checked before paying: " + "; ".join(report.notes) + "."
    if report.ready_to_pay:
        return READY
    n = len(report.differences)
    return f"Not ready to pay: {n} difference{'s' if n != 1 else ''} to fix first."


def report_text(report: PaymentReport) -> str:
    """The whole report for a terminal."""
    if not report.orders:
        return NOTHING_WAITS
    parts = [summary(report), "", columns.as_text(WAITING, waiting_rows(report))]
    if report.differences:
        parts += ["", columns.as_text(DIFFERENCES, difference_rows(report))]
    parts += ["", verdict(report)]
    if report.compared is not None:
        parts += [f"Compared: {report.compared}.", *report.notes]
    parts.append(f"Pay at {report.payment_url}" if report.payment_url else NO_LINK)
    return "\n".join(parts)


def linkable(url: str) -> bool:
    """An address the page may link to: http(s) only (never javascript: or the like)."""
    return url.lower().startswith(("https://", "http://"))
