"""Loading the reservation snapshot and saving what a convergence made of it.

Changes to a model are serialised across processes by `lock`
(`pg_advisory_xact_lock(stock_id)` until the transaction ends); whoever holds
it loads, decides and saves from rows nobody can change underneath it.
Every function works in the session it is given and commits nothing:
supplier_sync reaches them through its unit of work (the `reservations`
repository of services/supplier_sync/sql_unit_of_work.py), the operator's
tools in their own sessions.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import StockLock
from shared.orders.text import stored_reason
from shared.orders.vocabulary import HOLDING_STATUSES, SETTLED_LINE_STATES
from shared.reservations.model import HeldLine, LineKey, Lock, Snapshot, TrackedLine

# The one definition of a held line (see model.py). NOT EXISTS rather than a LEFT JOIN
# and IS NULL: PostgreSQL then probes supplier_orders' unique key for each open order
# (found by ix_shop_orders_status) instead of scanning every supplier order ever sent.
_HELD_LINES = """
    SELECT l.stock_id, l.order_id, l.line_id, l.product_id, l.variation_id, l.quantity,
           l.sync_status, l.sync_error, o.number, o.status
    FROM order_lines l
    JOIN shop_orders o ON o.id = l.order_id
    WHERE NOT l.removed AND NOT o.deleted AND o.status IN :holding
      AND NOT EXISTS (SELECT 1 FROM supplier_orders s WHERE s.shop_order_id = o.id) AND l.quantity > 0
"""

# Lines of these models whose state may change. Settled lines of orders outside
# the batch are left out, so the cost does not grow with the history of a model.
_TRACKED_LINES = """
    SELECT l.order_id, l.line_id, l.removed, o.status, o.deleted, s.id IS NOT NULL, l.quantity
    FROM order_lines l JOIN shop_orders o ON o.id = l.order_id
    LEFT JOIN supplier_orders s ON s.shop_order_id = o.id
    WHERE l.stock_id IN :ids
      AND (l.sync_status NOT IN :settled OR l.order_id IN :orders)
