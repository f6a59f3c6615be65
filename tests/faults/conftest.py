"""The fault suite's world: real services as subprocesses, both simulators, outage guards, figures.

Every service runs as `python -m services.<name>` with the run's database and
vhost, in a process group of its own (devstack/processes.py), so a SIGKILL
takes its workers with it (gunicorn's worker would otherwise keep serving for
a moment). Outages of the
shared RabbitMQ and PostgreSQL go through `rabbitmq_outage` and
`postgres_outage`, which always bring the server back, however the test ends.
"""
from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pika
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from shared.clients.rewix import BOOKED, DropshippingOrder, Recipient, RewixClient
from shared.clients.shop.signature import sign
from shared.db import normalise_url, session_scope
from shared.messaging import topology
from shared.messaging.messages import OrderLineMessage, parse_order_lines_message
from shared.products.mapping import import_product_map
from services.status_poller.shop_updates import plan
from devstack.processes import Service
from devstack.servers import AMQP_PORT, amqp_port_of, postgres_cluster, rabbitmq_node, rabbitmqctl_command, url_port
from devstack.stack import service_env
from devstack.waiting import wait_until
from simulators.rewix import start_in_thread as start_rewix
from simulators.shop import start_in_thread as start_shop
from tests.conftest import TEST_RETRY_DELAYS, drain
from tests.support import record_sent_order

ROOT = Path(__file__).resolve().parents[2]
REWIX_KEY, REWIX_PASSWORD = "fault-key", "fault-password"
WC_KEY, WC_SECRET = "ck_faults", "cs_faults"
WEBHOOK_SECRET = "faultWebhookSecret0123456789abcdef"
RETRY_DELAYS = ",".join(str(d) for d in TEST_RETRY_DELAYS)
# A copy of every order-line message published, to see what a webhook answered 200 really sent.
AUDIT_QUEUE = "faults.audit.order_lines"
# The suite's supplier models: WooCommerce simple product id -> the supplier's stock_id.
STOCK_OF_PRODUCT = {7000 + i: 300000 + i for i in range(12)}
AVAILABILITY = 100_000
START_TIMEOUT = 30.0
# What no service may ever log: the run's credentials, and the test customer (the shop
# simulator's default billing and shipping address, and the recipient the suite sends).
SECRETS = (REWIX_PASSWORD, WC_SECRET, WEBHOOK_SECRET)
CUSTOMER = ("Zoë", "Müller", "Ørsted", "Piotrkowska", "Via Roma", "+48 42 123 45 67", "123 45 67", "zoe.muller")
HOLDING = ("pending", "on-hold")
PAID = ("processing", "completed")


# -- small helpers -------------------------------------------------------------------------------


def figures(test: str, **values: Any) -> None:
    """One line of the test's figures (shown with `pytest -s`)."""
    shown = ", ".join(f"{k}={round(v, 2) if isinstance(v, float) else v}" for k, v in values.items())
    print(f"\n[{test}] {shown}", flush=True)


