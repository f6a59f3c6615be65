"""`python -m bench.admin`: the operator page and `rewix-sync orders` with 50,000 orders in the database.

A scratch database gets 50,000 shop orders with two supplier lines each (a
year of a shop: nearly all completed and sent, a few hundred open, holding,
short or dead-lettered) and the page is served by `rewix-sync web` as in
production (gunicorn, its own process). Measured, each the median of RUNS:

- the page's first page (`GET /`: health panel, reservations, the newest 50
  orders, dead letters);
- the first page on a busy shop: a thread moves the reservations' change
  marker every 50 ms, as every write to what the table is built from does
  (migration 0009), so the page's own thread builds the table again every
  refresh interval; its builds are counted and timed from the page's /metrics;
- a filtered page (`GET /?attention=1`: the orders that need attention);
- `rewix-sync orders --limit 50` (the command's work in this process, without
  the interpreter's start);

next to the baseline of the same run: a plain `SELECT` of 50 rows
(`SELECT * FROM shop_orders ORDER BY id DESC LIMIT 50`) as a request would
run it, on a new connection to PostgreSQL, rows fetched.

Target (as the issue states it): first page under 300 ms on this machine's
two cores, within 5 × the plain query.
"""
from __future__ import annotations

import argparse
import threading
import re
import statistics
import time
from collections.abc import Callable

import psycopg2
import requests
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from services.admin import page_cache
from bench.common import Service, install_cleanup, log_directory, scratch_database, scratch_vhost, service_env
from shared.db import normalise_url

ORDERS = 50_000
OPEN_ORDERS = 300  # the newest orders are still open: what the reservations table shows
RUNS = 21
WARM_UP = 3
TOKEN = "bench-admin-token-0123456789abcdefghijkl"
TARGET = "first page under 300 ms on this machine's two cores, within 5 × the plain query"
TARGET_SECONDS = 0.300
TARGET_RATIO = 5.0


def seed(database_url: str, orders: int) -> None:
    """`orders` shop orders, two lines each; all but the newest OPEN_ORDERS completed (sent) or cancelled."""
    first_open = orders - OPEN_ORDERS + 1
    engine = create_engine(normalise_url(database_url))
    with engine.begin() as c:
        c.execute(text("""
            INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids,
                                     last_synced_at, updated_at, last_error)
            SELECT g, g::text,
                   CASE WHEN g >= :first_open THEN (ARRAY['pending', 'on-hold', 'processing'])[1 + g % 3]
                        WHEN g % 40 = 0 THEN 'cancelled' ELSE 'completed' END,
                   false, '', '[1, 2]', now() - (:orders - g) * interval '10 minutes',
                   now() - (:orders - g) * interval '10 minutes',
                   CASE WHEN g % 997 = 0 THEN 'shop note failed: HTTP 500' END
            FROM generate_series(1, :orders) g
        """), {"orders": orders, "first_open": first_open})
        c.execute(text("""
            INSERT INTO order_lines (order_id, line_id, product_id, variation_id, stock_id, quantity, removed,
                                     sync_status, sync_error)
            SELECT g, l, 2000 + (g * 7 + l) % 900, 0, 100000 + (g * 7 + l) % 900, 1 + (g + l) % 3, false,
                   CASE WHEN g >= :first_open AND g % 17 = 0 THEN 'short'
                        WHEN g >= :first_open THEN 'locked'
                        WHEN g % 40 = 0 THEN 'released'
                        WHEN g % 1499 = 0 THEN 'dead_lettered'
                        ELSE 'sent' END,
                   CASE WHEN g % 1499 = 0 AND g < :first_open THEN 'supplier: HTTP 404: no such model' END
            FROM generate_series(1, :orders) g, generate_series(1, 2) l
        """), {"orders": orders, "first_open": first_open})
        c.execute(text("""
            INSERT INTO supplier_orders (shop_order_id, key, supplier_order_id, status, final, cancelled_in_shop,
                                         sent_at, next_poll_at)
            SELECT g, g::text, 1000000 + g, CASE WHEN g % 1201 = 0 THEN 2001 ELSE 3 END, true, false,
                   now() - (:orders - g) * interval '10 minutes', now()
            FROM generate_series(1, :orders) g
            WHERE g < :first_open AND g % 40 <> 0
        """), {"orders": orders, "first_open": first_open})
        c.execute(text("""
            INSERT INTO stock_locks (stock_id, needed, locked, available, synced_at)
            SELECT l.stock_id, sum(l.quantity), sum(l.quantity), 100, now()
            FROM order_lines l WHERE l.order_id >= :first_open GROUP BY l.stock_id
        """), {"first_open": first_open})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def median_of(action: Callable[[], None], runs: int = RUNS, warm_up: int = WARM_UP) -> float:
    for _ in range(warm_up):
        action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def plain_select(database_url: str) -> Callable[[], None]:
    dsn = normalise_url(database_url).replace("postgresql+psycopg2://", "postgresql://")

    def select() -> None:
        connection = psycopg2.connect(dsn)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM shop_orders ORDER BY id DESC LIMIT 50")
                assert len(cursor.fetchall()) == 50
        finally:
            connection.close()

    return select


