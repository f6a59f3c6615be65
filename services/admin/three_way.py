"""The owner's check, done three ways: the shop's open orders, the system's records, the supplier.

The supplier's plugin documentation asks that the products in the growing
order be exactly the products the shop's customers ordered. So the shop is
read (its pending, on-hold and processing orders, and every order the records
hold or sent that the listing lacks, asked by id: trashed, cancelled or gone),
each order's supplier lines resolved as ingest resolves them, and set beside

- the records: what they hold per order (the reservation model,
  shared/reservations/), and which orders were sent as supplier orders;
- the supplier: what its growing order holds per stock_id.

Every difference names the side that is wrong and how to fix it: per order,
records that hold what the shop no longer asks for (or miss what it does);
per stock_id, a supplier holding more or less than the shop's orders need; a
sent order the shop gave up afterwards, which a person must cancel at the
supplier and then record handled (services/admin/handled_orders.py).
`by_apply` says whether `--apply` can fix it.

`apply` writes nothing at the supplier itself: it brings the records to the
shop through OrderIntake, as backfill does and under backfill's rule (a paid
order the records never saw is locked and held, never sent:
services/admin/backfill.py, `submit_one`), waits for supplier_sync to record
them, then asks supplier_sync to converge the models that still differ and
waits for that (services/admin/supplier_convergence.py), then compares again.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text

from shared.clients.rewix import RewixClient
from shared.clients.shop import WooCommerceClient
from shared.db import get_autocommit_engine, session_scope
from shared.messaging.amqp import Publisher
from shared.orders.events import InvalidOrder, convert
from shared.orders.intake import OrderIntake
from shared.orders.vocabulary import GIVEN_UP_STATUSES, HOLDING_STATUSES, ShopStatus
from shared.products.lookup import ProductLookupCache
from shared.reservations import repository
from services.admin import backfill, handled_orders
from services.admin import supplier_convergence as convergence
from services.admin import supplier_diff as two_way

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
    numbers: dict[int, str] = field(default_factory=dict)  # order_id -> the shop's order number
    to_handle: set[int] = field(default_factory=set)  # sent, given up in the shop since, not handled yet
    handled: set[int] = field(default_factory=set)  # sent, given up in the shop since, handled by a person
    held: dict[int, datetime] = field(default_factory=dict)  # paid, held from sending (backfill's rule), since


@dataclass(frozen=True)
class HeldOrder:
    """A paid order locked but held from sending until the owner says (shared/orders/send_holds.py)."""

    order_id: int
    number: str
    since: datetime

    @property
    def send(self) -> str:
        return f"rewix-sync backfill --order {self.order_id} --send-paid"

    def as_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "number": self.number, "held_since": self.since, "send": self.send}


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
    by_apply: bool = False  # `reconcile --apply` can fix it (else a person must, as `fix` says)

    def as_json(self) -> dict[str, Any]:
        key = {"stock_id": self.stock_id} if self.stock_id is not None else {"order_id": self.order_id}
        return {**key, "shop": self.shop, "records": self.records, "supplier": self.supplier,
                "wrong": self.wrong, "fix": self.fix, "by_apply": self.by_apply}


@dataclass
class Comparison:
    shop: dict[int, ShopOrder] = field(default_factory=dict)
    orders: list[Difference] = field(default_factory=list)
    stock: list[Difference] = field(default_factory=list)
    # Orders whose records are behind the shop: --apply submits the shop's state of each.
    stale: list[int] = field(default_factory=list)
    held: list[HeldOrder] = field(default_factory=list)

    @property
    def differences(self) -> list[Difference]:
        return self.orders + self.stock

    @property
    def ok(self) -> bool:
        return not self.orders and not self.stock

    @property
    def by_apply(self) -> bool:
        """Some difference is one `reconcile --apply` can fix."""
        return any(d.by_apply for d in self.differences)


# -- reading -----------------------------------------------------------------------------------


def read_records(database_url: str) -> Records:
    with session_scope(database_url) as session:
        held = repository.load(session)
        holds: dict[int, dict[int, int]] = {}
        for stock_id, lines in held.held.items():
            for line in lines:
                per = holds.setdefault(line.order_id, {})
                per[stock_id] = per.get(stock_id, 0) + line.quantity
        status, numbers = {}, {}
        for r in session.execute(text("SELECT id, number, status, deleted FROM shop_orders WHERE status <> ''")):
            status[int(r.id)] = GONE if r.deleted else r.status
            numbers[int(r.id)] = r.number or str(r.id)
        sent, open_sent, to_handle, handled = {}, set(), set(), set()
        for r in session.execute(text(
            "SELECT shop_order_id, key, supplier_order_id, final, cancelled_in_shop, handled_at FROM supplier_orders"
        )):
            order_id = int(r.shop_order_id)
            sent[order_id] = str(r.supplier_order_id or r.key)
            if not r.final:
                open_sent.add(order_id)
            if r.handled_at is not None:
                handled.add(order_id)
            elif r.cancelled_in_shop:
                to_handle.add(order_id)
        held = {
            int(r.order_id): r.held_at
            for r in session.execute(text(
                "SELECT h.order_id, h.held_at FROM send_holds h JOIN shop_orders o ON o.id = h.order_id"
                " WHERE o.status = :paid AND NOT o.deleted"
                " AND NOT EXISTS (SELECT 1 FROM supplier_orders s WHERE s.shop_order_id = o.id)"
            ), {"paid": str(ShopStatus.PROCESSING)})
        }
    return Records(status, holds, sent, open_sent, numbers, to_handle, handled, held)


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
    interesting = set(records.holds) | records.open_sent | records.to_handle
    shop_orders = read_shop(shop, database_url, interesting, progress)
    growing = supplier.get_growing_order()
    result = Comparison(shop=shop_orders)
    result.held = [HeldOrder(o, records.numbers.get(o, str(o)), since) for o, since in sorted(records.held.items())]

    for order_id in sorted(set(shop_orders) | interesting):
        order = shop_orders.get(order_id)
        status = order.status if order else GONE
        on_record = records.status.get(order_id)
        if order_id in records.sent:
            _compare_sent(result, records, order_id, status)
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
                fix="bring the records to the shop's order (reconcile --apply)", by_apply=True,
            ))
            result.stale.append(order_id)
    _say_what_apply_holds(database_url, result)

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
            fix=_stock_fix(need, sup), by_apply=True,
        ))
    return result


def _compare_sent(result: Comparison, records: Records, order_id: int, status: str) -> None:
    """A sent order the shop gave up afterwards needs a person at the supplier, final there or not,
    until it is recorded handled; --apply can only bring the records to the shop's status."""
    given_up = status in GIVEN_UP_STATUSES or status == GONE
    if order_id in records.handled:
        return
    if order_id not in records.to_handle and not (order_id in records.open_sent and given_up):
        return
    supplier_order = records.sent[order_id]
    number = records.numbers.get(order_id, str(order_id))
    result.orders.append(Difference(
        order_id=order_id, shop=status, records=f"sent as supplier order {supplier_order}",
        supplier=f"supplier order {supplier_order}", wrong="supplier",
        fix=f"{handled_orders.what_to_do(supplier_order, number)} (a person must)",
    ))
    on_record = records.status.get(order_id)
    if given_up and on_record not in GIVEN_UP_STATUSES and on_record != GONE:
        result.stale.append(order_id)  # the records learn it, so `status` shows it too


