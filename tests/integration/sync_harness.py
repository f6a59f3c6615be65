"""Runs supplier_sync's consumer in a thread against the supplier simulator, for tests."""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, text

from shared.clients.rewix import RewixClient
from shared.clients.shop import WooCommerceClient
from shared.db import normalise_url
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer
from shared.messaging.messages import OrderLineMessage, ShopRecipient, SupplierLine
from shared.orders.intake import OrderIntake
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units
from simulators.rewix import start_in_thread
from simulators.rewix.control import SimulatorControl
from tests.conftest import TEST_RETRY_DELAYS
from tests.support import wait_until

API_KEY, PASSWORD = "test-key", "test-password"
BASE_DATE = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
RECIPIENT = ShopRecipient(
    name="Zoë Müller", phone="+39 333 1234567", address_1="Via Roma 1", address_2="Scala B",
    postcode="20121", city="Milano", state="MI", country="IT",
)


def order_messages(
    order_id: int,
    status: str,
    lines: dict[int, tuple[int, int]],  # line_id -> (stock_id, quantity)
    *,
    version: int = 0,
    topic: str = "order.updated",
    schema_version: int = 2,
) -> list[OrderLineMessage]:
    """The messages ingest would publish for one state of an order: the first is the event's head.

    `schema_version=1` gives what an older ingest published (every message
    carrying the recipient and every line id), as a replay may still bring.
    """
    date = BASE_DATE + timedelta(seconds=version)
    common = dict(topic=topic, order_id=order_id, order_number=f"WC-{order_id}", status=status, date_modified_gmt=date)
    head = dict(supplier_line_ids=sorted(lines), recipient=RECIPIENT)
    if schema_version == 1:
        common |= dict(schema_version=1)
    else:
        common |= dict(event_id=f"event-{order_id}-{version}", line_count=len(lines))
    if not lines:
        return [OrderLineMessage(**common, **head)]
    return [
        OrderLineMessage(
            line=SupplierLine(line_id=lid, product_id=stock, stock_id=stock, quantity=qty), **common,
            **(head if index == 0 or schema_version == 1 else {"head": False}),
        )
        for index, (lid, (stock, qty)) in enumerate(sorted(lines.items()))
    ]


def deleted_message(order_id: int) -> OrderLineMessage:
    return OrderLineMessage(topic="order.deleted", order_id=order_id, status="trash", date_modified_gmt=None, deleted=True)


class SyncHarness:
    def __init__(self, amqp_url: str, database_url: str, *, workers: int = 1, stock_ids=range(1001, 1011), availability=100,
                 max_batch: int = 100, shop: WooCommerceClient | None = None,
                 retry_delays: list[int] = TEST_RETRY_DELAYS):
        """`shop`: the shop supplier_sync asks what a webhook cannot say (deletes, restores, refunds,
        contradicting states: services/supplier_sync/confirm.py); without one those wait."""
        self.amqp_url, self.database_url = amqp_url, database_url
        self.shop = shop
        self.retry_delays = retry_delays
        self.sim = start_in_thread(api_key=API_KEY, password=PASSWORD)
        self.control = SimulatorControl(self.sim.url)
        self.control.seed_catalog(
            [{"stock_id": s, "product_id": s, "code": f"M{s}", "barcode": f"80{s}", "availability": availability} for s in stock_ids]
        )
        self.publisher = Publisher(amqp_url)
        self.confirm_publishers: list[Publisher] = []
        self.stop = threading.Event()
        self.threads = []
        self.max_batch = max_batch
        self.start_workers(workers)
        self.engine = create_engine(normalise_url(database_url))

    def start_workers(self, workers: int = 1) -> None:
        """More supplier_sync workers (workers=0 at first: what is published waits to be taken as one batch)."""
        for _ in range(workers):
            client = RewixClient(self.sim.url, API_KEY, PASSWORD, timeout=5)
            confirm = ShopConfirmation(None, None)
            if self.shop is not None:
                # The worker's own publisher: a Publisher belongs to one thread.
                self.confirm_publishers.append(Publisher(self.amqp_url))
                confirm = ShopConfirmation(self.shop, OrderIntake(self.database_url, self.confirm_publishers[-1],
                                                                  shop=self.shop))
            consumer = BatchConsumer(
                self.amqp_url, topology.ORDER_LINES, OrderLineHandler(sql_units(self.database_url), client, confirm),
                retry_delays=self.retry_delays, stop=self.stop, name=f"sync-{len(self.threads)}", max_batch=self.max_batch,
            )
            thread = threading.Thread(target=consumer.run, daemon=True)
            thread.start()
            self.threads.append(thread)

    def publish(self, messages) -> None:
        for m in messages:
            self.publisher.publish(m.to_bytes(), routing_key=topology.ORDER_LINE, message_id=m.message_id)

    def locks(self) -> dict[int, int]:
        models = self.control.state()["growing_order"]["models"]
        return {int(k): int(v) for k, v in models.items() if int(v) > 0}

    def supplier_orders(self) -> list[dict]:
        return self.control.state()["orders"]

    def query(self, sql: str, **params):
        with self.engine.connect() as c:
            return c.execute(text(sql), params).all()

    def line_statuses(self) -> dict[tuple[int, int], str]:
        return {(o, l): s for o, l, s in self.query("SELECT order_id, line_id, sync_status FROM order_lines")}

    def converged_since(self, order_id: int, moment: datetime) -> bool:
        """Has a batch with this order been recorded and converged (sent or not) since `moment`?

        One worker takes the queue in order: once an order published after some messages has
        converged, the batches that held those messages are over too."""
        return self.query("SELECT last_synced_at > :t FROM shop_orders WHERE id = :o", t=moment, o=order_id) == [(True,)]

    @staticmethod
    def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        wait_until(condition, timeout, what, interval=0.1)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.publisher.close()
        for publisher in self.confirm_publishers:
            publisher.close()
        self.control.close()
        self.sim.stop()
        self.engine.dispose()

