"""Benchmark of what status_poller asks of the shop: one verification sweep and an idle catch-up pass.

    python -m bench.shop_load [--orders 10000] [--trashed 20] [--deleted 5] [--edited 20]

Sets up its own PostgreSQL database and RabbitMQ vhost and a shop simulator
(in this process) holding --orders orders that the records say hold units at
the supplier (as supplier_sync records them). Before measuring, a few change
in the shop without any webhook reaching the system: --trashed are trashed,
--deleted deleted for good, --edited edited. Then, on the same data:

  - the verification sweep (services/status_poller/shop_watch/verification.py): 100 ids a
    request (`include=`), a GET only for an id the batch did not return
  - a naive sweep: one GET /orders/{id} per order, with the same decisions

each counting the REST requests the shop answered, the wall time and what it
found; then an idle catch-up pass (nothing changed since the pass before it),
counting its requests. The sweep's request budget is set high here so the time
shows the work; in production REQUESTS_PER_SECOND spaces the requests out.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from bench.common import quiet_scratch  # noqa: E402
from shared.messaging import topology  # noqa: E402
from shared.messaging.amqp import Publisher  # noqa: E402
from shared.db import get_engine, normalise_url  # noqa: E402
from shared.orders.intake import OrderIntake  # noqa: E402
from shared.clients.shop import WooCommerceClient  # noqa: E402
from services.status_poller.shop_watch import verification_store  # noqa: E402
from services.status_poller.budget import RequestBudget  # noqa: E402
from services.status_poller.shop_watch.catchup import ShopCatchUp  # noqa: E402
from services.status_poller.shop_watch.verification import VerificationSweep, _newer  # noqa: E402
from simulators.shop import start_in_thread  # noqa: E402

CK, CS = "ck_bench", "cs_bench"
SWEEP_TARGET = 110
STOCK_ID = 100001


class CountingSession(requests.Session):
    """Counts the REST requests sent to the shop (every one of them passes here)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.count += 1
        return super().request(method, url, *args, **kwargs)


def seed(shop: Any, engine: Engine, orders: int) -> list[dict[str, Any]]:
    """Orders in the shop, and the records supplier_sync would have of them (one held line each)."""
    created = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    line = {"product_id": 2101, "variation_id": 0, "quantity": 1, "sku": "BENCH-1", "name": "Bench", "price": "10.00"}
    made = [shop.state.create_order(status="on-hold", lines=[line], date_created_gmt=created) for _ in range(orders)]
    with engine.begin() as c:
        c.execute(text("INSERT INTO product_map (wc_product_id, wc_variation_id, stock_id) VALUES (2101, 0, :s)"),
                  {"s": STOCK_ID})
        c.execute(text("INSERT INTO order_versions (order_id, had_supplier_line)"
                       " SELECT unnest(CAST(:ids AS bigint[])), true"),
                  {"ids": [o["id"] for o in made]})
        c.execute(
            text("INSERT INTO shop_orders (id, number, status, date_modified_gmt, deleted, customer_note, supplier_line_ids)"
                 " SELECT id, id::text, 'on-hold', :modified, false, '', '[]' FROM unnest(CAST(:ids AS bigint[])) AS id"),
            {"ids": [o["id"] for o in made], "modified": created},
        )
        c.execute(
            text("INSERT INTO order_lines (order_id, line_id, product_id, variation_id, stock_id, quantity, version,"
                 " removed, sync_status) SELECT id, id * 10, 2101, 0, :s, 1, :modified, false, 'locked'"
                 " FROM unnest(CAST(:ids AS bigint[])) AS id"),
            {"ids": [o["id"] for o in made], "modified": created, "s": STOCK_ID},
        )
    return made


