"""Benchmark of the status poller: one full polling cycle over many open supplier orders.

    python -m bench.poller [--orders 10000] [--small 1000] [--limit 250] [--budget 200] [--interval 60]

Sets up its own PostgreSQL database and RabbitMQ vhost, starts the supplier
simulator as a process with a rate limit, opens --orders supplier orders in it
(through the dropshipping endpoint, as supplier_sync would) and in the
database, then measures one full polling cycle, first with --small open orders
and then with all of them:

  - the status poller (leases, batched write-back, request budget)
  - a naive poller on the same data: one SELECT and one UPDATE per order, every
    request sent as fast as a thread pool allows, no budget

and prints, for each: supplier requests, 429s received, database queries
(counted by a SQLAlchemy event listener on the poller's engine), wall time and
resident memory (VmRSS) before and after, then its targets as PASS/FAIL.

The defaults keep the supplier's limit below what the naive poller reaches on
a small machine (a few hundred requests per second with a SELECT and an
UPDATE around each), so its 429s show; the interval is long enough for the
budget to poll 10,000 orders in one. Higher figures (--limit 2000 --budget
1500 --interval 10) need a machine that can make 1,000 requests a second.
"""
from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, event, text  # noqa: E402

from bench.common import log_directory, quiet_scratch, start_rewix_simulator  # noqa: E402
from shared.messaging.amqp import Publisher  # noqa: E402
from shared.db import get_engine, normalise_url  # noqa: E402
from shared.failures.errors import TransientError  # noqa: E402
from shared.clients.rewix import CONFIRMED, DropshippingOrder, Recipient, RewixClient  # noqa: E402
from services.status_poller.budget import RequestBudget  # noqa: E402
from services.status_poller.poller import StatusPoller  # noqa: E402
from simulators.rewix.control import SimulatorControl  # noqa: E402

