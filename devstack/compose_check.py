"""The checks scripts/compose-check runs inside the compose network, in the demo image.

    python -m devstack.compose_check completed
    python -m devstack.compose_check place N
    python -m devstack.compose_check converged --replicas N

Each reads the services' settings from the environment (the compose file's
.env), prints what it found, and exits 1 with one line saying what is wrong.

- `completed`: every order the demo feeder paid is `completed` in the shop
  simulator with its tracking in the order meta, and the orders it did not pay
  are not.
- `place N`: N more customers order at once (pending, paid, cancelled, on hold,
  a quantity changed), in the demo's products; returns as soon as the shop has
  them, while their webhooks are still on the way.
- `converged`: waits until the supplier simulator's growing order holds exactly
  what the shop's open orders need, stock_id by stock_id, every paid order is
  at the supplier exactly once under its number, nothing is dead-lettered and
  N supplier_sync replicas consume the queue.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import pika
import requests

from devstack.demo import PRODUCTS, SIZES, product_map_rows, shop_line
from sqlalchemy import text

from shared.db import session_scope
from shared.messaging import topology
from shared.orders.vocabulary import ShopStatus
from shared.settings import Settings, load_settings

# What the supplier must hold for: a paid order only until it is sent.
HOLDING = {ShopStatus.PENDING, ShopStatus.ON_HOLD}
PAID = {ShopStatus.PROCESSING, ShopStatus.COMPLETED}
STOCK_IDS = {(product, variation): stock for product, variation, stock in product_map_rows()}
KINDS = ("pending", "paid", "cancelled", "on-hold", "quantity change", "paid")


class CheckFailed(Exception):
    """What is wrong, in one line."""


def shop_client(settings: Settings) -> Any:
    from shared.clients.shop import WooCommerceClient

    return WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"))


def shop_orders(settings: Settings) -> list[dict[str, Any]]:
    """Every order of the shop simulator (its REST listing, as the services read it)."""
    return list(shop_client(settings).iter_orders_modified_since(datetime(2000, 1, 1, tzinfo=timezone.utc)))


def supplier_state(settings: Settings) -> dict[str, Any]:
    response = requests.get(f"{settings.rewix_api_url}/_control/state", timeout=10)
    response.raise_for_status()
    return response.json()


def supplier_lines(order: dict[str, Any]) -> dict[int, int]:
    """stock_id -> units of the order's lines that are the supplier's (the demo's product map)."""
    needed: Counter[int] = Counter()
    for item in order.get("line_items", []):
        stock = STOCK_IDS.get((int(item["product_id"]), int(item.get("variation_id") or 0)))
        if stock is not None:
            needed[stock] += int(item["quantity"])
    return dict(needed)


def wait_for(what: str, check: Callable[[], str | None], timeout: float, interval: float = 1.0) -> None:
    """Polls `check` (None when satisfied, else what is still wrong) until `timeout`."""
    deadline = time.monotonic() + timeout
    problem: str | None = "not looked at yet"
    while time.monotonic() < deadline:
        try:
            problem = check()
        except (requests.RequestException, OSError, pika.exceptions.AMQPError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            return
        time.sleep(interval)
    raise CheckFailed(f"{what}: not within {timeout:.0f} s: {problem}")


# --- completed ------------------------------------------------------------------------------


def meta(order: dict[str, Any], key: str) -> str | None:
    return next((str(m["value"]) for m in order.get("meta_data", []) if m.get("key") == key), None)


def check_completed(settings: Settings) -> None:
    orders = [o for o in shop_orders(settings) if supplier_lines(o)]
    if not orders:
        raise CheckFailed("the shop simulator has no order with supplier lines: the feeder placed none")
    completed = [o for o in orders if o["status"] == ShopStatus.COMPLETED]
    for order in sorted(orders, key=lambda o: int(o["id"])):
        tracking = meta(order, "rewix_tracking_code")
        shown = f", tracking {tracking} ({meta(order, 'rewix_carrier')}) {meta(order, 'rewix_tracking_url')}" \
            if tracking else ""
        print(f"shop order #{order['number']}: {order['status']}{shown}")
        if order["status"] == ShopStatus.COMPLETED and not tracking:
            raise CheckFailed(f"shop order #{order['number']} is completed without its tracking")
        if order["status"] == ShopStatus.PROCESSING:
            raise CheckFailed(f"shop order #{order['number']} was paid but is not completed")
    if not completed:
        raise CheckFailed("no shop order is completed")
    print(f"ok: {len(completed)} paid orders completed in the shop with their tracking; "
          f"{len(orders) - len(completed)} unpaid or cancelled ones left as they were")


# --- place ---------------------------------------------------------------------------------


def place(settings: Settings, count: int) -> None:
    from simulators.shop.control import ShopControl

    shop = ShopControl(settings.wc_url)
    placed: Counter[str] = Counter()
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        product = index % PRODUCTS
        lines = [shop_line(product, index % len(SIZES), 1 + index % 2)]
        if kind == "paid" and index % 3 == 0:
            lines.append(shop_line((product + 1) % PRODUCTS, (index + 1) % len(SIZES), 1))
        created = shop.create_order(status=ShopStatus.PENDING, lines=lines)
        order_id = int(created["id"])
        if kind == "paid":
            shop.edit_order(order_id, status=ShopStatus.PROCESSING)
        elif kind == "cancelled":
            shop.edit_order(order_id, status=ShopStatus.CANCELLED)
        elif kind == "on-hold":
            shop.edit_order(order_id, status=ShopStatus.ON_HOLD)
        elif kind == "quantity change":
            shop.edit_order(order_id, quantity={int(created["line_items"][0]["id"]): 3})
        placed[kind] += 1
    print(f"ok: placed {count} orders in the shop: " + ", ".join(f"{n} {kind}" for kind, n in placed.items()))


# --- converged -----------------------------------------------------------------------------


def needed_by_open_orders(orders: Iterable[dict[str, Any]], sent: set[str]) -> Counter[int]:
    """What the growing order must hold: pending and on-hold orders, and paid ones not sent yet."""
    needed: Counter[int] = Counter()
    for order in orders:
        if order["status"] in HOLDING or (order["status"] == ShopStatus.PROCESSING and order["number"] not in sent):
            needed.update(supplier_lines(order))
    return needed


def queue_depths(settings: Settings) -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        depths = {}
        for queue in topology.WORK_QUEUES:
            depths[queue.name] = channel.queue_declare(queue.name, passive=True).method.message_count
            depths[queue.dead] = channel.queue_declare(queue.dead, passive=True).method.message_count
        depths["consumers"] = channel.queue_declare(topology.ORDER_LINES.name, passive=True).method.consumer_count
        return depths
    finally:
        connection.close()


def dead_letters(settings: Settings) -> int:
    """Those the operator page already moved from the .dead queues into its table."""
    with session_scope(settings.database_url) as db:
        return int(db.execute(text("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL")).scalar())


def difference(settings: Settings, replicas: int) -> tuple[str | None, str]:
    """(what is still wrong or None, a summary of what was compared)."""
    orders = shop_orders(settings)
    state = supplier_state(settings)
    keys = Counter(str(o["key"]) for o in state["orders"])
    twice = sorted(k for k, n in keys.items() if n > 1)
    if twice:
        return f"sent to the supplier more than once: {twice}", ""
    sent = set(keys)
    needed = needed_by_open_orders(orders, sent)
    locked = Counter({int(s): int(q) for s, q in state["growing_order"]["models"].items() if int(q)})
    paid = [o for o in orders if o["status"] in PAID and supplier_lines(o)]
    summary = (f"{len(needed)} stock_ids: {sum(locked.values())} units locked = {sum(needed.values())} needed "
               f"by {sum(1 for o in orders if o['status'] in HOLDING | {ShopStatus.PROCESSING})} open orders; "
               f"{len(paid)} paid orders each at the supplier once")
    if locked != +needed:
        wrong = sorted(s for s in set(locked) | set(needed) if locked[s] != needed[s])
        return "locked != needed for " + ", ".join(f"{s}: {locked[s]} != {needed[s]}" for s in wrong), summary
    unsent = sorted(o["number"] for o in paid if o["number"] not in sent)
    if unsent:
        return f"paid orders not at the supplier yet: {unsent}", summary
    depths = queue_depths(settings)
    if depths.pop("consumers") != replicas:
        return f"rewix.order_lines has not {replicas} consumers", summary
    busy = {q: n for q, n in depths.items() if n}
    if any(q.endswith(".dead") for q in busy) or dead_letters(settings):
        return f"dead letters: {busy or dead_letters(settings)}", summary
    if busy:
        return f"messages still queued: {busy}", summary
    return None, summary


def converged(settings: Settings, replicas: int, timeout: float) -> None:
    summary = ""

    def check() -> str | None:
        nonlocal summary
        problem, summary = difference(settings, replicas)
        return problem

    wait_for("the growing order to hold what open orders need", check, timeout)
    time.sleep(2)  # a late message would change it: look once more, a moment later
    problem, summary = difference(settings, replicas)
    if problem:
        raise CheckFailed(f"it moved again: {problem}")
    print(f"ok: {summary}; {replicas} supplier_sync replicas consuming, no message queued or dead-lettered")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.compose_check", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("completed")
    placing = commands.add_parser("place")
    placing.add_argument("count", type=int)
    converging = commands.add_parser("converged")
    converging.add_argument("--replicas", type=int, default=1)
    converging.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "completed":
            check_completed(settings)
        elif args.command == "place":
            place(settings, args.count)
        else:
            converged(settings, args.replicas, args.timeout)
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