def page_fetch(url: str, expect: str) -> Callable[[], None]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def fetch() -> None:
        answer = session.get(url, timeout=30)
        assert answer.status_code == 200, answer.status_code
        assert expect in answer.text, f"{expect!r} not on the page"

    return fetch


WRITE_EVERY_SECONDS = 0.05
BUSY_SECONDS = 4.0  # several refresh intervals of the page's thread


def page_on_a_busy_shop(database_url: str, fetch: Callable[[], None]) -> float:
    """Median time of `fetch`, back to back for BUSY_SECONDS, while writes keep moving the change marker.

    A thread moves the reservations' change marker every WRITE_EVERY_SECONDS,
    as any write to what the table is built from does, so the page's thread
    builds the table again every refresh interval, next to the requests
    measured: a shop whose orders keep changing.
    """
    engine = create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT")
    done = threading.Event()

    def write() -> None:
        with engine.connect() as c:
            while not done.wait(WRITE_EVERY_SECONDS):
                c.execute(text("SELECT nextval('reservation_changes')"))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    times = []
    try:
        deadline = time.monotonic() + BUSY_SECONDS
        while time.monotonic() < deadline:
            started = time.perf_counter()
            fetch()
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        done.set()
        writer.join()
        engine.dispose()


def background_builds(base: str) -> tuple[int, float]:
    """How often the page's thread built the reservations table, and its mean time (from the page's /metrics)."""
    text_ = requests.get(base + "/metrics", timeout=10).text
    values = dict(re.findall(r"^rewix_admin_reservations_build_seconds_(count|sum) ([0-9.e+-]+)$", text_, re.M))
    count = int(float(values.get("count", 0)))
    return count, float(values.get("sum", 0)) / count if count else 0.0


def orders_command(database_url: str) -> Callable[[], None]:
    from services.admin.cli import main

    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "WC_URL": "https://shop.example.com"}

    def run() -> None:
        result = runner.invoke(main, ["orders", "--limit", "50"], env=env, catch_exceptions=False)
        assert result.exit_code == 0 and f"#{ORDERS}" in result.output

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=ORDERS)
    args = parser.parse_args()
    install_cleanup()
    logs = log_directory("bench-admin")
    with scratch_database("bench_admin") as database_url, scratch_vhost("bench_admin") as amqp_url:
        started = time.monotonic()
        seed(database_url, args.orders)
        print(f"seeded {args.orders:,} orders ({2 * args.orders:,} lines) in {time.monotonic() - started:.1f} s")
        env = service_env(DATABASE_URL=database_url, AMQP_URL=amqp_url, ADMIN_TOKEN=TOKEN, ADMIN_PORT="0",
                          WC_URL="https://shop.example.com", INGEST_URL="http://127.0.0.1:1", LOG_LEVEL="WARNING")
        web = Service("admin-web", "services.admin.cli", env, logs, args=["web", "--host", "127.0.0.1"])
        try:
            base = web.wait_for_output(lambda line: (m := re.search(r"http://[\d.]+:\d+", line)) and m.group(0),
                                       timeout=30)
            plain = median_of(plain_select(database_url))
            first = median_of(page_fetch(base + "/", f"page 1 of {-(-args.orders // 50):,}"))
            changed = page_on_a_busy_shop(database_url, page_fetch(base + "/", "page 1 of"))
            builds, build_mean = background_builds(base)
            filtered = median_of(page_fetch(base + "/?attention=1", "orders matching"))
            command = median_of(orders_command(database_url))
        finally:
            web.stop()

    print(f"orders in the database:         {args.orders:,}")
    print(f"baseline, plain SELECT 50 rows: {plain * 1000:8.1f} ms  (new connection, rows fetched; median of {RUNS})")
    print(f"page, first page:               {first * 1000:8.1f} ms  ({first / plain:.1f} × the plain query)")
    print(f"page, first page, busy shop:    {changed * 1000:8.1f} ms  ({changed / plain:.1f} × the plain query; "
          f"a write every {WRITE_EVERY_SECONDS * 1000:.0f} ms)")
    print(f"reservations table builds:      {build_mean * 1000:8.1f} ms mean, {builds} builds  (by the page's own "
          f"thread, within {page_cache.REFRESH_SECONDS:g} s of a change; a page load takes the last one built)")
    print(f"page, filtered (attention):     {filtered * 1000:8.1f} ms  ({filtered / plain:.1f} × the plain query)")
    print(f"rewix-sync orders --limit 50:   {command * 1000:8.1f} ms  ({command / plain:.1f} × the plain query; "
          "in-process)")
    print(f"target: {TARGET}")
    met = first < TARGET_SECONDS and first <= TARGET_RATIO * plain
    print(f"{'PASS' if met else 'FAIL'}: first page {first * 1000:.1f} ms "
          f"({'under' if first < TARGET_SECONDS else 'NOT under'} 300 ms), "
          f"{first / plain:.1f} × the plain query ({'within' if first <= TARGET_RATIO * plain else 'NOT within'} 5 ×)")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