def _say_what_apply_holds(database_url: str, result: Comparison) -> None:
    """A paid order the records never saw is locked and held by --apply, never sent (backfill's plan)."""
    bodies = {d.order_id: result.shop[d.order_id].body for d in result.orders
              if d.wrong == "records" and d.order_id in result.shop and result.shop[d.order_id].body is not None}
    if not bodies:
        return
    holding: set[int] = set()
    with session_scope(database_url) as session:
        for order_id, body in bodies.items():
            try:
                decided = backfill.plan(session, body, send_paid=False)
            except InvalidOrder:
                continue
            if decided.hold or decided.action == backfill.STAYS_HELD:
                holding.add(order_id)
        session.rollback()  # planning writes nothing
    for index, difference in enumerate(result.orders):
        if difference.order_id in holding:
            result.orders[index] = replace(difference, fix=(
                "paid, and never seen by the records: --apply locks it and holds it, unsent; once sure it was "
                f"not placed at the supplier by hand, `rewix-sync backfill --order {difference.order_id} "
                "--send-paid` sends it"))


def _stock_fix(need: int, locked: int) -> str:
    if locked > need:
        return f"release {locked - need} at the supplier"
    if locked < need:
        return f"lock {need - locked} more at the supplier"
    return "bring the records to the shop's orders"


