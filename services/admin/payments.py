"""What to pay the supplier, and whether it is right to pay now: `rewix-sync pay`, the page's section.

A dropshipping order is created Booked and waits there until the dropshipper
pays for it on the supplier's platform. The supplier plugin's documentation
gives the check to make first: the products in the growing order must be
exactly the products the shop's customers ordered. So the report lists the
supplier orders waiting for payment (shared/orders/payment_waits.py), each with its
shop order, customer, items (the order's sent lines, named from the catalog),
amount (catalog unit prices before VAT, where the catalog gives them) and how
long it has waited; then makes the check one verdict. Ready to pay when

- the shop's open orders, the records and the growing order agree (the three-way
  comparison of `rewix-sync reconcile`, services/admin/three_way.py, only
  its reading side; without the shop's keys, the records against the supplier,
  services/admin/supplier_diff.py, as `reconcile` does);
- every paid order is booked: no paid shop order waits to be sent, so none is
  missing from what is paid;
- no order waiting for payment belongs to a shop order cancelled after sending.

Otherwise every difference says which side is wrong and what to do about it.
Nothing here writes anywhere.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from shared.clients.rewix import RewixClient, status_name
from shared.db import get_engine
from shared.orders.payment_waits import PaymentWait, alert_after_seconds, waiting_for_payment
from shared.orders.vocabulary import READY_TO_SEND, LineState
from shared.settings import Settings

THREE_WAY = "the shop's open orders, the records and the supplier"
TWO_WAY = "the records and the supplier"
NO_SHOP = ("the shop's keys are not set (WC_URL, WC_CONSUMER_KEY, WC_CONSUMER_SECRET): "
           "the shop was not compared, only the records and the supplier")
CENT = Decimal("0.01")


# --- what waits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One model of a supplier order, as the catalog names and prices it (unknown fields empty)."""

    stock_id: int
    quantity: int
    code: str = ""
    name: str = ""
    size: str = ""
    unit_price: Decimal | None = None
    currency: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"stock_id": self.stock_id, "quantity": self.quantity, "code": self.code, "name": self.name,
                "size": self.size, "unit_price": _money(self.unit_price), "currency": self.currency or None}


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.currency} {self.value:.2f}" if self.currency else f"{self.value:.2f}"


def amount_of(items: Iterable[Item]) -> Amount | None:
    """Unit price × quantity summed; None ("amount unknown") when an item has no price or the currencies differ."""
    items = list(items)
    if not items or any(i.unit_price is None for i in items) or len({i.currency for i in items}) != 1:
        return None
    total = sum((i.unit_price * i.quantity for i in items), Decimal(0))  # type: ignore[operator]
    return Amount(total.quantize(CENT), items[0].currency)


def total_of(amounts: Sequence[Amount | None]) -> Amount | None:
    """The amounts added up, when every one is known and in one currency."""
    if not amounts or any(a is None for a in amounts) or len({a.currency for a in amounts}) != 1:  # type: ignore[union-attr]
        return None
    return Amount(sum((a.value for a in amounts), Decimal(0)), amounts[0].currency)  # type: ignore[union-attr]


@dataclass(frozen=True)
class WaitingOrder:
    wait: PaymentWait
    items: tuple[Item, ...]
    overdue: bool  # waiting longer than SUPPLIER_PAYMENT_ALERT_MINUTES

    @property
    def amount(self) -> Amount | None:
        return amount_of(self.items)

    def as_json(self) -> dict[str, Any]:
        w, amount = self.wait, self.amount
        return {
            "shop_order": w.number or str(w.shop_order_id), "shop_order_id": w.shop_order_id,
            "supplier_order_id": w.supplier_order_id, "key": w.key, "status": status_name(w.status),
            "status_code": w.status, "customer": w.customer, "waiting_since": w.waiting_since,
            "waited_seconds": round(w.waited_seconds), "overdue": self.overdue,
            "cancelled_in_shop": w.cancelled_in_shop,
            "items": [i.as_json() for i in self.items],
            "amount": _money(amount.value) if amount else None, "currency": (amount.currency or None) if amount else None,
        }


_ITEMS = text(
    f"""
    SELECT l.order_id, l.stock_id, sum(l.quantity) AS quantity,
           c.code, c.name, c.size, c.price, c.currency
    FROM order_lines l LEFT JOIN catalog_models c ON c.stock_id = l.stock_id
    WHERE l.order_id = ANY(:ids) AND l.sync_status = '{LineState.SENT}' AND NOT l.removed AND l.quantity > 0
    GROUP BY l.order_id, l.stock_id, c.code, c.name, c.size, c.price, c.currency
    ORDER BY l.order_id, l.stock_id
    """
)


