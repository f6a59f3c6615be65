"""Send the shop's recently modified orders down the webhook path again.

For deliveries WooCommerce missed or gave up on, and for going live: every
order modified at or after a moment goes through OrderIntake, exactly like a
webhook, so whatever it needs of the supplier converges on its latest state.

One thing differs from a webhook: an order found already paid is locked but
not sent unless the owner asked for it (`send_paid`): it is held
(shared/orders/send_holds.py), because the owner may have placed it at the supplier
by hand. So is a paid one whose products are not mapped yet: it waits for
the product map (shared/products/waiting.py), and the hold keeps it unsent
once they are. `plan` says per order what a run would do, for `--dry-run`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.clients.shop import WooCommerceClient
from shared.db import session_scope
from shared.db.models import OrderVersion, ShopOrder, SupplierOrder
from shared.orders import send_holds
from shared.orders.events import Conversion, InvalidOrder, convert
from shared.orders.intake import OrderIntake
from shared.orders.vocabulary import HOLDING_STATUSES, READY_TO_SEND, ShopStatus
from shared.products.mapping import ProductResolver
from shared.reservations import repository


def parse_since(value: str) -> datetime:
    """An ISO-8601 moment ('2026-11-26T09:00:00Z'); one without an offset is taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)  # ValueError for the caller to report
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def query_bound(since: datetime) -> datetime:
    """WooCommerce's modified_after is exclusive and counts whole seconds: one second earlier
    includes the orders modified at `since` itself."""
    return since.replace(microsecond=0) - timedelta(seconds=1)


@dataclass
class Summary:
    orders: int = 0
    published: int = 0
    skipped: int = 0
    invalid: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # paid orders locked but not sent
    released: list[str] = field(default_factory=list)  # holds lifted by --send-paid


# What a backfill does with an order, by what it finds.
LOCK = "lock"
LOCK_AND_SEND = "lock and send"
LOCK_AND_HOLD = "lock, hold: paid already, not sent without --send-paid"
STAYS_HELD = "lock, stays held: not sent without --send-paid"
ON_ITS_WAY = "lock and send: in the records already, on its way to the supplier"
SENT_ALREADY = "nothing to send: sent to the supplier already"
RELEASE = "release what it holds"
NOTHING_HELD = "nothing to release: the records hold nothing for it"
NOTHING = "nothing"
WAITS_AND_HOLD = "nothing yet, waits for a product map; hold: paid already, not sent without --send-paid once mapped"
WAITS_HELD = "nothing yet, waits for a product map; stays held: not sent without --send-paid once mapped"
WAITS_THEN_SEND = "nothing yet, waits for a product map; sent once mapped"


@dataclass(frozen=True)
class OrderPlan:
    order_id: int
    number: str
    status: str
    lines: list[tuple[int, int]]  # (stock_id, quantity) of the supplier lines
    action: str
    hold: bool = False  # write a hold before submitting
    lift: bool = False  # lift a hold before submitting (--send-paid)
    releases: tuple[tuple[int, int], ...] = ()  # (stock_id, quantity) the records hold, for RELEASE

    def describe(self) -> str:
        lines = ", ".join(f"{stock_id} x{quantity}" for stock_id, quantity in self.lines) or "no supplier line"
        label = f"#{self.number}" + ("" if self.number == str(self.order_id) else f" (id {self.order_id})")
        held = ", ".join(f"{stock_id} x{quantity}" for stock_id, quantity in self.releases)
        return f"{label} {self.status or '-'}: {lines} -> {self.action}" + (f" ({held})" if held else "")


def plan(session: Session, order: Any, *, send_paid: bool, refunded: Mapping[int, int] | None = None) -> OrderPlan:
    """What submitting this order would do; reads the database, writes nothing. Raises InvalidOrder.

    `refunded`: the units its refunds gave back (shared/orders/intake.py, `read_refunds`), so the
    quantities said are what is still to be delivered.
    """
    conversion = convert(order, "order.updated", ProductResolver(session).resolve, "backfill", refunded=refunded)
    status = str(order.get("status") or "")
    number = str(order.get("number") or conversion.order_id)
    lines: dict[int, int] = {}
    for message in conversion.messages:
        if message.line is not None:
            lines[message.line.stock_id] = lines.get(message.line.stock_id, 0) + message.line.quantity
    items = sorted(lines.items())

    def result(action: str, **flags: bool) -> OrderPlan:
        return OrderPlan(conversion.order_id, number, status, items, action, **flags)

    def release() -> OrderPlan:
        """What the records hold for it is released; say so only when they hold something."""
        held = repository.held_by_order(session, conversion.order_id)
        if not held:
            return result(NOTHING_HELD)
        return OrderPlan(conversion.order_id, number, status, items, RELEASE, releases=tuple(sorted(held.items())))

    if conversion.ignored:
        return result(f"{NOTHING}: {conversion.ignored}")
    if _paid_and_waiting_for_a_map(session, conversion, status):
        # Nothing to lock yet; once its product is mapped, the pickup sends it unless it is held
        # (shared/products/waiting.py): the same choice as for a paid order with supplier lines.
        held = conversion.order_id in send_holds.held_since(session, [conversion.order_id])
        if send_paid:
            return result(WAITS_THEN_SEND, lift=held)
        return result(WAITS_HELD if held else WAITS_AND_HOLD, hold=not held)
    if not conversion.has_supplier_lines:
        return release() if _had_supplier_line(session, conversion.order_id) else result(f"{NOTHING}: no supplier line")
    if status not in HOLDING_STATUSES:
        return release() if status != ShopStatus.COMPLETED else result(f"{NOTHING}: completed")
    if status != READY_TO_SEND:
        return result(LOCK)
    sent = session.scalar(select(SupplierOrder.id).where(SupplierOrder.shop_order_id == conversion.order_id))
    if sent is not None:
        return result(SENT_ALREADY)
    held = conversion.order_id in send_holds.held_since(session, [conversion.order_id])
    if send_paid:
        return result(LOCK_AND_SEND, lift=held)
    if held:
        return result(STAYS_HELD)
    if session.get(ShopOrder, conversion.order_id) is not None:
        # The records had this order before the backfill: it reached the system through the
        # normal path, so nobody placed it at the supplier by hand, and a recovery backfill
        # must not stop it from being sent.
        return result(ON_ITS_WAY)
    return result(LOCK_AND_HOLD, hold=True)


