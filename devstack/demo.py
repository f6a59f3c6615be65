"""`rewix-sync demo`: the whole system on this machine, against the bundled simulators.

Starts the supplier and shop simulators and the three services as processes
on a dev stack (devstack/stack.py): a database and a RabbitMQ vhost of its own
(`rewix_demo_` and random digits, or --name), created fresh,
places a realistic stream of orders in the simulated shop (which fires signed
webhooks at ingest), moves the supplier orders from Booked to Dispatched, and
prints the reservations and orders tables. Every process it started is
stopped at the end, and the demo database and vhost are dropped unless --keep.

With --feed-only it only feeds orders and moves statuses, against services
and simulators already running (docker compose's demo profile).
"""
from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import text

from devstack import waiting
from devstack.processes import free_port
from devstack.stack import DevStack
from shared.db import session_scope
from shared.orders.vocabulary import LineState, ShopStatus
from shared.products import own as own_products
from shared.products.mapping import import_product_map

DEMO_NAME = "rewix_demo"
REWIX_KEY, REWIX_PASSWORD = "demo-key", "demo-password"
SHOP_KEY, SHOP_SECRET = "ck_demo", "cs_demo"
# The demo's own shop signs with it; ingest refuses anything shorter than 32 characters.
WEBHOOK_SECRET = secrets.token_hex(24)
PRODUCTS = 4
SIZES = ("S", "M", "L")  # the supplier simulator's three sizes per product
AVAILABILITY = 50
OWN_LINE = {"product_id": 9001, "variation_id": 0, "quantity": 1, "sku": "SHOP-GIFT-WRAP", "name": "Gift wrap",
            "price": "4.90"}
# Supplier statuses after Booked, as a warehouse moves an order on.
STEPS = ((2, "Confirmed"), (3001, "Working on"), (3002, "Ready"), (3, "Dispatched"))
SCENARIOS = ("paid", "mixed", "cancelled", "quantity change", "paid", "pending")


class DemoFailed(Exception):
    """Something did not happen in time; the message says what."""


# --- the catalog and the shop's products --------------------------------------------------


def stock_id(product: int, size: int) -> int:
    """The supplier simulator's seeded ids: 100000 + 3n + size."""
    return 100000 + 3 * product + size


def shop_line(product: int, size: int, quantity: int) -> dict[str, Any]:
    """A shop variation (product 2000+n, variation 3000+3n+size) that is the supplier's model."""
    return {
        "product_id": 2000 + product,
        "variation_id": 3000 + 3 * product + size,
        "quantity": quantity,
        "sku": f"P{1000 + product}-{SIZES[size]}",
        "name": f"Product {1000 + product} - {SIZES[size]}",
        "price": "49.90",
    }


def product_map_rows() -> list[tuple[int, int, int]]:
    return [(2000 + p, 3000 + 3 * p + s, stock_id(p, s)) for p in range(PRODUCTS) for s in range(len(SIZES))]


# --- progress -----------------------------------------------------------------------------


class Progress:
    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:5.1f}s] {message}")


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    """`devstack.waiting.wait_until`, a service still starting counting as "not yet", failing as DemoFailed."""
    try:
        waiting.wait_until(check, timeout, what, interval, ignore=(requests.RequestException, OSError))
    except waiting.TimedOut as exc:
        raise DemoFailed(str(exc)) from None


# --- the stream of orders -----------------------------------------------------------------


@dataclass
class DemoOrder:
    scenario: str
    order_id: int
    lines: dict[int, int] = field(default_factory=dict)  # shop line id -> quantity (supplier lines only)

    @property
    def paid(self) -> bool:
        return self.scenario in ("paid", "mixed", "quantity change")


@dataclass(frozen=True)
class Endpoints:
    rewix_url: str
    shop_url: str
    database_url: str
    shop_key: str = SHOP_KEY
    shop_secret: str = SHOP_SECRET