API_KEY, PASSWORD = "bench-key", "bench-password"
MAX_RSS_GROWTH_MB = 16
RECIPIENT = Recipient(name="Bench Customer", address_1="Via Roma 1", postcode="20121", city="Milano", countrycode="IT")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class QueryCounter:
    """Counts every statement an engine sends to PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        with self._lock:
            self.count += 1

    def take(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
            return count


# --- setup ----------------------------------------------------------------------------------------


def open_orders(url: str, engine: Engine, count: int, stock_ids: list[int], changes: int) -> None:
    """`count` orders sent to the supplier and recorded as supplier_sync records them (Booked, announced)."""
    client = RewixClient(url, API_KEY, PASSWORD, timeout=30)
    now = datetime.now(timezone.utc)

    def send(n: int) -> None:
        key = f"B{n:06d}"
        client.send_dropshipping_order(
            DropshippingOrder(key=key, date=now, recipient=RECIPIENT, items={stock_ids[n % len(stock_ids)]: 1})
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(count)))
    control = SimulatorControl(url, timeout=60)
    orders = sorted((o["key"], o["order_id"]) for o in control.state()["orders"])
    shop_rows = [{"id": 10_000_000 + n, "number": key} for n, (key, _sid) in enumerate(orders)]
    with engine.begin() as c:
        c.execute(
            text("INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids)"
                 " VALUES (:id, :number, 'processing', false, '', '[]')"),
            shop_rows,
        )
        c.execute(
            text("INSERT INTO supplier_orders (shop_order_id, key, supplier_order_id, status, final, cancelled_in_shop)"
                 " VALUES (:shop, :key, :sid, 5, false, false)"),
            [{"shop": 10_000_000 + n, "key": key, "sid": sid} for n, (key, sid) in enumerate(orders)],
        )
        # Booked was announced already: a poll that finds Booked again is no change.
        c.execute(text(
            "INSERT INTO supplier_status_history (supplier_order_id, old_status, new_status, observed_at, shop_state)"
            " SELECT id, NULL, 5, now(), 'done' FROM supplier_orders"
        ))
    # A few orders moved on at the supplier: their changes are published and recorded. No applier
    # runs here, so their history rows are made up front, as the applier would make them.
    for _key, sid in orders[: changes]:
        control.set_status(sid, CONFIRMED)
    with engine.begin() as c:
        c.execute(text(
            "INSERT INTO supplier_status_history (supplier_order_id, old_status, new_status, observed_at, shop_state)"
            " SELECT id, 5, :s, now(), 'done' FROM supplier_orders WHERE supplier_order_id = ANY(:ids)"
        ), {"s": CONFIRMED, "ids": [sid for _key, sid in orders[: changes]]})
    client.close()
    control.close()


def reopen(engine: Engine, count: int) -> None:
    """Exactly the first `count` orders open, all due now, none polled yet."""
    with engine.begin() as c:
        c.execute(text(
            "UPDATE supplier_orders SET final = (id > :n), next_poll_at = now(), last_polled_at = NULL"
        ), {"n": count})


def supplier_counters(control: SimulatorControl) -> tuple[int, int]:
    state = control.state()
    return state["requests_total"], state["rejected_429"]


# --- the two pollers --------------------------------------------------------------------------------


class CyclePoller(StatusPoller):
    """The status poller, stopped once every open order has been polled (one full cycle)."""

    def cycle(self, count: int, stop: threading.Event) -> None:
        self._count, self._stop, self._seen = count, stop, set()

    def _settle(self, observation, broker_down, offset):  # type: ignore[no-untyped-def]
        result = super()._settle(observation, broker_down, offset)
        if observation.polled_at is not None:
            self._seen.add(observation.lease.id)
            if len(self._seen) >= self._count:
                self._stop.set()
        return result


def run_status_poller(db_url: str, amqp_url: str, supplier_url: str, count: int, args: argparse.Namespace,
                      counter: QueryCounter) -> dict[str, float]:
    client = RewixClient(supplier_url, API_KEY, PASSWORD, timeout=10)
    publisher = Publisher(amqp_url)
    stop = threading.Event()
    poller = CyclePoller(db_url, client, publisher, interval=args.interval, budget=RequestBudget(args.budget),
                         concurrency=args.concurrency)
    poller.cycle(count, stop)
    counter.take()
    started = time.monotonic()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    # From a state where every order is due, until each has been polled once.
    thread.join(timeout=args.interval * 5 + 60)
    stop.set()
    thread.join()
    seconds = time.monotonic() - started
    queries = counter.take()
    publisher.close()
    client.close()
    stats = poller.stats
    return {"seconds": seconds, "requests": stats.requests, "throttled": stats.throttled, "queries": queries,
            "polled": stats.polled, "changes": stats.changes, "batches": stats.batches}


def run_naive_poller(db_url: str, supplier_url: str, args: argparse.Namespace) -> dict[str, float]:
    """What a cron job does: every open order, one SELECT and one UPDATE each, requests as fast as possible."""
    engine = create_engine(normalise_url(db_url), pool_size=args.concurrency, max_overflow=0)
    counter = QueryCounter(engine)
    client = RewixClient(supplier_url, API_KEY, PASSWORD, timeout=10)
    throttled = requests = 0
    lock = threading.Lock()

    def poll(row_id: int) -> None:
        nonlocal throttled, requests
        with engine.begin() as c:
            row = c.execute(text("SELECT * FROM supplier_orders WHERE id = :id"), {"id": row_id}).mappings().one()
        try:
            status = client.get_order(row["supplier_order_id"])
        except TransientError as exc:
            with lock:
                requests += 1
                throttled += exc.status == 429
            return
        with lock:
            requests += 1
        with engine.begin() as c:
            c.execute(text("UPDATE supplier_orders SET status = :s, last_polled_at = now() WHERE id = :id"),
                      {"s": status.status if status else row["status"], "id": row_id})

    started = time.monotonic()
    with engine.connect() as c:
        ids = [r for (r,) in c.execute(text("SELECT id FROM supplier_orders WHERE NOT final ORDER BY id"))]
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(poll, ids))
    seconds = time.monotonic() - started
    client.close()
    engine.dispose()
    return {"seconds": seconds, "requests": requests, "throttled": throttled, "queries": counter.take(),
            "polled": requests - throttled}


# --- main ---------------------------------------------------------------------------------------------


def measure(name: str, count: int, db_url: str, amqp_url: str, supplier_url: str, engine: Engine,
            control: SimulatorControl, counter: QueryCounter, args: argparse.Namespace) -> dict[str, float]:
    reopen(engine, count)
    control.faults(rate_limit={"per_second": args.limit, "retry_after": 1})  # a full bucket for each run
    gc.collect()
    time.sleep(1.0)
    before_requests, before_429 = supplier_counters(control)
    rss_before = rss_kib()
    if name == "naive":
        result = run_naive_poller(db_url, supplier_url, args)
    else:
        result = run_status_poller(db_url, amqp_url, supplier_url, count, args, counter)
    gc.collect()
    rss_after = rss_kib()
    after_requests, after_429 = supplier_counters(control)
    with engine.connect() as c:
        polled = c.execute(text("SELECT count(*) FROM supplier_orders WHERE last_polled_at IS NOT NULL")).scalar_one()
        moved = c.execute(text("SELECT count(*) FROM supplier_orders WHERE status = :s"), {"s": CONFIRMED}).scalar_one()
    return {**result, "name": name, "open": count, "polled_orders": polled, "confirmed": moved,
            "requests": after_requests - before_requests, "rejected": after_429 - before_429,
            "rss_before": rss_before, "rss_after": rss_after}


def report(runs: list[dict], args: argparse.Namespace) -> list[tuple[str, bool, str]]:
    header = (f"{'poller':<15}{'open':>7}{'polled':>8}{'requests':>10}{'429s':>7}{'db queries':>12}"
              f"{'seconds':>9}{'req/s':>7}{'RSS before':>12}{'RSS after':>11}")
    print(header)
    print("-" * len(header))
    for r in runs:
        print(f"{r['name']:<15}{r['open']:>7}{r['polled_orders']:>8}{r['requests']:>10}{r['rejected']:>7}"
              f"{r['queries']:>12}{r['seconds']:>9.1f}{r['requests'] / r['seconds']:>7.0f}"
              f"{r['rss_before'] / 1024:>10.1f}MB{r['rss_after'] / 1024:>9.1f}MB")
        if r["name"] == "status_poller":
            print(f"{'':<15}  leases: {r['batches']}, changes published then recorded: {r['changes']}"
                  f" (Confirmed on record: {r['confirmed']})")
    print("\npolled: open orders polled at least once; requests and 429s as counted by the supplier simulator;"
          "\ndb queries: statements seen by a SQLAlchemy before_cursor_execute listener on the poller's engine;"
          "\nRSS: VmRSS of this process before and after the cycle\n")
    small, large = (r for r in runs if r["name"] == "status_poller")
    growth = max(r["rss_after"] - r["rss_before"] for r in (small, large)) / 1024
    targets = [
        ("every open order polled in one cycle",
         all(r["polled_orders"] == r["open"] for r in (small, large)),
         f"{small['polled_orders']}/{small['open']}, {large['polled_orders']}/{large['open']}"),
        (f"zero 429s with a budget ({args.budget:g}/s) under the supplier's limit ({args.limit:g}/s)",
         small["rejected"] == 0 and large["rejected"] == 0, f"{small['rejected']} and {large['rejected']}"),
        (f"db queries per cycle independent of the orders ({small['open']:,} vs {large['open']:,})",
         large["queries"] <= small["queries"] + 3, f"{small['queries']} vs {large['queries']}"),
        (f"flat memory: RSS grows less than {MAX_RSS_GROWTH_MB} MB in a cycle",
         growth < MAX_RSS_GROWTH_MB, f"at most {growth:.1f} MB"),
    ]
    for name, passed, shown in targets:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {shown}")
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.poller", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000, help="open supplier orders (the large run)")
    parser.add_argument("--small", type=int, default=1_000, help="open supplier orders in the small run")
    parser.add_argument("--limit", type=float, default=250, help="the supplier's rate limit, requests/s")
    parser.add_argument("--budget", type=float, default=200, help="POLL_REQUESTS_PER_SECOND")
    parser.add_argument("--interval", type=float, default=60.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once (both pollers)")
    parser.add_argument("--changes", type=int, default=50, help="orders whose status moved on at the supplier")
    args = parser.parse_args(argv)
    with quiet_scratch("bench_poller") as (db_url, amqp_url):
        supplier, supplier_url = start_rewix_simulator(log_directory("bench-poller"), API_KEY, PASSWORD)
        control = SimulatorControl(supplier_url, timeout=60)
        setup_engine = create_engine(normalise_url(db_url))
        try:
            t0 = time.monotonic()
            products = args.orders // 3 + 1
            control.seed_catalog(products=products, availability=1000)
            stock_ids = [100000 + i for i in range(3 * products)]
            open_orders(supplier_url, setup_engine, args.orders, stock_ids, min(args.changes, args.small))
            print(f"setup: {args.orders} open supplier orders in the simulator and the database "
                  f"in {time.monotonic() - t0:.1f} s")
            print(f"supplier rate limit {args.limit:g} req/s; poller budget {args.budget:g} req/s, "
                  f"interval {args.interval:g} s, {args.concurrency} requests in flight at most\n")
            counter = QueryCounter(get_engine(db_url))
            runs = [
                measure(name, count, db_url, amqp_url, supplier_url, setup_engine, control, counter, args)
                for name, count in (("status_poller", args.small), ("status_poller", args.orders),
                                    ("naive", args.small), ("naive", args.orders))
            ]
            targets = report(runs, args)
        finally:
            control.close()
            supplier.stop()
            setup_engine.dispose()
            get_engine(db_url).dispose()
            get_engine.cache_clear()
    return 0 if all(passed for _name, passed, _shown in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
