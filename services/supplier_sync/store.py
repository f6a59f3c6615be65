"""supplier_sync's own reads and writes in PostgreSQL: order states, paid orders, supplier orders.

Recording a message and converging the supplier are separate transactions:
the latest state is committed first, then each affected stock_id is locked
and its reservation loaded from committed rows (shared/reservations/repository.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import OrderLine, SendHold, ShopOrder, SupplierKey, SupplierOrder
from shared.failures import retry
from shared.messaging.messages import OrderLineMessage
from shared.orders.text import storable, storable_json, stored_reason
from shared.orders.vocabulary import GIVEN_UP_STATUSES, READY_TO_SEND, LineState, ShopStatus
from services.supplier_sync.lifecycle import RecordedLine, StoredState, contradicts, supersedes
from services.supplier_sync.plan import PaidLine, PaidOrder


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Recorded:
    applied: list[bool]  # per message: did it carry the order's latest state?
    stock_ids: frozenset[int]  # every model whose total may have changed
    order_ids: frozenset[int]  # orders whose state changed
    # Position of each message the database refused, and why (services/supplier_sync/recording.py).
    refused: Mapping[int, retry.DeadLetter] = field(default_factory=dict)
    # Positions of messages not recorded because they contradict the recorded state of the same
    # date (lifecycle.contradicts): the shop must be asked for the order as it is now.
    ask_shop: frozenset[int] = frozenset()

    @classmethod
    def merge(
        cls, count: int, parts: Iterable[tuple[list[int], "Recorded"]], refused: Mapping[int, retry.DeadLetter]
    ) -> "Recorded":
        """One Recorded for `count` messages from the parts recorded apart (their positions, their Recorded)."""
        applied = [False] * count
        stock_ids: set[int] = set()
        order_ids: set[int] = set()
        ask_shop: set[int] = set()
        for positions, part in parts:
            for position, was_applied in zip(positions, part.applied):
                applied[position] = was_applied
            stock_ids |= part.stock_ids
            order_ids |= part.order_ids
            ask_shop |= {positions[p] for p in part.ask_shop}
        return cls(applied, frozenset(stock_ids), frozenset(order_ids), dict(refused), frozenset(ask_shop))


_ORDER_COLUMNS = [c.key for c in ShopOrder.__table__.columns if c.key not in ("updated_at",)]


def record_batch(session: Session, messages: Sequence[OrderLineMessage]) -> Recorded:
    """Store the order states a batch carries, each only if not older than what we have.

    A handful of statements per batch, whatever its size. The batch's orders
    are locked in ascending id order, so two workers whose batches share
    orders wait for each other instead of deadlocking.
    """
    if not messages:
        return Recorded([], frozenset(), frozenset())
    ids = sorted({m.order_id for m in messages})
    # A row for every order first, so that there is something to lock.
    created = set(
        session.scalars(
            insert(ShopOrder)
            .values([{"id": i, "status": "", "supplier_line_ids": []} for i in ids])
            .on_conflict_do_nothing(index_elements=[ShopOrder.id])
            .returning(ShopOrder.id)
        )
    )
    orders = {
        row["id"]: dict(row)
        for row in session.execute(
            select(*(ShopOrder.__table__.c[k] for k in _ORDER_COLUMNS))
            .where(ShopOrder.id.in_(ids))
            .order_by(ShopOrder.id)
            .with_for_update()
        ).mappings()
    }
    recorded_lines: dict[tuple[int, int], RecordedLine] = {}
    before: dict[int, set[int]] = {i: set() for i in ids}
    for order_id, line_id, stock_id, quantity, version in session.execute(
        select(OrderLine.order_id, OrderLine.line_id, OrderLine.stock_id, OrderLine.quantity, OrderLine.version)
        .where(OrderLine.order_id.in_(ids))
    ):
        before[order_id].add(stock_id)
        recorded_lines[(order_id, line_id)] = RecordedLine(stock_id, quantity, version)

    applied: list[bool] = []
    ask_shop: set[int] = set()
    changed: set[int] = set()
    lines: dict[tuple[int, int], dict[str, Any]] = {}
    removals: dict[int, tuple[datetime, list[int]]] = {}
    for position, message in enumerate(messages):
        order = orders[message.order_id]
        stored = None if message.order_id in created and message.order_id not in changed else StoredState(
            order["date_modified_gmt"], order["deleted"]
        )
        if not supersedes(message.date_modified_gmt, message.deleted, message.topic, stored):
            applied.append(False)
            continue
        if stored is not None and not message.deleted and message.source != "confirmation" and _contradicts(
            message, order, recorded_lines
        ):
            # The shop's own answer (a confirmation) is the state of that date; anything else is asked again.
            applied.append(False)
            ask_shop.add(position)
            continue
        applied.append(True)
        changed.add(message.order_id)
        if message.deleted:
            order.update(deleted=True, status=str(ShopStatus.TRASH))
            continue
        order.update(order_state(message, order))
        version = message.date_modified_gmt
        if message.line is not None:
            key = (message.order_id, message.line.line_id)
            if key not in lines or lines[key]["version"] <= version:
                lines[key] = {"order_id": key[0], **message.line.model_dump(), "version": version}
                recorded_lines[key] = RecordedLine(message.line.stock_id, message.line.quantity, version)
        # Only the head knows every line of its state, so only it releases the others.
        if message.head and (message.order_id not in removals or removals[message.order_id][0] <= version):
            removals[message.order_id] = (version, list(message.supplier_line_ids))

    _write_orders(session, [orders[i] for i in sorted(changed)])
    _write_lines(session, list(lines.values()))
    _mark_removed(session, removals)
    stock_ids = set().union(*(before[i] for i in changed)) | {l["stock_id"] for l in lines.values()}
    return Recorded(applied, frozenset(stock_ids), frozenset(changed), ask_shop=frozenset(ask_shop))


def _contradicts(message: OrderLineMessage, order: dict[str, Any],
                 recorded_lines: Mapping[tuple[int, int], RecordedLine]) -> bool:
    """Does the message claim the recorded date of its order with another state? (lifecycle.contradicts)"""
    line = message.line
    return contradicts(
        date=message.date_modified_gmt,
        status=message.status,
        line=(line.stock_id, line.quantity) if line is not None else None,
        line_ids=message.supplier_line_ids if message.head else None,
        stored_date=order["date_modified_gmt"],
        stored_status=order["status"],
        stored_line=recorded_lines.get((message.order_id, line.line_id)) if line is not None else None,
        stored_line_ids=order["supplier_line_ids"] or (),
    )


def order_state(message: OrderLineMessage, stored: dict[str, Any]) -> dict[str, Any]:
    """The shop_orders columns a (superseding, not deleted) message sets over the `stored` row.

    Every message of an event carries its status, number and date; only its
    head carries the recipient, the note and the line ids. A line of a newer
    state arriving before its head leaves the line ids empty (not known for
    that state yet), so the paid order is not sent until the head is recorded
    (services/supplier_sync/plan.py, orders_to_send), whatever part of an
    event reached the broker (ingest may have answered 503 half-way).
    """
    # ingest never publishes a NUL, but a message put on the queue by other means may hold one.
    state: dict[str, Any] = dict(
        deleted=False, status=storable(message.status), number=storable(message.order_number),
        date_modified_gmt=message.date_modified_gmt,
    )
    if message.head:
        state.update(
            recipient=storable_json(message.recipient.model_dump()) if message.recipient else None,
            customer_note=storable(message.customer_note),
            supplier_line_ids=list(message.supplier_line_ids),
        )
    elif stored.get("date_modified_gmt") != message.date_modified_gmt:
        state.update(supplier_line_ids=[])
    return state


def _write_orders(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = insert(ShopOrder).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ShopOrder.id],
            set_={k: stmt.excluded[k] for k in _ORDER_COLUMNS if k != "id"} | {"updated_at": now()},
        )
    )


def _write_lines(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = insert(OrderLine).values([{**r, "removed": False, "sync_status": str(LineState.PENDING)} for r in rows])
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[OrderLine.order_id, OrderLine.line_id],
            set_={
                k: stmt.excluded[k] for k in ("product_id", "variation_id", "stock_id", "quantity", "version")
            }
            | {"removed": False},
            # A line never goes back to an older state of its order.
            where=(OrderLine.version.is_(None)) | (OrderLine.version <= stmt.excluded.version),
        )
    )


def _mark_removed(session: Session, removals: dict[int, tuple[datetime, list[int]]]) -> None:
    """Lines an order no longer has at its latest state are released."""
    if not removals:
        return
    orders = sorted(removals)
    session.execute(
        text(
            """
            UPDATE order_lines l SET removed = true, version = r.version
            FROM unnest(CAST(:orders AS bigint[]), CAST(:versions AS timestamptz[]), CAST(:keep AS text[]))
                 AS r(order_id, version, keep)
            WHERE l.order_id = r.order_id
              AND NOT (l.line_id = ANY(CAST(r.keep AS bigint[])))
              AND (l.version IS NULL OR l.version <= r.version)
              AND NOT (l.removed AND l.version = r.version)
            """
        ),
        {
            "orders": orders,
            "versions": [removals[o][0] for o in orders],
            "keep": ["{" + ",".join(map(str, removals[o][1])) + "}" for o in orders],
        },
    )


def paid_orders(session: Session, order_ids: Iterable[int]) -> list[PaidOrder]:
    """These orders that are paid, not deleted, not sent nor held yet, with their lines still in the order."""
    ids = sorted(set(order_ids))
    if not ids:
        return []
    orders = session.scalars(
        select(ShopOrder)
        .outerjoin(SupplierOrder, SupplierOrder.shop_order_id == ShopOrder.id)
        .where(ShopOrder.id.in_(ids), ShopOrder.status == str(READY_TO_SEND), ~ShopOrder.deleted, SupplierOrder.id.is_(None))
        # A hold (shared/orders/send_holds.py) keeps a paid order locked but unsent until the owner lifts it.
        .where(~select(SendHold.order_id).where(SendHold.order_id == ShopOrder.id).exists())
        .order_by(ShopOrder.id)
    ).all()
    lines_of: dict[int, list[PaidLine]] = {order.id: [] for order in orders}
    if lines_of:
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id.in_(lines_of), ~OrderLine.removed)):
            lines_of[line.order_id].append(PaidLine(line.line_id, line.stock_id, line.quantity, line.version, line.sync_status))
    return [
        PaidOrder(
            order_id=order.id,
            number=order.number,
            date_modified_gmt=order.date_modified_gmt,
            supplier_line_ids=tuple(order.supplier_line_ids or ()),
            lines=tuple(lines_of[order.id]),
            recipient=order.recipient,
            customer_note=order.customer_note,
        )
        for order in orders
    ]


def record_supplier_order(session: Session, shop_order_id: int, key: str, supplier_order_id: int | None, status: int,
                          items: Mapping[int, int] | None = None) -> None:
    """The supplier order of a shop order; `items` (stock_id -> units) when it is known what it was sent with."""
    session.execute(
        insert(SupplierOrder)
        .values(
            shop_order_id=shop_order_id,
            key=key,
            supplier_order_id=supplier_order_id,
            status=status,
            next_poll_at=now(),
            items={str(stock_id): units for stock_id, units in sorted(items.items())} if items is not None else None,
        )
        .on_conflict_do_nothing(index_elements=[SupplierOrder.shop_order_id])
    )


def sent_but_not_recorded(session: Session, order_ids: Iterable[int]) -> list[tuple[int, str]]:
    """(order_id, key) of these orders whose POST may have reached the supplier but no supplier order is recorded.

    That is a worker gone between the POST and its commit. A paid order then
    finds its supplier order when it is sent again (sending.py); one that is
    no longer to be sent (cancelled meanwhile, say) is found only by asking.
    """
    ids = sorted(set(order_ids))
    if not ids:
        return []
    rows = session.execute(
        select(SupplierKey.shop_order_id, SupplierKey.key)
        .outerjoin(SupplierOrder, SupplierOrder.shop_order_id == SupplierKey.shop_order_id)
        .where(SupplierKey.shop_order_id.in_(ids), SupplierKey.first_sent_at.is_not(None), SupplierOrder.id.is_(None))
        .order_by(SupplierKey.shop_order_id)
    ).all()
    return [(order_id, key) for order_id, key in rows]


def line_ids(session: Session, order_id: int) -> list[int]:
    """The lines an order has at its latest state."""
    return list(session.scalars(
        select(OrderLine.line_id).where(OrderLine.order_id == order_id, ~OrderLine.removed).order_by(OrderLine.line_id)
    ))


def flag_cancelled_after_sending(session: Session, order_ids: Iterable[int]) -> list[SupplierOrder]:
    """Supplier orders whose shop order gave up on them after they were sent: an operator must act on them.

    Given up: cancelled, refunded, failed or trashed; or changed: wanting other
    units than it was sent with (a partial refund, an edit), so the supplier
    would ship what the customer no longer pays for, or not what was added.
    """
    ids = sorted(set(order_ids))
    if not ids:
        return []
    rows = session.execute(
        select(SupplierOrder, ShopOrder.deleted, ShopOrder.status)
        .join(ShopOrder, ShopOrder.id == SupplierOrder.shop_order_id)
        .where(SupplierOrder.shop_order_id.in_(ids), ~SupplierOrder.cancelled_in_shop)
    ).all()
    if not rows:
        return []
    wanted: dict[tuple[int, int], int] = {}
    for order_id, stock_id, units in session.execute(
        select(OrderLine.order_id, OrderLine.stock_id, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id.in_([r[0].shop_order_id for r in rows]), ~OrderLine.removed)
        .group_by(OrderLine.order_id, OrderLine.stock_id)
    ):
        wanted[(order_id, stock_id)] = int(units)
    flagged = []
    for supplier_order, deleted, status in rows:
        sent_as = supplier_order.supplier_order_id or supplier_order.key
        if deleted or status in GIVEN_UP_STATUSES:
            why = f"the shop order was {'trashed' if deleted else status} after supplier order {sent_as} was sent"
            fix = "cancel it on the supplier's platform"
        else:
            if supplier_order.items is None:
                continue  # sent before what it was sent with was kept: judged by its status only
            sent = {int(stock_id): units for stock_id, units in supplier_order.items.items()}
            changed = {stock_id: wanted.get((supplier_order.shop_order_id, stock_id), 0) - sent.get(stock_id, 0)
                       for stock_id in sorted(set(sent) | {s for o, s in wanted if o == supplier_order.shop_order_id})}
            changed = {stock_id: delta for stock_id, delta in changed.items() if delta}
            if not changed:
                continue
            which = ", ".join(f"{-delta} of stock_id {stock_id} no longer wanted" if delta < 0
                              else f"{delta} more of stock_id {stock_id} wanted" for stock_id, delta in changed.items())
            why = f"the shop order changed after supplier order {sent_as} was sent (refunded or edited): {which}"
            fix = "change or cancel it on the supplier's platform"
        supplier_order.cancelled_in_shop = True
        supplier_order.last_error = f"{why}: {fix}"
        flagged.append(supplier_order)
    return flagged


def note_order_sync(session: Session, order_ids: Iterable[int], error: str | None) -> None:
    ids = sorted(set(order_ids))
    if ids:
        session.execute(
            update(ShopOrder).where(ShopOrder.id.in_(ids)).values(last_synced_at=now(), last_error=error and stored_reason(error))
        )