class Feeder:
    """Places orders in the shop simulator and moves statuses at the supplier simulator."""

    def __init__(self, endpoints: Endpoints, progress: Progress, step_timeout: float = 30.0) -> None:
        from simulators.rewix.control import SimulatorControl
        from simulators.shop.control import ShopControl

        self.endpoints = endpoints
        self.progress = progress
        self.step_timeout = step_timeout
        self.supplier = SimulatorControl(endpoints.rewix_url)
        self.shop = ShopControl(endpoints.shop_url)

    def close(self) -> None:
        self.supplier.close()

    def seed(self) -> None:
        self.supplier.seed_catalog(products=PRODUCTS, availability=AVAILABILITY)
        with session_scope(self.endpoints.database_url) as session:
            count = import_product_map(session, product_map_rows())
            # The gift wrap is the shop's own (`rewix-sync products own`): its orders wait for no product map.
            own_products.add(session, own_products.Mark(sku=OWN_LINE["sku"]))
        self.progress(f"seeded the supplier catalog ({PRODUCTS * len(SIZES)} models, {AVAILABILITY} units each), "
                      f"the product map ({count} shop variations) and the shop's own gift wrap")

    def sync_catalog(self) -> None:
        from shared.clients.rewix import RewixClient
        from services.admin.catalog import sync

        client = RewixClient(self.endpoints.rewix_url, REWIX_KEY, REWIX_PASSWORD)
        try:
            result = sync(self.endpoints.database_url, client)
        finally:
            client.close()
        self.progress(f"rewix-sync catalog sync: {result.models} supplier models stored")

    # -- database look-ups -------------------------------------------------------------------

    def lines_in(self, order: DemoOrder, status: str) -> bool:
        """Every current supplier line of the order is in `status` with the quantity the shop has."""
        with session_scope(self.endpoints.database_url) as session:
            rows = session.execute(
                text("SELECT line_id, quantity, sync_status FROM order_lines WHERE order_id = :o AND NOT removed"),
                {"o": order.order_id},
            ).all()
        return bool(rows) and {r.line_id: r.quantity for r in rows} == order.lines and all(
            r.sync_status == status for r in rows
        )

    def recorded_status(self, order: DemoOrder) -> str | None:
        with session_scope(self.endpoints.database_url) as session:
            return session.execute(
                text("SELECT status FROM shop_orders WHERE id = :o"), {"o": order.order_id}
            ).scalar()

    def supplier_order(self, order: DemoOrder) -> tuple[int | None, int | None]:
        with session_scope(self.endpoints.database_url) as session:
            row = session.execute(
                text("SELECT supplier_order_id, status FROM supplier_orders WHERE shop_order_id = :o"),
                {"o": order.order_id},
            ).first()
        return (row.supplier_order_id, row.status) if row else (None, None)

    # -- the story ------------------------------------------------------------------------

    def create(self, scenario: str, index: int) -> DemoOrder:
        product = index % PRODUCTS
        if scenario == "paid":
            specs = [shop_line(product, 0, 1), shop_line(product, 1, 1)]
        elif scenario == "mixed":
            specs = [shop_line(product, 2, 1), OWN_LINE]
        elif scenario == "quantity change":
            specs = [shop_line(product, 1, 1)]
        else:
            specs = [shop_line(product, index % len(SIZES), 2)]
        created = self.shop.create_order(status=ShopStatus.PENDING, lines=specs)
        order = DemoOrder(scenario, int(created["id"]))
        for item in created["line_items"]:
            if item["product_id"] != OWN_LINE["product_id"]:
                order.lines[int(item["id"])] = int(item["quantity"])
        return order

    def run(self, count: int) -> list[DemoOrder]:
        scenarios = list(itertools.islice(itertools.cycle(SCENARIOS), count))
        orders = [self.create(s, i) for i, s in enumerate(scenarios)]
        described = ", ".join(f"#{o.order_id} ({o.scenario})" for o in orders)
        self.progress(f"shop: {len(orders)} customers placed orders, pending payment: {described}")
        self.wait_all("the supplier to reserve every pending order's products",
                      lambda: all(self.lines_in(o, LineState.LOCKED) for o in orders))
        self.progress("supplier: every pending order's products are reserved in the growing order")

        for order in orders:
            if order.scenario == "quantity change":
                line_id = next(iter(order.lines))
                self.shop.edit_order(order.order_id, quantity={line_id: 3})
                order.lines[line_id] = 3
                self.progress(f"shop: order #{order.order_id} changed from 1 to 3 units")
        self.wait_all("the reservation to follow the quantity change",
                      lambda: all(self.lines_in(o, LineState.LOCKED) for o in orders))

        for order in orders:
            if order.paid:
                self.shop.edit_order(order.order_id, status=ShopStatus.PROCESSING)
            elif order.scenario == "cancelled":
                self.shop.edit_order(order.order_id, status=ShopStatus.CANCELLED)
        paid = [o for o in orders if o.paid]
        cancelled = [o for o in orders if o.scenario == "cancelled"]
        self.progress(f"shop: {len(paid)} orders paid (processing), {len(cancelled)} cancelled")
        self.wait_all("the paid orders to reach the supplier",
                      lambda: all(self.supplier_order(o)[0] is not None for o in paid)
                      and all(self.lines_in(o, LineState.RELEASED) for o in cancelled))
        ids = {o.order_id: self.supplier_order(o)[0] for o in paid}
        self.progress("supplier: orders sent with the shipping address, now Booked: "
                      + ", ".join(f"#{shop} -> {supplier}" for shop, supplier in ids.items())
                      + ("; cancelled orders' units released" if cancelled else ""))

        for status, name in STEPS:
            for shop_id, supplier_id in ids.items():
                extra: dict[str, Any] = {}
                if status == 3:
                    code = f"DEMO{supplier_id}"
                    extra = {"tracking_code": code, "tracking_url": f"https://tracking.example/{code}",
                             "carrier_name": "BRT"}
                self.supplier.set_status(int(supplier_id), status, **extra)
            self.wait_all(f"status {name} to reach the store",
                          lambda status=status: all(self.supplier_order(o)[1] == status for o in paid))
            self.progress(f"supplier: {len(paid)} orders moved to {name}; the status poller picked it up")
        self.wait_all("the shop orders to be completed",
                      lambda: all(self.shop_status(o.order_id) == ShopStatus.COMPLETED for o in paid))
        # The shop's own order.updated echo brings the completion back into the records, which
        # the tables printed next are read from.
        self.wait_all("the completions to be recorded",
                      lambda: all(self.recorded_status(o) == ShopStatus.COMPLETED for o in paid))
        self.progress("shop: dispatched orders are completed, with tracking in a note and in the order meta")
        return orders

    def shop_status(self, order_id: int) -> str:
        from shared.clients.shop import WooCommerceClient

        client = WooCommerceClient(self.endpoints.shop_url, self.endpoints.shop_key, self.endpoints.shop_secret)
        return str(client.get_order(order_id)["status"])

    def wait_all(self, what: str, check: Callable[[], bool]) -> None:
        wait_until(what, check, self.step_timeout)


