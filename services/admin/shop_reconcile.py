"""The owner's check, done three ways: the shop's open orders, the system's records, the supplier.

The supplier's plugin documentation asks that the products in the growing
order be exactly the products the shop's customers ordered. So the shop is
read (its pending, on-hold and processing orders, and every order the records
hold or sent that the listing lacks, asked by id: trashed, cancelled or gone),
each order's supplier lines resolved as ingest resolves them, and set beside

- the records: what they hold per order (the reservation model,
  shared/reservations/), and which orders were sent as supplier orders;
- the supplier: what its growing order holds per stock_id.

Every difference names the side that is wrong: per order, records that hold
what the shop no longer asks for (or miss what it does); per stock_id, a
supplier holding more or less than the shop's orders need; a supplier order
whose shop order was cancelled after sending, which a person must handle.

`apply` brings the records to the shop first (the shop's current state of
each differing order goes through supplier_sync's own record and converge,
services/supplier_sync/handler.py), then sets the supplier to what the records
need now (services/admin/reconcile.py), then compares again.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from shared.db import get_autocommit_engine, session_scope
from shared.messages import OrderLineMessage
from shared.order_events import InvalidOrder, convert
from shared.product_lookup import ProductLookupCache
from shared.reservations import repository
from shared.rewix import RewixClient
from shared.shop import WooCommerceClient
from shared.vocabulary import GIVEN_UP_STATUSES, HOLDING_STATUSES, ShopStatus
from services.admin import reconcile as two_way
from services.supplier_sync.handler import OrderLineHandler

OPEN = sorted(map(str, HOLDING_STATUSES))
GONE = "deleted"  # what the shop side says of an order it answers 404 for
BATCH = 100


@dataclass(frozen=True)
class ShopOrder:
    """An order as the shop has it now: its status (GONE for a 404) and what it needs held."""

    order_id: int
    status: str
    needs: dict[int, int]  # stock_id -> units, empty when it needs nothing held
    body: dict[str, Any] | None  # None when gone
    invalid: str | None = None


@dataclass(frozen=True)
class Records:
    status: dict[int, str]  # order_id -> status on record ("deleted" when deleted)
    holds: dict[int, dict[int, int]]  # order_id -> stock_id -> units held
    sent: dict[int, str]  # order_id -> the supplier order (id or key), every one ever sent
    open_sent: set[int]  # of those, the supplier orders not final yet


@dataclass(frozen=True)
class Difference:
    """One disagreement; `wrong` names the side(s) to fix, `fix` says how."""

    shop: Any
    records: Any
    supplier: Any
    wrong: str
    fix: str
    stock_id: int | None = None
    order_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        key = {"stock_id": self.stock_id} if self.stock_id is not None else {"order_id": self.order_id}
        return {**key, "shop": self.shop, "records": self.records, "supplier": self.supplier,
                "wrong": self.wrong, "fix": self.fix}


@dataclass
class Comparison:
    shop: dict[int, ShopOrder] = field(default_factory=dict)
    orders: list[Difference] = field(default_factory=list)
    stock: list[Difference] = field(default_factory=list)

    @property
    def differences(self) -> list[Difference]:
        return self.orders + self.stock

    @property
    def ok(self) -> bool:
        return not self.orders and not self.stock


# -- reading -----------------------------------------------------------------------------------


def read_records(database_url: str) -> Records:
    with session_scope(database_url) as session:
        held = repository.load(session)
        holds: dict[int, dict[int, int]] = {}
        for stock_id, lines in held.held.items():
            for line in lines:
                per = holds.setdefault(line.order_id, {})
                per[stock_id] = per.get(stock_id, 0) + line.quantity
        status = {
            int(r.id): (GONE if r.deleted else r.status)
            for r in session.execute(text("SELECT id, status, deleted FROM shop_orders WHERE status <> ''"))
        }
        sent, open_sent = {}, set()
        for r in session.execute(text("SELECT shop_order_id, key, supplier_order_id, final FROM supplier_orders")):
            sent[int(r.shop_order_id)] = str(r.supplier_order_id or r.key)
            if not r.final:
                open_sent.add(int(r.shop_order_id))
    return Records(status, holds, sent, open_sent)


def read_shop(
    shop: WooCommerceClient, database_url: str, also: Iterable[int], progress: Callable[[int, int], None] | None = None
) -> dict[int, ShopOrder]:
    """The shop's open orders, and every order of `also` it does not list as open, by id.

    `progress(done, total)` is called after each page of the open orders.
    """
    lookups = ProductLookupCache()
    found: dict[int, ShopOrder] = {}
    engine = get_autocommit_engine(database_url)
    with engine.connect() as connection:
        resolve = lookups.resolver(connection)

        def take(body: dict[str, Any]) -> None:
            order = _shop_order(body, resolve)
            found[order.order_id] = order

        page, done = 1, 0
        while True:
            rows, total, pages = shop.list_orders_page(OPEN, page)
            for body in rows:
                if isinstance(body, dict) and "id" in body:
                    take(body)
            done += len(rows)
            if progress is not None:
                progress(done, total)
            if page >= pages or not rows:
                break
            page += 1
        # Orders the records know that the listing lacks: ask for them by id, every status.
        rest = sorted(set(also) - set(found))
        every = [*shop.order_statuses(), str(ShopStatus.TRASH)]
        for start in range(0, len(rest), BATCH):
            batch = rest[start:start + BATCH]
            for body in shop.get_orders(batch, every):
                if isinstance(body, dict) and "id" in body:
                    take(body)
            for order_id in batch:
                if order_id not in found:
                    body = shop.find_order(order_id)
                    if body is None:
                        found[order_id] = ShopOrder(order_id, GONE, {}, None)
                    else:
                        take(body)
    return found


def _shop_order(body: dict[str, Any], resolve: Any) -> ShopOrder:
    order_id = int(body["id"])
    status = str(body.get("status") or "")
    try:
        conversion = convert(body, "order.updated", resolve, "reconcile")
    except InvalidOrder as exc:
        return ShopOrder(order_id, status, {}, body, invalid=str(exc)[:200])
    needs: dict[int, int] = {}
    if status in HOLDING_STATUSES:
        for message in conversion.messages:
            if message.line is not None and message.line.quantity > 0:
                needs[message.line.stock_id] = needs.get(message.line.stock_id, 0) + message.line.quantity
    return ShopOrder(order_id, status, needs, body)


# -- comparing ---------------------------------------------------------------------------------


def compare(
    database_url: str, shop: WooCommerceClient, supplier: RewixClient,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    records = read_records(database_url)
    interesting = set(records.holds) | records.open_sent
    shop_orders = read_shop(shop, database_url, interesting, progress)
    growing = supplier.get_growing_order()
    result = Comparison(shop=shop_orders)

    for order_id in sorted(set(shop_orders) | set(records.holds) | records.open_sent):
        order = shop_orders.get(order_id)
        status = order.status if order else GONE
        on_record = records.status.get(order_id)
        if order_id in records.sent:
            if order_id in records.open_sent and (status in GIVEN_UP_STATUSES or status == GONE):
                result.orders.append(Difference(
                    order_id=order_id, shop=status, records=f"sent as supplier order {records.sent[order_id]}",
                    supplier=f"supplier order {records.sent[order_id]}", wrong="supplier",
                    fix=f"cancel supplier order {records.sent[order_id]} on the supplier's platform (a person must)",
                ))
            continue
        needs = order.needs if order else {}
        held = records.holds.get(order_id, {})
        if order is not None and order.invalid:
            result.orders.append(Difference(
                order_id=order_id, shop=status, records=on_record, supplier=None, wrong="shop",
                fix=f"the shop's order cannot be read: {order.invalid}",
            ))
            continue
        if needs != held:
            result.orders.append(Difference(
                order_id=order_id, shop={"status": status, "needs": needs},
                records={"status": on_record, "holds": held}, supplier=None, wrong="records",
                fix="bring the records to the shop's order (reconcile --apply)",
            ))

    shop_needed: dict[int, int] = {}
    for order_id, order in shop_orders.items():
        if order_id in records.sent:
            continue  # its units left the growing order when it was sent
        for stock_id, units in order.needs.items():
            shop_needed[stock_id] = shop_needed.get(stock_id, 0) + units
    records_needed: dict[int, int] = {}
    for per in records.holds.values():
        for stock_id, units in per.items():
            records_needed[stock_id] = records_needed.get(stock_id, 0) + units
    locked = {s: m.locked for s, m in growing.models.items() if m.locked > 0}
    for stock_id in sorted(set(shop_needed) | set(records_needed) | set(locked)):
        need, rec, sup = shop_needed.get(stock_id, 0), records_needed.get(stock_id, 0), growing.locked(stock_id)
        if need == rec == sup:
            continue
        wrong = [side for side, value in (("records", rec), ("supplier", sup)) if value != need]
        result.stock.append(Difference(
            stock_id=stock_id, shop=need, records=rec, supplier=sup, wrong=" and ".join(wrong),
            fix=_stock_fix(need, sup),
        ))
    return result


def _stock_fix(need: int, locked: int) -> str:
    if locked > need:
        return f"release {locked - need} at the supplier"
    if locked < need:
        return f"lock {need - locked} more at the supplier"
    return "bring the records to the shop's orders"


# -- applying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    orders: list[int]  # orders whose records were brought to the shop
    supplier: dict[int, int]  # stock_id -> units set at the supplier
    after: Comparison


def apply(
    database_url: str, shop: WooCommerceClient, supplier: RewixClient, found: Comparison,
    progress: Callable[[int, int], None] | None = None,
) -> Applied:
    """Records to the shop first, then the supplier to the records, then look again."""
    fixable = [d.order_id for d in found.orders if d.wrong == "records" and d.order_id is not None]
    messages: list[OrderLineMessage] = []
    lookups = ProductLookupCache()
    with get_autocommit_engine(database_url).connect() as connection:
        resolve = lookups.resolver(connection)
        for order_id in fixable:
            order = found.shop.get(order_id)
            if order is None or order.body is None:
                messages += convert({"id": order_id}, "order.deleted", resolve, "reconcile").messages
            else:
                messages += convert(order.body, "order.updated", resolve, "reconcile").messages
    if messages:
        # supplier_sync's own path: record the shop's states, then converge what they touched.
        handler = OrderLineHandler(database_url, supplier)
        recorded = handler.record(messages)
        handler.converge(set(recorded.stock_ids), set(recorded.order_ids))
    supplier_set = two_way.apply(database_url, supplier).sent
    return Applied(fixable, supplier_set, compare(database_url, shop, supplier, progress))