def read_waiting(connection: Connection, alert_after: float) -> list[WaitingOrder]:
    """The supplier orders waiting for payment, the longest waiting first, with their sent items."""
    waits = waiting_for_payment(connection)
    items: dict[int, list[Item]] = {}
    if waits:
        for r in connection.execute(_ITEMS, {"ids": [w.shop_order_id for w in waits]}):
            items.setdefault(int(r.order_id), []).append(Item(
                int(r.stock_id), int(r.quantity), r.code or "", r.name or "", r.size or "",
                Decimal(r.price) if r.price is not None else None, r.currency or ""))
    return [WaitingOrder(w, tuple(items.get(w.shop_order_id, ())),
                         not w.cancelled_in_shop and w.waited_seconds > alert_after) for w in waits]


# --- paid, not booked --------------------------------------------------------------------------


@dataclass(frozen=True)
class Unsent:
    """A paid shop order (on record) with supplier lines and no supplier order: missing from what is paid."""

    order_id: int
    number: str
    line_states: frozenset[str]
    held: bool  # held by `backfill` for the owner to decide


_UNSENT = text(
    f"""
    SELECT o.id, o.number, array_agg(DISTINCT l.sync_status) AS states,
           EXISTS (SELECT 1 FROM send_holds h WHERE h.order_id = o.id) AS held
    FROM shop_orders o
    JOIN order_lines l ON l.order_id = o.id AND NOT l.removed AND l.quantity > 0
    WHERE o.status = '{READY_TO_SEND}' AND NOT o.deleted
      AND NOT EXISTS (SELECT 1 FROM supplier_orders s WHERE s.shop_order_id = o.id)
    GROUP BY o.id, o.number
    ORDER BY o.id
    """
)


def read_unsent(connection: Connection) -> list[Unsent]:
    return [Unsent(int(r.id), r.number or "", frozenset(r.states or ()), bool(r.held))
            for r in connection.execute(_UNSENT)]


def unsent_fix(order: Unsent) -> str:
    """What to do so that a paid order is booked too (the most pressing cause first)."""
    number = order.number or str(order.order_id)
    if order.held:
        return (f"held by backfill for you to decide: `rewix-sync backfill --order {order.order_id} --send-paid` "
                "sends it (unless you placed it at the supplier by hand)")
    if LineState.DEAD_LETTERED in order.line_states or LineState.FAILED in order.line_states:
        return "the supplier refused it or its message failed for good: `rewix-sync dlq list` says why; replay once fixed"
    if LineState.SHORT in order.line_states:
        return "the supplier could not lock all its units: `rewix-sync reservations` shows which; it is sent once they are"
    return f"not sent yet: supplier_sync sends #{number} shortly; if it stays, `rewix-sync status` says why"


# --- differences ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One reason not to pay yet: which side is wrong, and what to do about it."""

    kind: str  # stock, order (as reconcile finds them), paid_not_booked, do_not_pay
    fix: str
    shop: Any = None
    records: Any = None
    supplier: Any = None
    wrong: str = ""
    stock_id: int | None = None
    order_id: int | None = None
    number: str | None = None

    def as_json(self) -> dict[str, Any]:
        key: dict[str, Any] = {"stock_id": self.stock_id} if self.stock_id is not None else {
            "order_id": self.order_id, "shop_order": self.number}
        return {"kind": self.kind, **key, "shop": self.shop, "records": self.records, "supplier": self.supplier,
                "wrong": self.wrong, "fix": self.fix}


def from_three_way(comparison: Any, numbers: dict[int, str]) -> list[Difference]:
    """`reconcile`'s differences (shop_reconcile.Comparison), said for the one about to pay."""
    found = [Difference("order", d.fix, d.shop, d.records, d.supplier, d.wrong, order_id=d.order_id,
                        number=numbers.get(d.order_id)) for d in comparison.orders]
    found += [Difference("stock", stock_fix(d.fix), d.shop, d.records, d.supplier, d.wrong, stock_id=d.stock_id)
              for d in comparison.stock]
    return found


def from_two_way(differences: Iterable[Any]) -> list[Difference]:
    """The records against the supplier (services/admin/supplier_diff.py), the shop not compared."""
    out = []
    for d in differences:
        action = f"lock {d.delta} more at the supplier" if d.delta > 0 else f"release {-d.delta} at the supplier"
        out.append(Difference("stock", stock_fix(action), None, d.needed, d.locked, "supplier", stock_id=d.stock_id))
    return out


def stock_fix(action: str) -> str:
    return f"{action}: the growing order must hold exactly what the unsent orders need (`rewix-sync reconcile --apply`)"