def queue_depth(channel: Any, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def queue_depths(amqp_url: str, queues: list[str]) -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        return {q: queue_depth(channel, q) for q in queues}
    finally:
        connection.close()


def work_queues() -> list[str]:
    """Every queue a message can wait in on its way (work queues and their wait queues)."""
    names = []
    for q in topology.WORK_QUEUES:
        names += [q.name] + [q.wait(d) for d in sorted(set(TEST_RETRY_DELAYS))]
    return names


def gmt(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- services as subprocesses --------------------------------------------------------------------


class Ingest(Service):
    """ingest; after the first start it keeps its port, as a shop's webhook URL would."""

    url: str = ""

    def start(self) -> "Ingest":
        super().start()
        listening = self.wait_event("ingest listening")
        self.url = listening["url"]
        self.env = {**self.env, "INGEST_PORT": self.url.rsplit(":", 1)[1]}
        return self

    @property
    def webhook_url(self) -> str:
        return self.url + "/webhooks/woocommerce"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.fault_failed = report.failed  # type: ignore[attr-defined]


# -- outages of the shared servers ---------------------------------------------------------------


def _run(args: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check)


def _broker_answers(amqp_url: str) -> bool:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except Exception:
        return False
    try:
        connection.channel().queue_declare(topology.ORDER_LINES.name, passive=True)
        return True
    except Exception:
        return False
    finally:
        if connection.is_open:
            connection.close()


def _database_answers(database_url: str) -> bool:
    engine = create_engine(normalise_url(database_url), poolclass=NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


MAX_OUTAGE = 10.0


def rabbitmq_outage(amqp_url: str, seconds: float) -> float:
    """Stop RabbitMQ's application for about `seconds` (at most MAX_OUTAGE), then start it again.

    The broker is shared with other runs: start_app is always called, whatever happens, and
    this returns only once it accepts connections again. Returns how long it was down.
    """
    rabbitmqctl = rabbitmqctl_command(amqp_url)
    node = rabbitmq_node(amqp_url)
    port = url_port(amqp_url, AMQP_PORT)
    # Stop only the broker this run talks to: the node must be the one listening on the URL's port.
    assert amqp_port_of(node) == port, f"RabbitMQ node {node or '(default)'} does not serve port {port}"
    started = time.monotonic()
    try:
        _run([*rabbitmqctl, "stop_app"], timeout=30)
        left = min(seconds, MAX_OUTAGE) - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)
    finally:
        _run([*rabbitmqctl, "start_app"], timeout=60, check=False)
        down = time.monotonic() - started
        wait_until(lambda: _broker_answers(amqp_url), 60, "RabbitMQ to accept connections again", interval=0.2)
    return down


def postgres_outage(database_url: str, seconds: float) -> float:
    """Stop PostgreSQL for about `seconds` (at most MAX_OUTAGE), then start it again.

    Shared with other runs: the cluster is always started again, whatever happens, and this
    returns only once it accepts connections. Returns how long it was down.
    """
    version, cluster = postgres_cluster(database_url)
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster]
    started = time.monotonic()
    try:
        _run([*ctl, "stop"], timeout=60)
        left = min(seconds, MAX_OUTAGE) - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)
    finally:
        _run([*ctl, "start"], timeout=60, check=False)
        down = time.monotonic() - started
        wait_until(lambda: _database_answers(database_url), 60, "PostgreSQL to accept connections again", interval=0.2)
    return down


# -- the world: simulators, database, services -------------------------------------------------


def shop_line(product_id: int, quantity: int) -> dict[str, Any]:
    index = product_id - 7000
    return {"product_id": product_id, "variation_id": 0, "quantity": quantity, "sku": f"FLT-{index:03d}",
            "name": f"Fault model {index}", "price": "10.00"}


def supplier_items(order: dict[str, Any]) -> dict[int, int]:
    """stock_id -> units of a shop order's supplier lines."""
    items: Counter[int] = Counter()
    for line in order.get("line_items") or []:
        stock = STOCK_OF_PRODUCT.get(line["product_id"])
        if stock is not None and line["quantity"] > 0:
            items[stock] += line["quantity"]
    return dict(items)


@dataclass
class Comparison:
    """The supplier against what the shop's orders need."""

    lost: int = 0  # units not locked that are needed + paid orders never sent
    doubled: int = 0  # units locked beyond the need + supplier orders beyond one per paid order
    wrong_items: list[str] = field(default_factory=list)
    locks: dict[int, int] = field(default_factory=dict)
    expected_locks: dict[int, int] = field(default_factory=dict)
    paid: int = 0
    supplier_orders: int = 0

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and not self.wrong_items


@dataclass
class Convergence:
    comparison: Comparison
    seconds: float
    problem: str | None = None  # None: exact


