"""RabbitMQ and PostgreSQL going away in the middle of a burst of shop activity.

The services are not restarted: they reconnect by themselves. Webhooks answered 2xx were
persisted; the others (ingest answers 503 while a dependency is down, and WooCommerce disables
a webhook after a few failures) come back through status_poller's shop catch-up. The supplier
ends exactly as the shop needs, and every paid order gets its Booked note once.

Both servers may be shared with other runs on this machine: the guards in conftest.py always start
them again, and the outages stay short. The tests that stop a server are marked `stops_servers`:
scripts/test runs them last and alone, and they stop the server DATABASE_URL or AMQP_URL points
at (devstack/servers.py), never another one on the machine.
"""
from __future__ import annotations

import time
import urllib.parse
from collections import Counter
from collections.abc import Callable

import pytest
import requests

from shared.clients.rewix import BOOKED
from tests.faults.conftest import (
    ShopBurst, World, figures, postgres_outage, rabbitmq_outage, unpersisted_deliveries, wait_until,
)
from tests.support import TcpProxy

CATCHUP_SECONDS = "2"


def outage_in_a_burst(world: World, name: str, outage: Callable[[], float], **env: str) -> None:
    ingest = world.ingest(**env)
    world.connect_webhooks(ingest)
    sync = world.supplier_sync(**env)
    poller = world.status_poller(SHOP_CATCHUP_INTERVAL_SECONDS=CATCHUP_SECONDS, **env)
    burst = ShopBurst(world, actions=150, per_second=15).start()  # 10 s: the outage falls in the middle
    burst.wait_done(1 / 3)
    down_for = outage()
    back = time.monotonic()
    # The webhook was disabled after a few failed deliveries: the shop owner turns it on again.
    world.shop.webhooks.configure(enabled=True)
    burst.join(timeout=60)
    result = world.wait_exact(90, abort=world.stop_signs([ingest, sync, poller]))
    comparison = result.comparison
    converge = time.monotonic() - back
    problem = result.problem
    if problem is None:
        try:
            wait_until(lambda: world.status_notes(BOOKED)[1] == 0, 45, "a Booked note on every paid order")
        except AssertionError as exc:
            problem = str(exc)
    time.sleep(1)  # long enough for a late duplicate to show
    paid, missing_notes, extra_notes = world.status_notes(BOOKED)
    world.shop.webhooks.wait_idle(30)
    deliveries = world.shop.webhooks.deliveries()
    answers = Counter(d["status"] if d["sent"] and d["status"] else (d["error"] or "")[:30] for d in deliveries)
    not_persisted = unpersisted_deliveries(deliveries, world.audit())
    ready = requests.get(ingest.url + "/readyz", timeout=10).status_code if ingest.alive else None
    figures(
        name, shop_actions=burst.done, kinds=dict(burst.counts), deliveries=len(deliveries),
        answers=dict(answers), answered_2xx_not_persisted=len(not_persisted), down_s=down_for,
        applied=world.applied_orders(), lost=comparison.lost, doubled=comparison.doubled, paid_orders=paid,
        supplier_orders=comparison.supplier_orders, booked_notes_missing=missing_notes,
        booked_notes_doubled=extra_notes, catchup_passes=poller.count_events("shop catch-up pass done"),
        converge_after_outage_s=converge,
    )
    assert problem is None, problem
    assert not not_persisted, not_persisted[:3]
    assert answers.get(500, 0) == 0
    assert answers.get(503, 0) > 0, "the outage must have met webhooks"
    assert missing_notes == 0 and extra_notes == 0
    assert ready == 200
    assert ingest.alive and sync.alive and poller.alive
    assert ingest.starts == sync.starts == poller.starts == 1


def cut_for(proxy: TcpProxy, seconds: float) -> float:
    started = time.monotonic()
    proxy.cut()
    try:
        time.sleep(seconds)
    finally:
        proxy.restore()
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_rabbitmq_unreachable_in_a_burst(world: World) -> None:
    """The services reach RabbitMQ through a proxy that drops every connection and refuses new
    ones for 5 s: the same reconnection path as a broker restart, without stopping the shared
    broker (so this one can run as often as needed)."""
    host, port = urllib.parse.urlsplit(world.amqp_url).hostname, urllib.parse.urlsplit(world.amqp_url).port or 5672
    proxy = TcpProxy((host or "127.0.0.1", port))
    try:
        outage_in_a_burst(world, "RabbitMQ unreachable", lambda: cut_for(proxy, 5), AMQP_URL=proxy.url_for(world.amqp_url))
    finally:
        proxy.cut()


@pytest.mark.slow
@pytest.mark.stops_servers
@pytest.mark.timeout(180)
def test_rabbitmq_stopped_and_started_in_a_burst(world: World) -> None:
    outage_in_a_burst(world, "RabbitMQ stop_app/start_app", lambda: rabbitmq_outage(world.amqp_url, seconds=5))


@pytest.mark.slow
@pytest.mark.stops_servers
@pytest.mark.timeout(180)
def test_postgresql_stopped_and_started_in_a_burst(world: World) -> None:
    outage_in_a_burst(world, "PostgreSQL stop/start", lambda: postgres_outage(world.database_url, seconds=4))