def print_tables(database_url: str, wc_url: str | None, echo: Callable[[str], None]) -> None:
    from services.admin import columns, views

    with session_scope(database_url) as session:
        reservations = views.reservations(session, wc_url)
        orders = views.orders(session, wc_url)
    echo("")
    echo("rewix-sync reservations")
    echo(columns.reservations_text(reservations, wc_url))
    echo("")
    echo("rewix-sync orders")
    echo(columns.as_text(columns.ORDERS, orders))

# --- running everything -----------------------------------------------------------------------


def service_env(stack: DevStack, rewix_url: str, shop_url: str, ingest_port: int) -> dict[str, str]:
    """The services' settings: the stack's database and vhost, the simulators, short intervals."""
    return stack.service_env(
        REWIX_API_URL=rewix_url,
        REWIX_API_KEY=REWIX_KEY,
        REWIX_API_PASSWORD=REWIX_PASSWORD,
        WC_URL=shop_url,
        WC_CONSUMER_KEY=SHOP_KEY,
        WC_CONSUMER_SECRET=SHOP_SECRET,
        WC_WEBHOOK_SECRET=WEBHOOK_SECRET,
        INGEST_HOST="127.0.0.1",
        INGEST_PORT=str(ingest_port),
        POLL_INTERVAL_SECONDS="1",
        SHOP_CATCHUP_INTERVAL_SECONDS="5",
        SYNC_RETRY_DELAYS="1,2,5",
        LOG_LEVEL="INFO",
    )