class World:
    """Supplier and shop simulators (in this process), the run's database and vhost, services."""

    def __init__(self, database_url: str, amqp_url: str, log_dir: Path) -> None:
        self.database_url, self.amqp_url, self.log_dir = database_url, amqp_url, log_dir
        self.rewix = start_rewix(api_key=REWIX_KEY, password=REWIX_PASSWORD)
        self.rewix.state.upsert_models(
            [{"stock_id": s, "product_id": p, "code": f"FLT-{p - 7000:03d}", "availability": AVAILABILITY}
             for p, s in STOCK_OF_PRODUCT.items()]
        )
        self.shop = start_shop(consumer_key=WC_KEY, consumer_secret=WC_SECRET)
        self.engine = create_engine(normalise_url(database_url), pool_pre_ping=True)
        with session_scope(database_url) as session:
            import_product_map(session, [(p, 0, s) for p, s in STOCK_OF_PRODUCT.items()])
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        channel.queue_declare(AUDIT_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(AUDIT_QUEUE, topology.EXCHANGE, routing_key=topology.ORDER_LINE)
        channel.queue_purge(AUDIT_QUEUE)
        connection.close()
        self.services: list[Service] = []
        self.rng = random.Random(7)

    # -- services --------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = service_env(
            AMQP_URL=self.amqp_url, DATABASE_URL=self.database_url,
            REWIX_API_URL=self.rewix.url, REWIX_API_KEY=REWIX_KEY, REWIX_API_PASSWORD=REWIX_PASSWORD,
            WC_URL=self.shop.url, WC_CONSUMER_KEY=WC_KEY, WC_CONSUMER_SECRET=WC_SECRET,
            WC_WEBHOOK_SECRET=WEBHOOK_SECRET, INGEST_HOST="127.0.0.1", INGEST_PORT="0",
            # The simulated shop delivers from its own address (WC_URL); the deliveries the tests sign
            # themselves come from this second address of the same shop.
            WC_WEBHOOK_SOURCES=SIGNED_SOURCE,
            POLL_INTERVAL_SECONDS="0.5", POLL_REQUESTS_PER_SECOND="200", SHOP_CATCHUP_INTERVAL_SECONDS="0",
            SYNC_RETRY_DELAYS=RETRY_DELAYS, LOG_FORMAT="json", LOG_LEVEL="INFO",
        )
        env.update(extra)
        return env

    def ingest(self, name: str = "ingest", **extra: str) -> Ingest:
        service = Ingest(name, "services.ingest", self.env(**extra), self.log_dir)
        self.services.append(service)
        return service.start()

    def supplier_sync(self, name: str = "supplier_sync", **extra: str) -> Service:
        service = Service(name, "services.supplier_sync", self.env(**extra), self.log_dir)
        self.services.append(service)
        service.start()
        service.wait_event("consuming")
        return service

    def status_poller(self, name: str = "status_poller", **extra: str) -> Service:
        service = Service(name, "services.status_poller", self.env(**extra), self.log_dir)
        self.services.append(service)
        service.start()
        service.wait_event("consuming")
        return service

    def restart(self, service: Service) -> Service:
        service.start()
        if isinstance(service, Ingest):
            return service
        service.wait_event("consuming")
        return service

    def connect_webhooks(self, ingest: Ingest) -> None:
        self.shop.webhooks.configure(url=ingest.webhook_url, secret=WEBHOOK_SECRET, enabled=True)

    def leaks(self) -> list[str]:
        """Every log line of every service that shows a secret or the test customer."""
        found = []
        for service in self.services:
            for line in service.text(since_start=False).splitlines():
                for private in (*SECRETS, *CUSTOMER):
                    if private in line:
                        found.append(f"{service.name}: {private!r} in {line[:300]}")
        return found

    def close(self, failed: bool) -> None:
        for service in self.services:
            if service.alive:
                service.kill()
            elif service.process is not None:
                service.reap_group()
            if failed:
                print(f"\n--- last lines of {service.name} ({service.log_path}) ---\n{service.tail()}")
        self.shop.stop()
        self.rewix.stop()
        self.engine.dispose()
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            connection.channel().queue_delete(AUDIT_QUEUE)
            connection.close()
        except Exception:  # the vhost goes at the end of the run anyway
            pass

    # -- the shop ----------------------------------------------------------------------------

    def create_order(self, status: str, lines: list[tuple[int, int]]) -> dict[str, Any]:
        """A shop order (fires order.created when webhooks are on); lines are (product_id, quantity)."""
        return self.shop.state.create_order(status=status, lines=[shop_line(p, q) for p, q in lines])

    def random_lines(self, products: list[int] | None = None, max_lines: int = 2) -> list[tuple[int, int]]:
        pool = products or list(STOCK_OF_PRODUCT)
        chosen = self.rng.sample(pool, self.rng.randint(1, min(max_lines, len(pool))))
        return [(p, self.rng.randint(1, 3)) for p in chosen]

    def orders(self) -> list[dict[str, Any]]:
        return self.shop.state.select(lambda o: True, lambda o: o["id"], False, 0, 10**9)[1]

    def notes(self, order_id: int) -> list[str]:
        """The private notes written to the order (the status notes)."""
        return [w["body"]["note"] for w in self.shop.state.writes(order_id)
                if w["kind"] == "note" and not w["body"].get("customer_note")]

    def notes_lost_and_doubled(self, expected: dict[int, list[str]]) -> tuple[int, int]:
        """Over the orders of `expected` (order id -> the status notes it should have, once each):
        (notes missing, notes written again or never wanted)."""
        lost = doubled = 0
        for shop_id, wanted in expected.items():
            notes = self.notes(shop_id)
            lost += sum(1 for n in wanted if n not in notes)
            doubled += sum(notes.count(n) - 1 for n in wanted if n in notes) + sum(1 for n in notes if n not in wanted)
        return lost, doubled

    def customer_notes(self, order_id: int) -> list[str]:
        """The notes the customer is e-mailed (the tracking note on Dispatched)."""
        return [w["body"]["note"] for w in self.shop.state.writes(order_id)
                if w["kind"] == "note" and w["body"].get("customer_note")]

    def completions(self, order_id: int) -> int:
        return sum(1 for w in self.shop.state.writes(order_id)
                   if w["kind"] == "update" and w["body"].get("status") == "completed")

    # -- the supplier against the shop ------------------------------------------------------

    def supplier_orders(self) -> list[dict[str, Any]]:
        return self.rewix.state.snapshot()["orders"]

    def expectation(self) -> tuple[dict[int, int], dict[str, dict[int, int]]]:
        """(stock_id -> units the shop's holding orders need, key -> items of every paid order)."""
        expected_locks: Counter[int] = Counter()
        paid: dict[str, dict[int, int]] = {}
        for order in self.orders():
            items = supplier_items(order)
            if order["status"] in HOLDING:
                expected_locks.update(items)
            elif order["status"] in PAID and items:
                paid[order["number"]] = items
        return dict(expected_locks), paid

    def compare(self, expected: tuple[dict[int, int], dict[str, dict[int, int]]] | None = None) -> Comparison:
        """The supplier against `expected` (default: what the shop's orders need now)."""
        expected_locks, paid = expected or self.expectation()
        snapshot = self.rewix.state.snapshot()
        locks = {int(s): q for s, q in snapshot["growing_order"]["models"].items()}
        result = Comparison(locks=locks, expected_locks=dict(expected_locks), paid=len(paid),
                            supplier_orders=len(snapshot["orders"]))
        for stock in set(locks) | set(expected_locks):
            have, need = locks.get(stock, 0), expected_locks.get(stock, 0)
            result.lost += max(0, need - have)
            result.doubled += max(0, have - need)
        keys = Counter(o["key"] for o in snapshot["orders"])
        result.lost += sum(1 for key in paid if key not in keys)
        result.doubled += sum(n - 1 for n in keys.values()) + sum(1 for key in keys if key not in paid)
        for o in snapshot["orders"]:
            if o["key"] in paid and {int(s): q for s, q in o["items"].items()} != paid[o["key"]]:
                result.wrong_items.append(o["key"])
        return result

    def wait_exact(
        self, timeout: float, expected: tuple[dict[int, int], dict[str, dict[int, int]]] | None = None,
        abort: Callable[[], str | None] | None = None,
    ) -> "Convergence":
        """Wait for the supplier to match `expected` (default: the shop) exactly. Never raises: the
        result says how long it took, or what was still wrong when `timeout` passed or `abort`
        named a reason to stop waiting (a dead letter, a service gone)."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            comparison = self.compare(expected)
            if comparison.exact:
                return Convergence(comparison, time.monotonic() - started)
            reason = abort() if abort is not None else None
            if reason is None and time.monotonic() > deadline:
                reason = f"timed out after {timeout:g} s"
            if reason is not None:
                c = comparison
                return Convergence(comparison, time.monotonic() - started, (
                    f"the supplier does not match: {reason}: lost={c.lost} doubled={c.doubled} "
                    f"wrong_items={c.wrong_items} locks={c.locks} expected={c.expected_locks} "
                    f"paid={c.paid} supplier_orders={c.supplier_orders}"
                ))
            time.sleep(0.25)

    def stop_signs(self, services: list[Service], dead_letters_allowed: int = 0) -> Callable[[], str | None]:
        """A reason to stop waiting for convergence: a service exited, or messages were dead-lettered."""
        dead_queues = [q.dead for q in topology.WORK_QUEUES]

        def check() -> str | None:
            for service in services:
                if not service.alive:
                    code = service.process.returncode if service.process else None
                    return f"{service.name} exited with status {code}"
                died = service.thread_deaths()
                if died:
                    return f"{service.name} lost a thread: {died[0]}"
            dead = sum(queue_depths(self.amqp_url, dead_queues).values())
            if dead > dead_letters_allowed:
                return f"{dead} messages dead-lettered"
            return None

        return check

    def applied_orders(self) -> int:
        """Shop orders whose latest status supplier_sync has recorded."""
        with self.engine.connect() as c:
            stored = dict(c.execute(text("SELECT id, status FROM shop_orders")).all())
        return sum(1 for o in self.orders() if supplier_items(o) and stored.get(o["id"]) == o["status"])

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as c:
            return list(c.execute(text(sql), params).all())

    # -- statuses ------------------------------------------------------------------------------

    def open_supplier_order(self, shop_order: dict[str, Any]) -> dict[str, Any]:
        """Send a paid shop order to the supplier and record it as supplier_sync does (status Booked)."""
        key = shop_order["number"]
        client = RewixClient(self.rewix.url, REWIX_KEY, REWIX_PASSWORD, timeout=5)
        try:
            client.send_dropshipping_order(DropshippingOrder(
                key=key, date=datetime.now(timezone.utc), items=supplier_items(shop_order),
                recipient=Recipient(name="Zoë Müller", address_1="Via Roma 1", postcode="20121", city="Milano",
                                    countrycode="IT"),
            ))
            supplier = client.find_order_by_key(key)
        finally:
            client.close()
        assert supplier is not None
        with self.engine.begin() as c:
            record_sent_order(c, shop_order["id"], key, supplier.order_id, BOOKED)
        return {"shop_order_id": shop_order["id"], "key": key, "supplier_order_id": supplier.order_id}

    def set_supplier_status(self, supplier_order_id: int, status: int, **tracking: str) -> None:
        """What the supplier's warehouse does: move one order on."""
        assert self.rewix.state.set_status(supplier_order_id, {"status": status, **tracking}) is not None

    def status_notes(self, status: int) -> tuple[int, int, int]:
        """(paid orders, those without the note of `status`, notes of it beyond one) over every sent order."""
        sent = {o["key"]: o for o in self.supplier_orders()}
        orders = [o for o in self.orders() if o["status"] in PAID and o["number"] in sent]
        missing = extra = 0
        for order in orders:
            s = sent[order["number"]]
            note = plan(s["order_id"], status, tracking_code=s["tracking_code"], tracking_url=s["tracking_url"],
                        carrier_name=s["carrier_name"]).note
            count = self.notes(order["id"]).count(note)
            missing += count == 0
            extra += max(0, count - 1)
        return len(orders), missing, extra

    def expected_note(self, key: str, status: int) -> str:
        """The note status_poller writes for this supplier status of the order sent under `key`."""
        order = next(o for o in self.supplier_orders() if o["key"] == key)
        return plan(order["order_id"], status, tracking_code=order["tracking_code"],
                    tracking_url=order["tracking_url"], carrier_name=order["carrier_name"]).note

    # -- what was published --------------------------------------------------------------------

    def audit(self) -> list[OrderLineMessage]:
        """Every order-line message published since the world began (taken off the audit queue; the
        convergence requests that share the routing key, supplier_sync's own, are left out)."""
        published = (parse_order_lines_message(body) for _props, body in drain(self.amqp_url, AUDIT_QUEUE))
        return [m for m in published if isinstance(m, OrderLineMessage)]


