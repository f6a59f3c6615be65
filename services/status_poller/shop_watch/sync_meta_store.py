"""The meta loop's two tables (migration 0017): which orders may have changed, and what their meta says.

`shop_meta_changes` is appended to by triggers whenever a column the sync
status reads changes; `changes` reads the oldest rows and `forget` deletes the
ones handled, by id, so a row appended meanwhile stays for the next pass.
`shop_order_meta` holds, per order, the values the shop was last given
(`settle`), whether a write is under way (`start_writing`: found still set, a
write may have landed without being recorded), and whether the shop no longer
has the order (`gone`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from shared.orders.text import storable

Db = Session | Connection


@dataclass(frozen=True)
class Change:
    id: int
    order_id: int


@dataclass(frozen=True)
class Written:
    """An order's `shop_order_meta` row."""

    sync_status: str
    supplier_order: str
    error: str | None = None  # the shop refused these values
    writing: bool = False
    gone: bool = False


@dataclass(frozen=True)
class Settled:
    """What a write came to: the values the shop now has (or refused, with the reason)."""

    sync_status: str
    supplier_order: str
    error: str | None = None


def changes(db: Db, limit: int) -> list[Change]:
    """The oldest `limit` change rows (one index scan of a table the loop keeps near empty)."""
    rows = db.execute(text("SELECT id, order_id FROM shop_meta_changes ORDER BY id LIMIT :limit"), {"limit": limit})
    return [Change(row.id, row.order_id) for row in rows]


def forget(db: Db, change_ids: Iterable[int]) -> None:
    ids = sorted(set(change_ids))
    if ids:
        db.execute(text("DELETE FROM shop_meta_changes WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": ids})


def written(db: Db, order_ids: Iterable[int]) -> dict[int, Written]:
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    rows = db.execute(text("""
        SELECT order_id, sync_status, supplier_order, error, writing, gone FROM shop_order_meta
        WHERE order_id = ANY(CAST(:ids AS bigint[]))
    """), {"ids": ids})
    return {row.order_id: Written(row.sync_status, row.supplier_order, row.error, row.writing, row.gone)
            for row in rows}


def start_writing(db: Db, order_ids: Iterable[int]) -> None:
    """Mark these orders as being written, before the request (a row is made for an order never written)."""
    ids = sorted(set(order_ids))
    if ids:
        db.execute(text("""
            INSERT INTO shop_order_meta (order_id, writing) SELECT unnest(CAST(:ids AS bigint[])), true
            ON CONFLICT (order_id) DO UPDATE SET writing = true
        """), {"ids": ids})


def settle(db: Db, settled: Mapping[int, Settled]) -> None:
    """Record what each write came to; the orders are no longer being written."""
    ids = sorted(settled)
    if not ids:
        return
    db.execute(text("""
        INSERT INTO shop_order_meta (order_id, sync_status, supplier_order, error, writing, settled_at)
        SELECT r.order_id, r.sync_status, r.supplier_order, r.error, false, now()
        FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:suppliers AS text[]),
                    CAST(:errors AS text[])) AS r(order_id, sync_status, supplier_order, error)
        ON CONFLICT (order_id) DO UPDATE SET sync_status = excluded.sync_status,
            supplier_order = excluded.supplier_order, error = excluded.error, writing = false, settled_at = now()
    """), {
        "ids": ids,
        "statuses": [settled[i].sync_status for i in ids],
        "suppliers": [settled[i].supplier_order for i in ids],
        "errors": [storable(settled[i].error)[:500] if settled[i].error else None for i in ids],
    })


def stop_writing(db: Db, order_ids: Iterable[int]) -> None:
    """The write failed before the shop could act on it: these orders are not being written any more."""
    ids = sorted(set(order_ids))
    if ids:
        db.execute(text("UPDATE shop_order_meta SET writing = false WHERE order_id = ANY(CAST(:ids AS bigint[]))"),
                   {"ids": ids})


def mark_gone(db: Db, order_ids: Iterable[int]) -> None:
    """The shop has no such order: never written again."""
    ids = sorted(set(order_ids))
    if ids:
        db.execute(text("""
            INSERT INTO shop_order_meta (order_id, gone) SELECT unnest(CAST(:ids AS bigint[])), true
            ON CONFLICT (order_id) DO UPDATE SET gone = true, writing = false, settled_at = now()
        """), {"ids": ids})