def run_demo(database_url: str, amqp_url: str, *, orders: int, keep: bool, echo: Callable[[str], None],
             name: str | None = None) -> None:
    """Everything on a dev stack of its own (database and vhost `name`, or a unique `rewix_demo_...`)."""
    progress = Progress(echo)
    stack = DevStack(DEMO_NAME, name=name, keep=keep, database_url=database_url, amqp_url=amqp_url)
    try:
        with stack:
            where = (f"database {stack.name} and RabbitMQ vhost {stack.name}" if stack.own_vhost
                     else f"database {stack.name}, and AMQP_URL's vhost (no rabbitmqctl here to make one)")
            progress(f"created a fresh {where}; schema migrated")
            rewix_url = stack.start_rewix_simulator(REWIX_KEY, REWIX_PASSWORD)
            ingest_port = free_port()
            ingest_url = f"http://127.0.0.1:{ingest_port}"
            shop_url = stack.start_shop_simulator(SHOP_KEY, SHOP_SECRET, f"{ingest_url}/webhooks/woocommerce",
                                                  WEBHOOK_SECRET)
            stack.start_services(service_env(stack, rewix_url, shop_url, ingest_port))
            progress(f"started the supplier simulator ({rewix_url}), the shop simulator ({shop_url}) "
                     f"and ingest, supplier_sync, status_poller (logs in {stack.log_dir})")

            def ingest_ready() -> bool:
                stack.check_alive()
                return requests.get(f"{ingest_url}/readyz", timeout=2).status_code == 200

            wait_until("ingest to be ready", ingest_ready, 30)
            progress(f"ingest is ready for WooCommerce webhooks at {ingest_url}/webhooks/woocommerce")

            feeder = Feeder(Endpoints(rewix_url, shop_url, stack.database_url), progress)
            try:
                feeder.seed()
                feeder.sync_catalog()
                feeder.run(orders)
            finally:
                feeder.close()
            stack.check_alive()
            print_tables(stack.database_url, shop_url, echo)
    except (DemoFailed, RuntimeError) as exc:
        raise DemoFailed(f"{exc} (service logs in {stack.log_dir})") from None
    if keep:
        echo(f"kept database {stack.name}{' and vhost ' + stack.name if stack.own_vhost else ''}; "
             f"DATABASE_URL={stack.database_url} AMQP_URL={stack.amqp_url}; logs in {stack.log_dir}")


def run_feed_only(database_url: str, rewix_url: str, shop_url: str, shop_key: str, shop_secret: str, *,
                  orders: int, echo: Callable[[str], None]) -> None:
    progress = Progress(echo)
    feeder = Feeder(Endpoints(rewix_url, shop_url, database_url, shop_key, shop_secret), progress, step_timeout=120)
    try:
        wait_until("the simulators to answer", lambda: bool(feeder.supplier.state()) and
                   requests.get(shop_url + "/_control/webhooks", timeout=2).ok, 120, 1.0)
        feeder.seed()
        feeder.run(orders)
    finally:
        feeder.close()
    print_tables(database_url, shop_url, echo)
