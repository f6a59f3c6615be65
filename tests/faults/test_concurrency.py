"""Three supplier_sync and two status_poller processes at once, on orders sharing four models."""
from __future__ import annotations

import time

import pytest

from shared.clients.rewix import BOOKED, CONFIRMED, DISPATCHED
from shared.messaging import topology
from tests.faults.conftest import STOCK_OF_PRODUCT, World, figures, queue_depths, wait_until, work_queues

SHARED = list(STOCK_OF_PRODUCT)[:4]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_three_supplier_syncs_and_two_status_pollers_on_shared_models(world: World) -> None:
    ingest = world.ingest()
    world.connect_webhooks(ingest)
    syncs = [world.supplier_sync(f"supplier_sync-{n}") for n in range(3)]
    pollers = [world.status_poller(f"status_poller-{n}") for n in range(2)]
    started = time.monotonic()
    orders = [world.create_order("processing" if n % 3 else "pending", world.random_lines(SHARED, max_lines=3))
              for n in range(60)]
    pending = [o["id"] for o in orders if o["status"] == "pending"]
    for order_id in pending[:10]:
        world.shop.state.admin_edit(order_id, {"status": "processing"})
    for order_id in pending[10:15]:
        world.shop.state.admin_edit(order_id, {"status": "cancelled"})
    services = [ingest, *syncs, *pollers]
    result = world.wait_exact(90, abort=world.stop_signs(services))
    locked_after = time.monotonic() - started
    paid = {o["number"]: o["id"] for o in world.orders() if o["status"] == "processing"}
    problem = result.problem
    if problem is None:
        try:
            statuses_to_the_shop(world, paid)
        except AssertionError as exc:
            problem = str(exc)
    converge = time.monotonic() - started
    time.sleep(1)  # long enough for a late duplicate to show
    after_echo = world.compare()
    notes = {status: world.status_notes(status) for status in (BOOKED, CONFIRMED, DISPATCHED)}
    completions = [world.completions(o) for o in paid.values()]
    dead = queue_depths(world.amqp_url, [topology.ORDER_LINES.dead, topology.STATUS_CHANGES.dead])
    deadlocks = sum(
        1 for s in syncs for e in s.events(since_start=False)
        if e.get("event") == "batch failed, retrying its messages" and "deadlock" in str(e.get("error", "")).lower()
    )
    statuses_sent = 3 * len(paid)
    figures(
        "3 supplier_sync + 2 status_poller", orders=len(orders), paid_orders=len(paid),
        supplier_orders=after_echo.supplier_orders, lost=after_echo.lost, doubled=after_echo.doubled,
        locks=after_echo.locks, statuses_sent=statuses_sent,
        statuses_applied=statuses_sent - sum(m for _, m, _ in notes.values()),
        statuses_doubled=sum(x for _, _, x in notes.values()), completions=sum(completions),
        echo_deliveries=sum(1 for d in world.shop.webhooks.deliveries() if d["topic"] == "order.updated"),
        dead_letters=sum(dead.values()), deadlocks_retried=deadlocks, locked_after_s=locked_after,
        converge_s=converge,
    )
    assert problem is None, problem
    assert after_echo.exact
    assert all(missing == 0 and extra == 0 for _, missing, extra in notes.values()), notes
    assert completions == [1] * len(paid)
    assert sum(dead.values()) == 0
    assert all(p.alive for p in services)


def statuses_to_the_shop(world: World, paid: dict[str, int]) -> None:
    """Booked (announced by itself), then Confirmed, then Dispatched for every paid order; then the
    completions' echo through ingest and supplier_sync."""

    def notes_of(status: int) -> bool:
        count, missing, _ = world.status_notes(status)
        return count == len(paid) and missing == 0

    wait_until(lambda: notes_of(BOOKED), 60, "a Booked note on every paid order")
    sent = {o["key"]: o["order_id"] for o in world.supplier_orders()}
    for key in paid:
        world.set_supplier_status(sent[key], CONFIRMED)
    wait_until(lambda: notes_of(CONFIRMED), 60, "a Confirmed note on every paid order")
    for key in paid:
        world.set_supplier_status(sent[key], DISPATCHED, tracking_code=f"TRK{sent[key]}",
                                  tracking_url=f"https://track.example.com/{sent[key]}", carrier_name="BRT")
    wait_until(lambda: all(world.completions(o) for o in paid.values()), 60, "every paid order completed")
    # The completions fire order.updated back at ingest: that echo must change nothing.
    assert world.shop.webhooks.wait_idle(30)
    wait_until(lambda: not any(queue_depths(world.amqp_url, work_queues()).values()), 60, "every queue drained")