"""


def lock(session: Session, stock_ids: Iterable[int]) -> None:
    """Serialise changes to these models across processes until the transaction ends.

    The key is the plain stock_id; ascending order means two holders of
    overlapping sets cannot deadlock.
    """
    for stock_id in sorted(set(stock_ids)):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": stock_id})


def load(session: Session, stock_ids: Iterable[int] | None = None, order_ids: Iterable[int] | None = None) -> Snapshot:
    """The held lines and known locks of these models (of all, for None).

    With `order_ids` (a convergence), also the lines of these models whose
    state may change: every unsettled one, and every one of those orders.
    """
    ids = None if stock_ids is None else sorted(set(stock_ids))
    if ids == []:
        return Snapshot({}, {})
    held: dict[int, list[HeldLine]] = {i: [] for i in ids or ()}
    # Plain rows into positional constructors: the operator page loads every held line on each look.
    for stock_id, order_id, line_id, product_id, variation_id, quantity, state, error, number, status in _held_rows(
        session, ids
    ):
        line = HeldLine(order_id, line_id, stock_id, quantity, status, number, product_id, variation_id, state, error)
        if stock_id in held:
            held[stock_id].append(line)
        else:
            held[stock_id] = [line]
    columns = (StockLock.stock_id, StockLock.needed, StockLock.locked, StockLock.available, StockLock.synced_at)
    query = select(*columns) if ids is None else select(*columns).where(StockLock.stock_id.in_(ids))
    locks = {row[0]: Lock(*row) for row in session.execute(query)}
    tracked: tuple[TrackedLine, ...] = ()
    if order_ids is not None and ids:
        tracked = tuple(TrackedLine(*row) for row in _tracked_rows(session, ids, sorted(set(order_ids))))
    return Snapshot({s: tuple(lines) for s, lines in held.items()}, locks, tracked)


def change_marker(session: Session) -> int:
    """A number that moves on with every statement writing what `load` reads (migration 0009's triggers).

    Read before a load: while it has not moved, nothing was written since, but
    by a statement that ran before it was read and committed only after the
    load (the marker moves when the statement runs, not when it commits). So
    whoever keeps a load for as long as the marker stands still also keeps it
    for a short time only.
    """
    return int(session.execute(text("SELECT last_value FROM reservation_changes")).scalar_one())


def held_by_order(session: Session, order_id: int) -> dict[int, int]:
    """stock_id -> units the records hold for this one order (nothing once released, sent or given up)."""
    held: dict[int, int] = {}
    rows = session.execute(
        text(_HELD_LINES + " AND l.order_id = :order_id").bindparams(bindparam("holding", expanding=True)),
        {"holding": sorted(map(str, HOLDING_STATUSES)), "order_id": order_id},
    )
    for row in rows:
        held[row.stock_id] = held.get(row.stock_id, 0) + row.quantity
    return held


def _held_rows(session: Session, ids: list[int] | None) -> Any:
    sql = _HELD_LINES
    params: dict[str, Any] = {"holding": sorted(map(str, HOLDING_STATUSES))}
    binds = [bindparam("holding", expanding=True)]
    if ids is not None:
        sql += " AND l.stock_id IN :ids"
        params["ids"] = ids
        binds.append(bindparam("ids", expanding=True))
    sql += " ORDER BY l.stock_id, l.order_id, l.line_id"
    return session.execute(text(sql).bindparams(*binds), params).all()


def _tracked_rows(session: Session, ids: list[int], orders: list[int]) -> Any:
    return session.execute(
        text(_TRACKED_LINES).bindparams(
            bindparam("ids", expanding=True), bindparam("settled", expanding=True), bindparam("orders", expanding=True)
        ),
        {"ids": ids, "settled": sorted(map(str, SETTLED_LINE_STATES)), "orders": orders or [-1]},
    )


# stock_locks.needed of a model whose supplier state is not known: no reservation needs
# it, so the next convergence sets the model whatever the row said the supplier held.
UNKNOWN_NEEDED = -1


def forget_supplier_state(session: Session, stock_ids: Iterable[int]) -> None:
    """The supplier is about to be changed for these models: what stock_locks says of them is not known.

    Committed on its own before the call (and written again by the convergence
    after a dropshipping order, which takes units out). If the transaction that saves the
    supplier's answer then never commits, the old row might match what is
    needed one day while the supplier holds what the call set: without this,
    the next convergence would find the model in step and leave it wrong.
    """
    ids = sorted(set(stock_ids))
    if not ids:
        return
    stmt = insert(StockLock).values([{"stock_id": i, "needed": UNKNOWN_NEEDED, "locked": 0} for i in ids])
    session.execute(stmt.on_conflict_do_update(index_elements=[StockLock.stock_id], set_={"needed": UNKNOWN_NEEDED}))


def save(
    session: Session,
    *,
    locks: Iterable[Lock] = (),
    lines: Mapping[LineKey, tuple[str, str | None]] | None = None,
) -> None:
    """Store what the supplier answered per model, and the new state of lines.

    locks: stock_id, needed, locked, available after a supplier call.
    lines: (order_id, line_id) -> (state, error); one statement, rows that change only.
    """
    _save_locks(session, list(locks))
    _save_line_states(session, lines or {})


def _save_locks(session: Session, locks: list[Lock]) -> None:
    if not locks:
        return
    now = datetime.now(timezone.utc)
    stmt = insert(StockLock).values(
        [
            {"stock_id": l.stock_id, "needed": l.needed, "locked": l.locked, "available": l.available, "synced_at": now}
            for l in locks
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[StockLock.stock_id],
            set_={k: stmt.excluded[k] for k in ("needed", "locked", "available", "synced_at")},
        )
    )


def _save_line_states(session: Session, states: Mapping[LineKey, tuple[str, str | None]]) -> None:
    if not states:
        return
    keys = sorted(states)
    session.execute(
        text(
            """
            UPDATE order_lines l SET sync_status = v.status, sync_error = v.error, updated_at = now()
            FROM unnest(CAST(:orders AS bigint[]), CAST(:lines AS bigint[]),
                        CAST(:statuses AS text[]), CAST(:errors AS text[])) AS v(order_id, line_id, status, error)
            WHERE l.order_id = v.order_id AND l.line_id = v.line_id
              AND (l.sync_status, l.sync_error) IS DISTINCT FROM (v.status, v.error)
            """
        ),
        {
            "orders": [o for o, _ in keys],
            "lines": [l for _, l in keys],
            "statuses": [str(states[k][0]) for k in keys],
            "errors": [None if states[k][1] is None else stored_reason(states[k][1]) for k in keys],
        },
    )