# -- applying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    orders: list[int]  # orders whose shop state went to supplier_sync
    held: list[str]  # paid orders this run locked and held (backfill's rule), described
    skipped: list[str]  # orders not submitted, and why
    not_recorded: set[int]  # submitted orders supplier_sync had not recorded within the wait
    supplier: dict[int, int]  # stock_id -> units supplier_sync set it to
    not_converged: set[int]  # models supplier_sync had not set within the wait
    after: Comparison


# (step, left, of) while waiting for supplier_sync: "recording" orders, then "setting" models.
Waiting = Callable[[str, int, int], None]


def apply(
    database_url: str, amqp_url: str, shop: WooCommerceClient, supplier: RewixClient, found: Comparison,
    progress: Callable[[int, int], None] | None = None, waiting: Waiting | None = None,
    timeout: float = convergence.WAIT_SECONDS,
) -> Applied:
    """Records to the shop first (through OrderIntake), then supplier_sync sets the models that differ,
    then look again. Raises supplier_convergence.NotConsuming, changing nothing, when supplier_sync
    is not running."""
    convergence.require_supplier_sync(amqp_url)
    until = time.monotonic() + timeout
    publisher = Publisher(amqp_url)
    try:
        summary = backfill.Summary()
        submitted, skipped = _submit_stale(OrderIntake(database_url, publisher), found, summary)
        not_recorded = convergence.wait_for(
            lambda: convergence.not_recorded(database_url, submitted), until=until,
            progress=None if waiting is None else (lambda left: waiting("recording", left, len(submitted))))
        # The records say what the shop says now: the models whose supplier differs from them.
        differing = [d.stock_id for d in two_way.compare(database_url, supplier)]
        converged = convergence.converge(
            database_url, publisher, differing, until=until,
            progress=None if waiting is None else (lambda left, of: waiting("setting", left, of)))
    finally:
        publisher.close()
    return Applied(sorted(submitted), summary.held, skipped + summary.invalid, not_recorded, converged.set_to,
                   converged.not_set, compare(database_url, shop, supplier, progress))


def _submit_stale(intake: OrderIntake, found: Comparison,
                  summary: backfill.Summary) -> tuple[dict[int, datetime | None], list[str]]:
    """Each stale order's shop state down the webhook path; order_id -> the date of the state published."""
    submitted: dict[int, datetime | None] = {}
    skipped: list[str] = []
    for order_id in found.stale:
        order = found.shop.get(order_id)
        if order is None or order.body is None:
            # Gone from the shop (404): as a confirmed delete.
            conversion = intake.submit({"id": order_id}, "order.deleted", source="reconcile")
        else:
            conversion = backfill.submit_one(intake, order.body, summary, source="reconcile")
        if conversion is None:
            continue  # cannot be read: in summary.invalid
        if conversion.messages:
            submitted[order_id] = conversion.messages[0].date_modified_gmt
        else:
            skipped.append(f"order {order_id}: {conversion.ignored or 'nothing to publish'}")
    return submitted, skipped
