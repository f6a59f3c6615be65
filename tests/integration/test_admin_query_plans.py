"""The operator page's queries reach their rows through indexes, not by scanning every order ever recorded.

With seq scans turned off, PostgreSQL still plans a Seq Scan where no index
can serve a condition: so a plan without one proves the indexes of
migration 0008 still match the queries (a partial index serves only a
condition that implies its predicate, word for word in practice).
"""
from __future__ import annotations

from sqlalchemy import bindparam, create_engine, text

from shared.db import normalise_url
from shared.orders.vocabulary import HOLDING_STATUSES
from shared.reservations import repository
from services.admin.order_filters import OrderFilter


def plan(db: str, sql: str, params: dict, *binds) -> str:
    engine = create_engine(normalise_url(db))
    try:
        with engine.connect() as c:
            c.execute(text("SET LOCAL enable_seqscan = off"))
            rows = c.execute(text("EXPLAIN " + sql).bindparams(*binds), params)
            return "\n".join(r[0] for r in rows)
    finally:
        engine.dispose()


def test_the_attention_filter_reads_its_partial_indexes(db: str) -> None:
    where, params = OrderFilter(attention=True).where()
    for sql in (f"SELECT count(*) FROM shop_orders o WHERE {where}",
                f"SELECT o.id FROM shop_orders o WHERE {where} ORDER BY o.id DESC LIMIT 50"):
        found = plan(db, sql, params)
        assert "Seq Scan" not in found, found
        for index in ("ix_shop_orders_attention", "ix_order_lines_attention", "ix_supplier_orders_attention"):
            assert index in found, found


def test_the_held_lines_are_found_from_the_open_orders(db: str) -> None:
    sql = repository._HELD_LINES + " ORDER BY l.stock_id, l.order_id, l.line_id"
    found = plan(db, sql, {"holding": sorted(map(str, HOLDING_STATUSES))}, bindparam("holding", expanding=True))
    assert "Seq Scan" not in found, found
    assert "ix_shop_orders_status" in found and "supplier_orders_shop_order_id_key" in found, found