class ShopBurst:
    """The shop's admin at a steady pace, from a thread of its own: new orders (a quarter of them
    paid at once), payments, quantity changes and cancellations of pending orders. Each change
    fires the shop's webhook when it is on."""

    def __init__(self, world: World, actions: int, per_second: float, products: list[int] | None = None,
                 seed: int = 11) -> None:
        self.world = world
        self.actions = actions
        self.pause = 1.0 / per_second
        self.products = products
        self.rng = random.Random(seed)
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._status: dict[int, str] = {}
        self._thread = threading.Thread(target=self._run, name="shop-burst", daemon=True)

    def start(self) -> "ShopBurst":
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the shop burst did not finish in time"
        assert not self.errors, self.errors[:3]

    def wait_done(self, fraction: float, timeout: float = 60) -> None:
        wait_until(lambda: self.done >= self.actions * fraction, timeout, f"{fraction:.0%} of the shop burst")

    def _run(self) -> None:
        shop = self.world.shop.state
        for n in range(self.actions):
            started = time.monotonic()
            pending = sorted(o for o, s in self._status.items() if s == "pending")
            try:
                if n % 4 == 3 and pending:
                    order_id = self.rng.choice(pending)
                    shop.admin_edit(order_id, {"status": "processing"})
                    self._status[order_id] = "processing"
                    self.counts["paid"] += 1
                elif n % 6 == 5 and pending:
                    order_id = self.rng.choice(pending)
                    line = shop.order(order_id)["line_items"][0]
                    shop.admin_edit(order_id, {"quantity": {str(line["id"]): self.rng.randint(1, 4)}})
                    self.counts["quantity changed"] += 1
                elif n % 9 == 8 and pending:
                    order_id = self.rng.choice(pending)
                    shop.admin_edit(order_id, {"status": "cancelled"})
                    self._status[order_id] = "cancelled"
                    self.counts["cancelled"] += 1
                else:
                    status = "processing" if self.rng.random() < 0.25 else "pending"
                    order = self.world.create_order(status, self.world.random_lines(self.products))
                    self._status[order["id"]] = status
                    self.counts["created"] += 1
            except Exception as exc:  # reported by join()
                self.errors.append(repr(exc))
            self.done = n + 1
            time.sleep(max(0.0, self.pause - (time.monotonic() - started)))


