"""The reservations' change marker (migration 0009) and the operator page built on it."""
from __future__ import annotations

import time

from sqlalchemy import text

from shared.db import session_scope
from shared.reservations import repository
from services.admin import page_cache, views
from tests.integration.test_admin_views import add_order
from tests.support import wait_until


def marker(db: str) -> int:
    with session_scope(db) as s:
        return repository.change_marker(s)


def test_every_write_to_what_reservations_are_built_from_moves_the_marker(db: str) -> None:
    with session_scope(db) as s:
        add_order(s, 6001, "pending", [(1, 100001, 2)])
    writes = [
        "UPDATE order_lines SET sync_status = 'locked' WHERE order_id = 6001",
        "UPDATE shop_orders SET status = 'on-hold' WHERE id = 6001",
        "INSERT INTO stock_locks (stock_id, needed, locked) VALUES (100001, 2, 2)",
        "UPDATE stock_locks SET locked = 1",
        "INSERT INTO supplier_orders (shop_order_id, key, status, final, cancelled_in_shop) VALUES (6001, '6001', 1, false, false)",
        "DELETE FROM supplier_orders",
        "DELETE FROM stock_locks",
        "DELETE FROM order_lines WHERE order_id = 6001",
        "UPDATE shop_orders SET deleted = true WHERE id = 6001",
        "TRUNCATE order_lines",
    ]
    for write in writes:
        before = marker(db)
        with session_scope(db) as s:
            s.execute(text(write))
        assert marker(db) > before, write
    before = marker(db)
    with session_scope(db) as s:
        views.reservations(s)
        s.execute(text("SELECT count(*) FROM dead_letters"))
    assert marker(db) == before  # reading moves nothing


def test_the_kept_reservations_follow_a_committed_change_at_once(db: str) -> None:
    kept = page_cache.KeptPart(repository.change_marker, lambda s: views.reservations(s), max_age=3600)
    with session_scope(db) as s:
        add_order(s, 6002, "pending", [(1, 100002, 1)])
    with session_scope(db) as s:
        first = kept.get(s)
        assert [r["stock_id"] for r in first] == [100002]
        assert kept.get(s) is first
    with session_scope(db) as s:
        add_order(s, 6003, "on-hold", [(1, 100003, 4)])
    with session_scope(db) as s:
        assert [r["stock_id"] for r in kept.get(s)] == [100002, 100003]
    assert kept.builds == 2


def test_a_committed_change_reaches_the_kept_reservations_through_their_thread(db: str) -> None:
    kept = page_cache.KeptPart(repository.change_marker, lambda s: views.reservations(s),
                               sessions=lambda: session_scope(db))
    try:
        with session_scope(db) as s:
            add_order(s, 6102, "pending", [(1, 100012, 1)])
        with session_scope(db) as s:
            assert [r["stock_id"] for r in kept.get(s)] == [100012]
        with session_scope(db) as s:
            add_order(s, 6103, "on-hold", [(1, 100013, 4)])
        started = time.monotonic()

        def shown() -> bool:
            with session_scope(db) as s:
                return [r["stock_id"] for r in kept.get(s)] == [100012, 100013]

        wait_until(shown, timeout=5, what="the change on the kept reservations")
        # Within the thread's refresh interval and one build, not the page's MAX_AGE.
        assert time.monotonic() - started < page_cache.REFRESH_SECONDS + 1.0
    finally:
        kept.stop()
