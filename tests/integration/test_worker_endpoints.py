"""Each worker's /healthz, /readyz and /metrics on METRICS_PORT, as real processes.

While working, while RabbitMQ is unreachable (a cuttable proxy in front of the
shared broker: the broker itself is never stopped), and while the supplier
refuses the account (the Rewix simulator answers 401); the message counters
move when messages are handled, retried and dead-lettered.
"""
from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.messaging import topology
from shared.messaging.amqp import Publisher
from simulators.rewix import SimulatorControl
from simulators.rewix.server import start_in_thread as start_rewix
from simulators.shop import ShopControl
from tests.integration.test_status_poller import World
from tests.integration.sync_harness import order_messages
from tests.integration.worker_processes import REWIX_KEY, REWIX_PASSWORD, ServiceProcess, free_port, worker_env
from tests.support import TcpProxy, wait_until

ORDER_LINES = topology.ORDER_LINES.name
STATUS_CHANGES = topology.STATUS_CHANGES.name


def metrics_of(process: ServiceProcess) -> dict[tuple[str, frozenset], float]:
    status, body = process.get("/metrics")
    assert status == 200, body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(process: ServiceProcess, name: str, **labels: str) -> float:
    return metrics_of(process).get((name, frozenset(labels.items())), 0.0)


def total(process: ServiceProcess, name: str, **labels: str) -> float:
    """The sum over every series of `name` that has these labels (whatever its others)."""
    wanted = set(labels.items())
    return sum(v for (n, series), v in metrics_of(process).items() if n == name and wanted <= series)


def broker_proxy(amqp_url: str) -> TcpProxy:
    parsed = urllib.parse.urlsplit(amqp_url)
    return TcpProxy((parsed.hostname or "127.0.0.1", parsed.port or 5672))


def ready(process: ServiceProcess) -> bool:
    assert process.alive(), process.output()
    return process.get("/readyz")[0] == 200


def not_ready_because(process: ServiceProcess, reason: str):
    def check():
        assert process.alive(), process.output()
        status, body = process.get("/readyz")
        return status == 503 and reason in body and body
    return check


# --- supplier_sync ------------------------------------------------------------------------------


@pytest.fixture
def supplier_sync(db: str, broker: str) -> Iterator[dict]:
    rewix = start_rewix(api_key=REWIX_KEY, password=REWIX_PASSWORD)
    control = SimulatorControl(rewix.url)
    control.seed_catalog([{"stock_id": s, "product_id": s, "code": f"M{s}", "barcode": f"80{s}", "availability": 100}
                          for s in range(1001, 1011)])
    proxy = broker_proxy(broker)
    process = ServiceProcess("services.supplier_sync",
                             worker_env(db, proxy.url_for(broker), rewix.url, "http://127.0.0.1:1"))
    publisher = Publisher(broker)
    try:
        yield {"process": process, "control": control, "proxy": proxy, "publisher": publisher}
    finally:
        process.stop()
        publisher.close()
        proxy.cut()
        control.close()
        rewix.stop()


def publish(publisher: Publisher, order_id: int, status: str = "on-hold", stock_id: int = 1001, version: int = 0) -> None:
    for m in order_messages(order_id, status, {1: (stock_id, 1)}, version=version):
        publisher.publish(m.to_bytes(), routing_key=topology.ORDER_LINE, message_id=m.message_id)


def test_supplier_sync_endpoints_while_working_broker_down_and_account_refused(supplier_sync):
    process, control, proxy, publisher = (supplier_sync[k] for k in ("process", "control", "proxy", "publisher"))
    wait_until(lambda: ready(process), timeout=30, what="supplier_sync ready")
    assert process.get("/healthz") == (200, "ok\n")

    # Working: a message handled, its supplier call counted with its latency.
    publish(publisher, 9001)
    wait_until(lambda: value(process, "rewix_messages_handled_total", queue=ORDER_LINES) >= 1, what="handled")
    assert value(process, "rewix_supplier_calls_total", endpoint="POST /ghost/orders/sold", status="200") >= 1
    assert value(process, "rewix_supplier_call_duration_seconds_count", endpoint="POST /ghost/orders/sold") >= 1

    # Retried: the supplier answers 503 for a while.
    control.faults(status_window={"status": 503, "seconds": 2})
    publish(publisher, 9002, stock_id=1002)
    wait_until(lambda: value(process, "rewix_messages_retried_total", queue=ORDER_LINES, reason="server_error") >= 1,
               what="retried")
    wait_until(lambda: value(process, "rewix_messages_handled_total", queue=ORDER_LINES) >= 2, timeout=30,
               what="handled after the retry")

    # Dead-lettered: a body that is no message at all.
    publisher.publish(b"not json", routing_key=topology.ORDER_LINE, message_id=str(uuid.uuid4()))
    wait_until(lambda: value(process, "rewix_messages_dead_lettered_total", queue=ORDER_LINES,
                             reason="unparseable") >= 1, what="dead-lettered")
    assert ready(process)

    # RabbitMQ unreachable: not ready, saying why; still alive. Back when the broker is.
    proxy.cut()
    body = wait_until(not_ready_because(process, "broker (supplier_sync): RabbitMQ unreachable"), timeout=30,
                      what="readyz 503 for the broker")
    assert "database" not in body
    assert process.get("/healthz") == (200, "ok\n")
    assert process.get("/metrics")[0] == 200
    proxy.restore()
    wait_until(lambda: ready(process), timeout=60, what="ready again after the broker came back")

    # The supplier refuses the account: not ready, saying so, and the gauge an alert watches.
    control.faults(status_window={"status": 401, "seconds": 60})
    publish(publisher, 9003, stock_id=1003)
    wait_until(not_ready_because(process, "supplier account: the supplier refuses the account (HTTP 401"),
               what="readyz 503 for the account")
    assert value(process, "rewix_supplier_account_refused") == 1
    assert process.get("/healthz") == (200, "ok\n")
    control.clear_faults()
    publish(publisher, 9004, stock_id=1004)
    wait_until(lambda: ready(process), timeout=30, what="ready once the supplier accepts the account")
    assert value(process, "rewix_supplier_account_refused") == 0


