"""supplier_sync's own reads and writes in PostgreSQL: order states, paid orders, supplier orders.

Each function works in the session it is given and commits nothing: the unit
of work that owns the session (sql_unit_of_work.py, the `orders` repository)
commits. Recording a message and converging the supplier are separate
units: the latest state is committed first, then each affected stock_id is
locked and its reservation loaded from committed rows
(shared/reservations/repository.py). What a batch changes is decided by the
pure batch_changes.py; here it is read and written.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import OrderLine, SendHold, ShopOrder, SupplierKey, SupplierOrder
from shared.messaging.messages import OrderLineMessage
from shared.orders.text import stored_reason
from shared.orders.vocabulary import READY_TO_SEND, LineState
from services.supplier_sync.batch_changes import Recorded, batch_changes
from services.supplier_sync.lifecycle import FlaggedOrder, RecordedLine, given_up_after_sending
from services.supplier_sync.plan import PaidLine, PaidOrder


def now() -> datetime:
    return datetime.now(timezone.utc)


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
    recorded_lines = {
        (order_id, line_id): RecordedLine(stock_id, quantity, version)
        for order_id, line_id, stock_id, quantity, version in session.execute(
            select(OrderLine.order_id, OrderLine.line_id, OrderLine.stock_id, OrderLine.quantity, OrderLine.version)
            .where(OrderLine.order_id.in_(ids))
        )
    }

    changes = batch_changes(messages, orders, created, recorded_lines)
    _write_orders(session, changes.orders)
    _write_lines(session, changes.lines)
    _mark_removed(session, changes.removals)
    return changes.recorded


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


def flag_cancelled_after_sending(session: Session, order_ids: Iterable[int]) -> list[FlaggedOrder]:
    """Supplier orders whose shop order gave up on them after they were sent: an operator must act on them.

    Flagged (`cancelled_in_shop`, the reason in `last_error`) by the rule of
    lifecycle.given_up_after_sending.
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
    wanted: dict[int, dict[int, int]] = {}
    for order_id, stock_id, units in session.execute(
        select(OrderLine.order_id, OrderLine.stock_id, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id.in_([r[0].shop_order_id for r in rows]), ~OrderLine.removed)
        .group_by(OrderLine.order_id, OrderLine.stock_id)
    ):
        wanted.setdefault(order_id, {})[stock_id] = int(units)
    flagged = []
    for supplier_order, deleted, status in rows:
        reason = given_up_after_sending(
            deleted=deleted,
            status=status,
            sent_as=supplier_order.supplier_order_id or supplier_order.key,
            sent_items=None if supplier_order.items is None else {
                int(stock_id): units for stock_id, units in supplier_order.items.items()},
            wanted=wanted.get(supplier_order.shop_order_id, {}),
        )
        if reason is None:
            continue
        supplier_order.cancelled_in_shop = True
        supplier_order.last_error = reason
        flagged.append(FlaggedOrder(supplier_order.shop_order_id, supplier_order.supplier_order_id, reason))
    return flagged


def orders_in_models(session: Session, order_ids: Iterable[int], stock_ids: Iterable[int]) -> list[tuple[int, int]]:
    """(order_id, stock_id) of every line, held or not, these orders have in these models."""
    orders, models = sorted(set(order_ids)), sorted(set(stock_ids))
    if not orders or not models:
        return []
    return [(order_id, stock_id) for order_id, stock_id in session.execute(
        select(OrderLine.order_id, OrderLine.stock_id)
        .where(OrderLine.stock_id.in_(models), OrderLine.order_id.in_(orders))
    )]


def note_order_sync(session: Session, order_ids: Iterable[int], error: str | None) -> None:
    ids = sorted(set(order_ids))
    if ids:
        session.execute(
            update(ShopOrder).where(ShopOrder.id.in_(ids)).values(last_synced_at=now(), last_error=error and stored_reason(error))
        )
