"""The shop catch-up cannot skip: trashed orders are caught up, an order saved while a pass reads
does not make another slip past, and a pass with nothing changed is one request.
Real RabbitMQ and PostgreSQL, the shop simulator."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.clients.shop import WooCommerceClient
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.orders.intake import OrderIntake
from services.status_poller.shop_watch.catchup import ShopCatchUp
from simulators.shop import ShopControl
from tests.conftest import drain
from tests.integration.test_status_poller import CK, CS, SUPPLIER_LINE, World, world  # noqa: F401
from tests.support import RecordingSession

LINES = topology.ORDER_LINES.name


def test_an_order_trashed_without_a_webhook_is_caught_up_and_released(world: World) -> None:
    world.map_supplier_line()
    go_live = datetime.now(timezone.utc) - timedelta(hours=1)
    order = world.shop.state.create_order(status="on-hold", lines=[SUPPLIER_LINE])
    _first, lines = world.catchup_pass(go_live)
    assert {(m.order_id, m.status) for m in lines} == {(order["id"], "on-hold")}

    # Trashed in the shop; the order.deleted webhook never reached us. status=any leaves it out.
    world.shop.state.trash(order["id"])
    _second, lines = world.catchup_pass(go_live)
    assert [(m.order_id, m.status) for m in lines] == [(order["id"], "trash")]
    assert all(m.source == "catchup" for m in lines)


def test_an_order_saved_while_the_pass_reads_makes_none_slip_past(world: World) -> None:
    """With page offsets, the 101st order slides onto page 1 after it was read and is lost for good."""
    world.map_supplier_line()
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=30)
    world.shop.webhooks.configure(enabled=False)
    ids = [world.shop.state.create_order(status="on-hold", lines=[SUPPLIER_LINE],
                                         date_created_gmt=base + timedelta(seconds=i))["id"] for i in range(150)]
    # Right after the first page is answered, an order on it is edited in the shop.
    ShopControl(world.shop.url).on_listing(ids[2], changes={"customer_note": "Please ring twice"})
    result, lines = world.catchup_pass(base - timedelta(minutes=1))
    assert {m.order_id for m in lines} == set(ids)
    assert result.seen == 151  # the edited order is read again at its new place
    newest = max(datetime.fromisoformat(o["date_modified_gmt"]) for o in
                 (world.shop.state.order(i) for i in ids)).replace(tzinfo=timezone.utc)
    assert result.watermark == newest


def test_an_idle_pass_is_one_request_and_the_watermark_stays(world: World) -> None:
    world.map_supplier_line()
    session = RecordingSession()
    shop = WooCommerceClient(world.shop.url, CK, CS, timeout=5, session=session)
    go_live = datetime.now(timezone.utc) - timedelta(hours=1)
    world.shop.state.create_order(status="on-hold", lines=[SUPPLIER_LINE])
    catchup_publisher = Publisher(world.amqp_url)
    try:
        catchup = ShopCatchUp(world.database_url, shop, OrderIntake(world.database_url, catchup_publisher), 60,
                              go_live_at=go_live)
        first = catchup.run_once()
        session.calls.clear()
        # Nothing changed since: one listing, and the watermark does not move.
        idle = catchup.run_once()
    finally:
        catchup_publisher.close()
    assert session.paths == ["/orders"]
    assert idle.watermark == first.watermark and idle.seen == 1  # the overlap re-reads the last minute
    drain(world.amqp_url, LINES)