# --- status_poller --------------------------------------------------------------------------------


@pytest.fixture
def status_poller(db: str, broker: str) -> Iterator[dict]:
    world = World(db, broker)
    proxy = broker_proxy(broker)
    env = world.env(AMQP_URL=proxy.url_for(broker), SHOP_CATCHUP_INTERVAL_SECONDS="1", SHOP_CUSTOMER_TRACKING_NOTE="false",
                    METRICS_PORT=str(free_port()), LOG_FORMAT="console")
    order = world.open_order()
    process = ServiceProcess("services.status_poller", env)
    try:
        yield {"process": process, "world": world, "proxy": proxy, "order": order}
    finally:
        process.stop()
        proxy.cut()
        world.close()


def test_status_poller_endpoints_while_working_broker_down_and_account_refused(status_poller):
    process, world, proxy, order = (status_poller[k] for k in ("process", "world", "proxy", "order"))
    wait_until(lambda: ready(process), timeout=30, what="status_poller ready")
    assert process.get("/healthz") == (200, "ok\n")

    # Working: the open order is polled, its Booked status reaches the shop (handled, with its lag),
    # the catch-up runs and says when it last succeeded.
    wait_until(lambda: value(process, "rewix_status_changes_applied_total", status="Booked") == 1, timeout=30,
               what="Booked applied")
    # Counted once the consumer has acked it, a moment after the handler wrote the note.
    wait_until(lambda: value(process, "rewix_messages_handled_total", queue=STATUS_CHANGES) >= 1, what="handled")
    assert value(process, "rewix_status_change_lag_seconds_count") >= 1
    assert value(process, "rewix_polls_total", result="changed") >= 1
    wait_until(lambda: value(process, "rewix_polls_total", result="unchanged") >= 1, what="polled again")
    assert value(process, "rewix_shop_calls_total", endpoint="POST /orders/{id}/notes", status="201") >= 1
    assert value(process, "rewix_shop_check_runs_total", check="catchup", result="success") >= 1
    assert value(process, "rewix_shop_check_last_success_timestamp_seconds", check="catchup") > 0
    assert value(process, "rewix_shop_check_interval_seconds", check="catchup") == 1

    # RabbitMQ unreachable: not ready, saying why; the poll loop and the process stay alive.
    proxy.cut()
    wait_until(not_ready_because(process, "broker (status_applier): RabbitMQ unreachable"), timeout=30,
               what="readyz 503 for the broker")
    assert process.get("/healthz") == (200, "ok\n")
    proxy.restore()
    wait_until(lambda: ready(process), timeout=60, what="ready again after the broker came back")

    # The supplier refuses the account: polls get 401, readyz says so; it recovers by itself.
    world.control.faults(status_window={"status": 401, "seconds": 60})
    wait_until(not_ready_because(process, "supplier account: the supplier refuses the account (HTTP 401"),
               what="readyz 503 for the account")
    assert value(process, "rewix_supplier_account_refused") == 1
    assert total(process, "rewix_supplier_calls_total", status="401") >= 1
    world.control.clear_faults()
    wait_until(lambda: ready(process), timeout=30, what="ready once the supplier accepts the account")

    # The shop refuses the REST keys: the shop side pauses, readyz says so, the gauge an alert watches is 1,
    # the loops are paused on purpose (healthz stays 200); it recovers by itself once the key is restored.
    shop = ShopControl(world.shop.url)
    shop.revoke_keys()
    wait_until(not_ready_because(process, "shop account: the shop refuses the REST keys (HTTP 401"),
               what="readyz 503 for the shop's keys")
    assert value(process, "rewix_shop_account_refused") == 1
    assert process.get("/healthz") == (200, "ok\n")
    assert total(process, "rewix_messages_dead_lettered_total") == 0
    shop.revoke_keys(False)
    wait_until(lambda: ready(process), timeout=60, what="ready once the shop accepts the keys")
    assert value(process, "rewix_shop_account_refused") == 0
