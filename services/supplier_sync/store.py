"""supplier_sync's reads and writes in PostgreSQL.

Recording a message and converging the supplier are separate transactions:
the latest state is committed first, then each affected stock_id is locked
(`pg_advisory_xact_lock(stock_id)`, always in ascending order so two workers
cannot deadlock) and its total computed from committed rows. Whoever holds
the lock sets the supplier from totals nobody can change underneath it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import OrderLine, ShopOrder, StockLock, SupplierOrder
from shared.messages import OrderLineMessage
from shared import holdings
from services.supplier_sync.lifecycle import HeldLine, StoredState, supersedes


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Recorded:
    applied: bool
    stock_ids: frozenset[int]


def record(session: Session, message: OrderLineMessage) -> Recorded:
    """Store the order state a message carries, if it is not older than what we have."""
    order = session.execute(
        select(ShopOrder).where(ShopOrder.id == message.order_id).with_for_update()
    ).scalar_one_or_none()
    stored = StoredState(order.date_modified_gmt, order.deleted) if order else None
    before = _stock_ids_of(session, message.order_id)
    if not supersedes(message.date_modified_gmt, message.deleted, message.topic, stored):
        return Recorded(False, frozenset())

    if order is None:
        order = ShopOrder(id=message.order_id, status=message.status, supplier_line_ids=[])
        session.add(order)
    if message.deleted:
        order.deleted = True
        order.status = "trash"
    else:
        order.deleted = False
        order.status = message.status
        order.number = message.order_number
        order.date_modified_gmt = message.date_modified_gmt
        order.recipient = message.recipient.model_dump() if message.recipient else None
        order.customer_note = message.customer_note
        order.supplier_line_ids = list(message.supplier_line_ids)
        session.flush()
        _apply_lines(session, message)
    session.flush()
    return Recorded(True, frozenset(before | _stock_ids_of(session, message.order_id)))


def _apply_lines(session: Session, message: OrderLineMessage) -> None:
    version = message.date_modified_gmt
    if message.line is not None:
        line = message.line
        stmt = insert(OrderLine).values(
            order_id=message.order_id,
            line_id=line.line_id,
            product_id=line.product_id,
            variation_id=line.variation_id,
            stock_id=line.stock_id,
            quantity=line.quantity,
            version=version,
            removed=False,
            sync_status="pending",
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[OrderLine.order_id, OrderLine.line_id],
                set_={
                    "product_id": stmt.excluded.product_id,
                    "variation_id": stmt.excluded.variation_id,
                    "stock_id": stmt.excluded.stock_id,
                    "quantity": stmt.excluded.quantity,
                    "version": stmt.excluded.version,
                    "removed": False,
                },
                where=(OrderLine.version.is_(None)) | (OrderLine.version <= stmt.excluded.version),
            )
        )
    # Lines the order no longer has at this state are released.
    session.execute(
        update(OrderLine)
        .where(
            OrderLine.order_id == message.order_id,
            OrderLine.line_id.not_in(message.supplier_line_ids or [-1]),
            (OrderLine.version.is_(None)) | (OrderLine.version <= version),
        )
        .values(removed=True, version=version)
    )


def _stock_ids_of(session: Session, order_id: int) -> set[int]:
    return set(session.scalars(select(OrderLine.stock_id).where(OrderLine.order_id == order_id)))


def held_lines(session: Session, stock_ids: Iterable[int]) -> dict[int, list[HeldLine]]:
    result: dict[int, list[HeldLine]] = {i: [] for i in sorted(set(stock_ids))}
    for row in holdings.held_lines(session, result):
        result[row.stock_id].append(HeldLine(row.order_id, row.line_id, row.quantity))
    return result


def known_locks(session: Session, stock_ids: Iterable[int]) -> dict[int, StockLock]:
    ids = sorted(set(stock_ids))
    if not ids:
        return {}
    return {s.stock_id: s for s in session.scalars(select(StockLock).where(StockLock.stock_id.in_(ids)))}


def save_locks(session: Session, answered: dict[int, tuple[int, int, int | None]]) -> None:
    """answered: stock_id -> (needed, locked, available) after a supplier call."""
    if not answered:
        return
    stmt = insert(StockLock).values(
        [
            {"stock_id": sid, "needed": n, "locked": l, "available": a, "synced_at": now()}
            for sid, (n, l, a) in answered.items()
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[StockLock.stock_id],
            set_={k: stmt.excluded[k] for k in ("needed", "locked", "available", "synced_at")},
        )
    )


def set_line_statuses(session: Session, statuses: dict[tuple[int, int], tuple[str, str | None]]) -> None:
    """(order_id, line_id) -> (sync_status, error)."""
    if not statuses:
        return
    session.execute(
        update(OrderLine),
        [
            {"order_id": o, "line_id": l, "sync_status": status, "sync_error": error}
            for (o, l), (status, error) in statuses.items()
        ],
    )


def lines_of_stock(
    session: Session, stock_ids: Iterable[int], order_ids: Iterable[int]
) -> list[tuple[int, int, bool, str, bool, bool]]:
    """Lines of these stock_ids whose status may change: (order_id, line_id, removed, order status, deleted, sent).

    Settled lines (sent, released) of orders outside the batch are left out, so
    the cost does not grow with the history of a model.
    """
    ids = sorted(set(stock_ids))
    if not ids:
        return []
    orders = sorted(set(order_ids)) or [-1]
    rows = session.execute(
        text(
            """
            SELECT l.order_id, l.line_id, l.removed, o.status, o.deleted, s.id IS NOT NULL
            FROM order_lines l JOIN shop_orders o ON o.id = l.order_id
            LEFT JOIN supplier_orders s ON s.shop_order_id = o.id
            WHERE l.stock_id IN :ids
              AND (l.sync_status NOT IN ('sent', 'released') OR l.order_id IN :orders)
            """
        ).bindparams(bindparam("ids", expanding=True), bindparam("orders", expanding=True)),
        {"ids": ids, "orders": orders},
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


@dataclass(frozen=True)
class SendCandidate:
    order: ShopOrder
    items: dict[int, int]  # stock_id -> quantity
    line_keys: list[tuple[int, int]]


def send_candidates(session: Session, order_ids: Iterable[int]) -> list[SendCandidate]:
    """Paid orders, not yet sent, whose every supplier line is recorded and locked."""
    ids = sorted(set(order_ids))
    if not ids:
        return []
    orders = session.scalars(
        select(ShopOrder)
        .outerjoin(SupplierOrder, SupplierOrder.shop_order_id == ShopOrder.id)
        .where(ShopOrder.id.in_(ids), ShopOrder.status == "processing", ~ShopOrder.deleted, SupplierOrder.id.is_(None))
        .order_by(ShopOrder.id)
    ).all()
    candidates = []
    for order in orders:
        lines = session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id, ~OrderLine.removed)
        ).all()
        if not lines or {l.line_id for l in lines} != set(order.supplier_line_ids):
            continue  # some lines of this state have not arrived yet
        if any(l.version != order.date_modified_gmt or l.sync_status != "locked" for l in lines):
            continue
        items: dict[int, int] = {}
        for l in lines:
            items[l.stock_id] = items.get(l.stock_id, 0) + l.quantity
        candidates.append(SendCandidate(order, items, [(l.order_id, l.line_id) for l in lines]))
    return candidates


def record_supplier_order(session: Session, shop_order_id: int, key: str, supplier_order_id: int | None, status: int) -> None:
    session.execute(
        insert(SupplierOrder)
        .values(
            shop_order_id=shop_order_id,
            key=key,
            supplier_order_id=supplier_order_id,
            status=status,
            next_poll_at=now(),
        )
        .on_conflict_do_nothing(index_elements=[SupplierOrder.shop_order_id])
    )


def flag_cancelled_after_sending(session: Session, order_ids: Iterable[int]) -> list[SupplierOrder]:
    """Supplier orders whose shop order is now released: an operator must act on them."""
    ids = sorted(set(order_ids))
    if not ids:
        return []
    flagged = session.scalars(
        select(SupplierOrder)
        .join(ShopOrder, ShopOrder.id == SupplierOrder.shop_order_id)
        .where(
            SupplierOrder.shop_order_id.in_(ids),
            ~SupplierOrder.cancelled_in_shop,
            ShopOrder.deleted | ShopOrder.status.in_(["cancelled", "refunded", "failed", "trash"]),
        )
    ).all()
    for supplier_order in flagged:
        supplier_order.cancelled_in_shop = True
        supplier_order.last_error = (
            f"the shop order was cancelled after supplier order {supplier_order.supplier_order_id or supplier_order.key}"
            " was sent: cancel it on the supplier's platform"
        )
    return list(flagged)


def note_order_sync(session: Session, order_ids: Iterable[int], error: str | None) -> None:
    ids = sorted(set(order_ids))
    if ids:
        session.execute(
            update(ShopOrder).where(ShopOrder.id.in_(ids)).values(last_synced_at=now(), last_error=error)
        )


def mark_lines(session: Session, keys: Iterable[tuple[int, int]], status: str, error: str | None) -> None:
    set_line_statuses(session, {k: (status, error) for k in keys})