# The shop's second address (WC_WEBHOOK_SOURCES) that the deliveries signed by the tests come from.
SIGNED_SOURCE = "https://shop.example.com"


def signed_headers(body: bytes, topic: str = "order.updated") -> dict[str, str]:
    """The headers WooCommerce sends with a delivery of `body`."""
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.9.0 Hookshot (WordPress/6.8)",
        "X-WC-Webhook-Source": SIGNED_SOURCE + "/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": os.urandom(16).hex(),
        "X-WC-Webhook-Signature": sign(body, WEBHOOK_SECRET),
    }


def unpersisted_deliveries(deliveries: list[dict[str, Any]], published: list[OrderLineMessage]) -> list[dict[str, Any]]:
    """Shop webhook deliveries answered 2xx with no webhook message of that order state on the broker."""
    seen = {(m.order_id, m.date_modified_gmt) for m in published if m.source == "webhook"}
    missing = []
    for d in deliveries:
        if d["status"] is not None and 200 <= d["status"] < 300 and d["topic"] != "order.deleted":
            if (d["order_id"], gmt(d["date_modified_gmt"])) not in seen:
                missing.append(d)
    return missing


@pytest.fixture
def world(db: str, broker: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    w = World(db, broker, tmp_path)
    yield w
    failed = getattr(request.node, "fault_failed", True)
    leaked = w.leaks()
    w.close(failed=failed)
    # Whatever the faults did, the services' logs masked what they must.
    assert failed or not leaked, leaked[:10]