def naive_sweep(engine: Engine, shop: WooCommerceClient, intake: OrderIntake) -> dict[str, int]:
    """One GET per held order, the same decisions as the sweep."""
    found = {"trashed": 0, "deleted": 0, "updated": 0}
    for record in verification_store.orders_to_verify(engine):
        order = shop.find_order(record.order_id)
        if order is None:
            intake.submit({"id": record.order_id}, "order.deleted", source="verification")
            found["deleted"] += 1
        elif order.get("status") == "trash":
            intake.submit(order, "order.updated", source="verification")
            found["trashed"] += 1
        elif _newer(order, record.date_modified_gmt):
            intake.submit(order, "order.updated", source="verification")
            found["updated"] += 1
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shop_load", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000, help="orders the records hold")
    parser.add_argument("--trashed", type=int, default=20, help="of them, trashed in the shop without a webhook")
    parser.add_argument("--deleted", type=int, default=5, help="of them, deleted for good (no webhook)")
    parser.add_argument("--edited", type=int, default=20, help="of them, edited without a webhook")
    args = parser.parse_args(argv)
    with quiet_scratch("bench_shop") as (db_url, amqp_url):
        shop = start_in_thread(consumer_key=CK, consumer_secret=CS)
        shop.webhooks.configure(enabled=False)
        engine = create_engine(normalise_url(db_url))
        publisher = Publisher(amqp_url)
        try:
            import pika
            connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
            topology.declare(connection.channel())
            connection.close()
            intake = OrderIntake(db_url, publisher)

            t0 = time.monotonic()
            made = seed(shop, engine, args.orders)
            ids = [o["id"] for o in made]
            step = max(1, len(ids) // (args.trashed + args.deleted + args.edited + 1))
            chosen = ids[::step]
            trashed = chosen[:args.trashed]
            deleted = chosen[args.trashed:args.trashed + args.deleted]
            edited = chosen[args.trashed + args.deleted:args.trashed + args.deleted + args.edited]
            for order_id in trashed:
                shop.state.trash(order_id)
            for order_id in deleted:
                shop.state.delete(order_id)
            for order_id in edited:
                shop.state.admin_edit(order_id, {"customer_note": "changed without a webhook"})
            print(f"setup: {args.orders} held orders in the shop and the records in {time.monotonic() - t0:.1f} s; "
                  f"changed without a webhook: {len(trashed)} trashed, {len(deleted)} deleted, {len(edited)} edited\n")

            rows = []
            session = CountingSession()
            client = WooCommerceClient(shop.url, CK, CS, timeout=30, session=session)
            sweep = VerificationSweep(db_url, client, intake, 900, budget=RequestBudget(100_000))
            started = time.monotonic()
            done = sweep.sweep_once()
            rows.append(("verification", session.count, time.monotonic() - started,
                         {"trashed": done.trashed, "deleted": done.deleted, "updated": done.updated}))
            sweep_requests = session.count

            naive_session = CountingSession()
            naive_client = WooCommerceClient(shop.url, CK, CS, timeout=30, session=naive_session)
            started = time.monotonic()
            found = naive_sweep(engine, naive_client, intake)
            rows.append(("naive (GET each)", naive_session.count, time.monotonic() - started, found))

            print(f"{'sweep':<18}{'orders':>8}{'requests':>10}{'seconds':>9}   found")
            print("-" * 72)
            for name, count, seconds, what in rows:
                print(f"{name:<18}{args.orders:>8}{count:>10}{seconds:>9.2f}   "
                      f"{what['trashed']} trashed, {what['deleted']} deleted, {what['updated']} newer")

            # The idle catch-up pass: a first pass reads what changed, the next finds nothing new.
            catch_session = CountingSession()
            catch_client = WooCommerceClient(shop.url, CK, CS, timeout=30, session=catch_session)
            catchup = ShopCatchUp(db_url, catch_client, intake, 300,
                                  go_live_at=datetime.now(timezone.utc) - timedelta(hours=3))
            first = catchup.run_once()
            first_requests = catch_session.count
            catch_session.count = 0
            started = time.monotonic()
            idle = catchup.run_once()
            idle_requests, idle_seconds = catch_session.count, time.monotonic() - started
            print(f"\ncatch-up: first pass read {first.seen} orders in {first_requests} requests "
                  f"(the status list included); idle pass: {idle_requests} request(s), {idle_seconds * 1000:.0f} ms, "
                  f"{idle.seen} re-read within the overlap, watermark unchanged: {idle.watermark == first.watermark}")
            print("the requests are counted at the client: every REST request the shop answered\n")

            expected = {"trashed": len(trashed), "deleted": len(deleted), "updated": len(edited)}
            targets = [
                ("≤ 110 requests for the sweep", sweep_requests <= SWEEP_TARGET,
                 f"{sweep_requests} requests (naive: {naive_session.count})"),
                ("the idle pass is 1 request", idle_requests == 1, f"{idle_requests} request(s)"),
                ("the sweep finds every change the naive one finds", rows[0][3] == expected and found == expected,
                 f"sweep {rows[0][3]}, naive {found}, made {expected}"),
            ]
            for name, passed, shown in targets:
                print(f"{'PASS' if passed else 'FAIL'}  {name}: {shown}")
        finally:
            publisher.close()
            shop.stop()
            engine.dispose()
            get_engine(db_url).dispose()
            get_engine.cache_clear()
    return 0 if all(passed for _name, passed, _shown in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
