"""Benchmark of what status_poller asks of the shop: one verification sweep and an idle catch-up pass.

    python -m bench.shop_load [--orders 10000] [--trashed 20] [--deleted 5] [--edited 20]

Sets up its own PostgreSQL database and RabbitMQ vhost and a shop simulator
(in this process) holding --orders orders that the records say hold units at
the supplier (as supplier_sync records them). Before measuring, a few change
in the shop without any webhook reaching the system: --trashed are trashed,
--deleted deleted for good, --edited edited. Then, on the same data:

  - the verification sweep (services/status_poller/shop_watch/verification.py): 100 ids a
    request (`include=`) asking only `_fields=id,status,date_modified_gmt`, then the
    changed orders whole, 100 a request, and a GET only for an id a listing did not return
  - the same sweep reading every order whole (`include=` without `_fields`), as it did before
  - a naive sweep: one GET /orders/{id} per order, with the same decisions

each counting the REST requests the shop answered, the bytes of their answers'
bodies (what the client read from the shop), the wall time and what it found;
then an idle catch-up pass (nothing changed since the pass before it),
counting its requests. A real WooCommerce 9.2.5 answered a page of 100 whole
orders in 202 KB and the same page with those three fields in 7.4 KB; a
simulated order is a little larger whole (about 2.8 KB) and about the same
size as three fields, so the bytes here are near a real shop's, whole orders
somewhat above them. Each order changed costs its whole body on top of the
versions: the 1 MB holds while a sweep finds a few dozen changes, not
hundreds (the catch-up and the webhooks bring most). The sweep's request budget is set high here so the time
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
from services.status_poller.shop_watch.order_reader import batches, newer_in_the_shop  # noqa: E402
from services.status_poller.shop_watch.shop_statuses import TRASH  # noqa: E402
from services.status_poller.shop_watch.verification import BATCH, VerificationSweep  # noqa: E402
from simulators.shop import start_in_thread  # noqa: E402

CK, CS = "ck_bench", "cs_bench"
TARGET_ORDERS = 10_000
TARGET_REQUESTS = 110
TARGET_BYTES = 1_000_000  # 1 MB
TARGET = "a sweep of 10,000 held orders in <= 110 requests and <= 1 MB read from the shop"
STOCK_ID = 100001


class CountingSession(requests.Session):
    """Counts the REST requests sent to the shop (every one of them passes here) and the bytes of their
    answers' bodies, read here whole (the client's bounded read then finds them read)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.bytes = 0

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.count += 1
        response = super().request(method, url, *args, **kwargs)
        self.bytes += len(response.content)
        return response


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
        decide(shop.find_order(record.order_id), record, intake, found)
    return found


def whole_order_sweep(engine: Engine, shop: WooCommerceClient, intake: OrderIntake) -> dict[str, int]:
    """The sweep as it was before it asked for fields: 100 whole orders a request, a GET for an id missing."""
    found = {"trashed": 0, "deleted": 0, "updated": 0}
    statuses = [*shop.order_statuses(), TRASH]
    for batch in batches(verification_store.orders_to_verify(engine), BATCH):
        orders = {int(o["id"]): o for o in shop.get_orders([r.order_id for r in batch], statuses)}
        for record in batch:
            order = orders.get(record.order_id)
            decide(order if order is not None else shop.find_order(record.order_id), record, intake, found)
    return found


def decide(order: dict[str, Any] | None, record: Any, intake: OrderIntake, found: dict[str, int]) -> None:
    if order is None:
        intake.submit({"id": record.order_id}, "order.deleted", source="verification")
        found["deleted"] += 1
    elif order.get("status") == TRASH:
        intake.submit(order, "order.updated", source="verification")
        found["trashed"] += 1
    elif newer_in_the_shop(order, record.date_modified_gmt):
        intake.submit(order, "order.updated", source="verification")
        found["updated"] += 1


def measured(name: str, shop_url: str, sweep: Any) -> tuple[str, int, int, float, dict[str, int]]:
    """(name, requests, bytes read, seconds, found) of one sweep on a client of its own."""
    session = CountingSession()
    client = WooCommerceClient(shop_url, CK, CS, timeout=30, session=session)
    started = time.monotonic()
    found = sweep(client)
    return name, session.count, session.bytes, time.monotonic() - started, found


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

            def field_sweep(client: WooCommerceClient) -> dict[str, int]:
                done = VerificationSweep(db_url, client, intake, 900, budget=RequestBudget(100_000)).sweep_once()
                return {"trashed": done.trashed, "deleted": done.deleted, "updated": done.updated}

            rows = [
                measured("verification", shop.url, field_sweep),
                measured("whole orders", shop.url, lambda client: whole_order_sweep(engine, client, intake)),
                measured("naive (GET each)", shop.url, lambda client: naive_sweep(engine, client, intake)),
            ]
            print(f"{'sweep':<18}{'orders':>8}{'requests':>10}{'bytes read':>12}{'bytes/order':>13}{'seconds':>9}"
                  "   found")
            print("-" * 96)
            for name, count, read, seconds, what in rows:
                print(f"{name:<18}{args.orders:>8}{count:>10}{read:>12,}{read / args.orders:>13.0f}{seconds:>9.2f}"
                      f"   {what['trashed']} trashed, {what['deleted']} deleted, {what['updated']} newer")
            print("verification: `_fields=id,status,date_modified_gmt` for every held order, the changed ones whole;"
                  "\nwhole orders: the same sweep without `_fields` (as it was); naive: one GET /orders/{id} each;"
                  "\nbytes read: the answers' bodies as the client read them; 1 MB = 1,000,000 bytes")
            (_n, sweep_requests, sweep_bytes, _s, sweep_found) = rows[0]
            (_n, naive_requests, naive_bytes, _s, naive_found) = rows[2]

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
            scaled = f" (run with {args.orders:,} held orders)" if args.orders != TARGET_ORDERS else ""
            targets = [
                (TARGET + scaled,
                 args.orders == TARGET_ORDERS and sweep_requests <= TARGET_REQUESTS and sweep_bytes <= TARGET_BYTES,
                 f"{sweep_requests} requests, {sweep_bytes:,} bytes "
                 f"(naive: {naive_requests} requests, {naive_bytes:,} bytes)"),
                ("the idle pass is 1 request", idle_requests == 1, f"{idle_requests} request(s)"),
                ("the sweep finds every change the naive one finds", sweep_found == expected and naive_found == expected,
                 f"sweep {sweep_found}, naive {naive_found}, made {expected}"),
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