def paid_not_booked(unsent: Iterable[Unsent], shop_paid: Iterable[tuple[int, str]] = ()) -> list[Difference]:
    """Paid orders without a supplier order: on record (with why), and those the shop says are paid that the
    records do not know as paid (`shop_paid`: (order id, number) of the shop's processing orders with supplier
    lines that were never sent)."""
    out, seen = [], set()
    for order in unsent:
        seen.add(order.order_id)
        out.append(Difference("paid_not_booked", unsent_fix(order), records=READY_TO_SEND.value,
                              supplier="not sent", wrong="supplier", order_id=order.order_id, number=order.number))
    for order_id, number in shop_paid:
        if order_id in seen:
            continue
        out.append(Difference(
            "paid_not_booked",
            f"paid in the shop but not on record as paid (a delivery was missed): `rewix-sync backfill --order "
            f"{order_id} --send-paid` sends it the usual way", shop=READY_TO_SEND.value, supplier="not sent",
            wrong="records", order_id=order_id, number=number))
    return out


def do_not_pay(orders: Iterable[WaitingOrder]) -> list[Difference]:
    """Booked orders whose shop order was cancelled after sending: paying them ships a parcel nobody wants."""
    return [Difference(
        "do_not_pay", f"the shop order was cancelled after sending: do not pay supplier order {o.wait.supplier_label}; "
                      "cancel it on the supplier's platform (a person must)",
        shop="cancelled", records="sent", supplier="Booked", wrong="supplier", order_id=o.wait.shop_order_id,
        number=o.wait.number) for o in orders if o.wait.cancelled_in_shop]


def combined(*groups: Iterable[Difference]) -> list[Difference]:
    """The differences of every check, each order named once (the first check's finding wins)."""
    out, orders = [], set()
    for group in groups:
        for d in group:
            if d.order_id is not None:
                if d.order_id in orders:
                    continue
                orders.add(d.order_id)
            out.append(d)
    return out


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentReport:
    orders: list[WaitingOrder]
    differences: list[Difference]
    compared: str | None  # what the check compared; None: not made (nothing waits for payment)
    alert_after: float  # seconds
    payment_url: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ready_to_pay(self) -> bool:
        return bool(self.orders) and self.compared is not None and not self.differences

    @property
    def exit_code(self) -> int:
        """0 when ready to pay or nothing waits, 1 when something must be fixed first."""
        return 0 if self.ready_to_pay or not self.orders else 1

    @property
    def total(self) -> Amount | None:
        return total_of([o.amount for o in self.orders if not o.wait.cancelled_in_shop])

    def as_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "ready_to_pay": self.ready_to_pay,
            "orders": [o.as_json() for o in self.orders],
            "differences": [d.as_json() for d in self.differences],
            "compared": self.compared,
            "total": {"amount": _money(total.value), "currency": total.currency or None} if total else None,
            "payment_url": self.payment_url,
            "alert_after_minutes": self.alert_after / 60.0,
            "notes": self.notes,
        }


def shop_keys_set(settings: Settings) -> bool:
    return bool(settings.wc_url and settings.wc_consumer_key and settings.wc_consumer_secret)


def build(settings: Settings, supplier: RewixClient, shop: Any | None = None,
          progress: Callable[[int, int], None] | None = None) -> PaymentReport:
    """The report: what waits, then (when something does) the check. `shop` None compares without the shop."""
    alert_after = alert_after_seconds(settings.supplier_payment_alert_minutes)
    database_url = settings.database_url
    with get_engine(database_url).connect() as connection:
        orders = read_waiting(connection, alert_after)
        unsent = read_unsent(connection) if orders else []
        connection.rollback()
    if not orders:
        return PaymentReport([], [], None, alert_after, settings.supplier_payment_url)
    numbers = {o.wait.shop_order_id: o.wait.number for o in orders} | {u.order_id: u.number for u in unsent}
    notes = []
    if shop is not None:
        from services.admin import three_way as shop_reconcile

        comparison = shop_reconcile.compare(database_url, shop, supplier, progress)
        sent = shop_reconcile.read_records(database_url).sent
        numbers |= {order_id: str((o.body or {}).get("number") or order_id) for order_id, o in comparison.shop.items()}
        shop_paid = [(order_id, numbers[order_id]) for order_id, o in sorted(comparison.shop.items())
                     if o.status == READY_TO_SEND and o.needs and order_id not in sent]
        found = combined(do_not_pay(orders), from_three_way(comparison, numbers), paid_not_booked(unsent, shop_paid))
        compared = THREE_WAY
    else:
        from services.admin import supplier_diff as two_way

        found = combined(do_not_pay(orders), from_two_way(two_way.compare(database_url, supplier)),
                         paid_not_booked(unsent))
        compared = TWO_WAY
        notes.append(NO_SHOP)
    return PaymentReport(orders, found, compared, alert_after, settings.supplier_payment_url, notes)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.quantize(CENT)}"