def _paid_and_waiting_for_a_map(session: Session, conversion: Conversion, status: str) -> bool:
    """A paid order the records never had, whose lines all match nothing yet: it will wait for a product map."""
    return (status == READY_TO_SEND and not conversion.has_supplier_lines and bool(conversion.unmatched)
            and not _had_supplier_line(session, conversion.order_id))


def _had_supplier_line(session: Session, order_id: int) -> bool:
    """Did ingest ever see this order with a supplier line? (shared/orders/intake.py keeps it.)"""
    seen = session.get(OrderVersion, order_id)
    return seen is not None and seen.had_supplier_line


def plan_all(database_url: str, orders: Iterator[dict[str, Any]], *, send_paid: bool,
             on_plan: Callable[[OrderPlan | str], None],
             refunds_of: Callable[[Any], Mapping[int, int] | None] = lambda order: None) -> None:
    """`--dry-run`: the plan of each order (or why it would be skipped), nothing written or sent."""
    with session_scope(database_url) as session:
        for order in orders:
            try:
                on_plan(plan(session, order, send_paid=send_paid, refunded=refunds_of(order)))
            except InvalidOrder as exc:
                on_plan(f"order {order.get('id') if isinstance(order, dict) else '?'}: skipped, {exc}")
            session.rollback()  # a dry run leaves nothing behind


def submit_all(intake: OrderIntake, orders: Iterator[dict[str, Any]], summary: Summary,
               on_order: Callable[[], None] = lambda: None, *, send_paid: bool = False) -> Summary:
    """Submit each order as an order.updated event, counting into `summary` (submit_one).

    A broker or shop failure stops the run (raised); `summary` then tells how far it got.
    """
    for order in orders:
        submit_one(intake, order, summary, send_paid=send_paid)
        on_order()
    return summary


def submit_one(intake: OrderIntake, order: dict[str, Any], summary: Summary, *, send_paid: bool = False,
               source: str = "backfill") -> Conversion | None:
    """Submit one order as an order.updated event from `source`, counting into `summary`.

    A paid order not yet sent that the records never saw is held first (or,
    with send_paid, its hold is lifted), in its own committed transaction, so
    supplier_sync never sees the order's messages without the owner's choice.
    `rewix-sync reconcile --apply` brings orders to the shop's state through
    here too, so no path sends what backfill holds. Returns what was
    submitted, None for an order that cannot be read (counted as skipped).
    """
    summary.orders += 1
    try:
        with session_scope(intake.database_url) as session:
            decided = plan(session, order, send_paid=send_paid)
            if decided.hold:
                send_holds.hold(session, decided.order_id,
                                f"paid before the {source} found it; not sent without --send-paid")
                summary.held.append(decided.describe())
            elif decided.lift and send_holds.release(session, decided.order_id):
                summary.released.append(decided.describe())
        conversion = intake.submit(order, "order.updated", source=source)
    except InvalidOrder as exc:
        summary.skipped += 1
        summary.invalid.append(f"order {order.get('id') if isinstance(order, dict) else '?'}: {exc}")
        return None
    if conversion.messages:
        summary.published += len(conversion.messages)
    else:
        summary.skipped += 1
    return conversion


def orders_since(shop: WooCommerceClient, since: datetime) -> tuple[int, Iterator[dict[str, Any]]]:
    """(how many the shop says there are, the orders one by one)."""
    bound = query_bound(since)
    return shop.count_orders_modified_since(bound), shop.iter_orders_modified_since(bound)


def orders_by_id(shop: WooCommerceClient, order_ids: list[int]) -> tuple[int, Iterator[dict[str, Any]]]:
    """The named orders (`--order ID`), as the shop has them now."""
    return len(order_ids), (shop.get_order(order_id) for order_id in order_ids)
