"""What the supplier must hold, defined once, and the per-model lock around changing it.

Held: lines still in the order, of orders in pending, on-hold or processing,
not deleted, and not yet turned into a supplier order. supplier_sync sets the
growing order to these totals; the operator tables and `reconcile` show and
compare the same totals.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

HOLDING_STATUSES = ("on-hold", "pending", "processing")

_HELD_LINES = """
    SELECT l.stock_id, l.order_id, l.line_id, l.product_id, l.variation_id, l.quantity,
           l.sync_status, l.sync_error, o.number, o.status
    FROM order_lines l
    JOIN shop_orders o ON o.id = l.order_id
    LEFT JOIN supplier_orders s ON s.shop_order_id = o.id
    WHERE NOT l.removed AND NOT o.deleted AND o.status IN :holding
      AND s.id IS NULL AND l.quantity > 0
"""


def held_lines(session: Session, stock_ids: Iterable[int] | None = None) -> Sequence[Any]:
    """Rows of every held line (of these stock_ids only, when given), by stock_id, order, line."""
    sql = _HELD_LINES
    params: dict[str, Any] = {"holding": list(HOLDING_STATUSES)}
    binds = [bindparam("holding", expanding=True)]
    if stock_ids is not None:
        ids = sorted(set(stock_ids))
        if not ids:
            return []
        sql += " AND l.stock_id IN :ids"
        params["ids"] = ids
        binds.append(bindparam("ids", expanding=True))
    sql += " ORDER BY l.stock_id, l.order_id, l.line_id"
    return session.execute(text(sql).bindparams(*binds), params).all()


def lock_stock_ids(session: Session, stock_ids: Iterable[int]) -> None:
    """Serialise changes to these models across processes until the transaction ends.

    The key is the plain stock_id; ascending order means two holders of
    overlapping sets cannot deadlock.
    """
    for stock_id in sorted(set(stock_ids)):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": stock_id})
