"""What the customer sees of a dispatch: one customer note with the tracking, and the tracking plugin's item."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.clients.rewix import DISPATCHED, READY
from shared.failures.errors import PermanentError
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from services.status_poller.applier import StatusChangeApplier
from tests.conftest import queue_depth
from tests.integration.test_status_poller import (  # noqa: F401 (world is a fixture)
    World, change_message, delivery_of, start_service, stop_service, world,
)
from tests.support import wait_until

CODE, URL, CARRIER = "1Z999AA10123456784", "https://track.example/?n=1Z999AA10123456784&l=en", "UPS"


def customer_notes(world: World, shop_order_id: int) -> list[str]:
    return [n["note"] for n in world.shop.state.notes(shop_order_id) if n["customer_note"]]


def test_a_dispatched_order_gets_one_customer_note_with_the_tracking_link(world: World, tmp_path: Path) -> None:
    order = world.open_order(status=READY)
    message = change_message(order, DISPATCHED, READY, tracking_code=CODE, tracking_url=URL, carrier_name=CARRIER)
    publisher = Publisher(world.amqp_url)
    for _ in range(2):  # delivered twice: still told once
        publisher.publish(message.to_bytes(), routing_key=topology.STATUS_CHANGE, message_id=message.message_id)
    publisher.close()
    log_path = tmp_path / "status_poller.log"
    process = start_service(world.env(), log_path)
    try:
        wait_until(lambda: queue_depth(world.amqp_url, topology.STATUS_CHANGES.name) == 0, what="queue drained")
        wait_until(lambda: world.shop.state.order(order["shop_order_id"])["status"] == "completed", what="completed")
        wait_until(lambda: customer_notes(world, order["shop_order_id"]), what="the customer note")
    finally:
        stop_service(process, log_path)
    [note] = customer_notes(world, order["shop_order_id"])
    assert note == f"Your order has been shipped with {CARRIER}. Tracking code: {CODE}. Follow your parcel here: {URL}"
    # The shop has no Shipment Tracking plugin: the tracking is in the order meta, as before.
    meta = {m["key"]: m["value"] for m in world.shop.state.order(order["shop_order_id"])["meta_data"]}
    assert (meta["rewix_tracking_code"], meta["rewix_tracking_url"], meta["rewix_carrier"]) == (CODE, URL, CARRIER)
    private = [n["note"] for n in world.shop.state.notes(order["shop_order_id"]) if not n["customer_note"]]
    assert any(n.startswith(f"Supplier order {order['supplier_order_id']} is now Dispatched.") for n in private)


def test_the_customer_note_is_written_once_across_a_failed_completion(world: World) -> None:
    order = world.open_order(status=READY)
    applier = StatusChangeApplier(world.database_url, world.shop_client)
    message = change_message(order, DISPATCHED, READY, tracking_code=CODE, tracking_url=URL, carrier_name=CARRIER)
    world.shop.state.set_faults({"fail_updates": {"status": 500, "count": 1, "after_write": True}})
    [first] = applier([delivery_of(message)])
    assert type(first).__name__ == "RetryLater"
    for tag in (2, 3):
        [again] = applier([delivery_of(message, tag=tag)])
        assert type(again).__name__ == "Ack"
    assert len(customer_notes(world, order["shop_order_id"])) == 1
    kinds = [w["kind"] for w in world.writes(order["shop_order_id"])]
    assert kinds == ["note", "update", "note"]


def test_the_customer_note_can_be_switched_off(world: World, tmp_path: Path) -> None:
    order = world.open_order(status=READY)
    applier = StatusChangeApplier(world.database_url, world.shop_client, customer_tracking_note=False)
    message = change_message(order, DISPATCHED, READY, tracking_code=CODE, tracking_url=URL, carrier_name=CARRIER)
    [outcome] = applier([delivery_of(message)])
    assert type(outcome).__name__ == "Ack"
    assert customer_notes(world, order["shop_order_id"]) == []
    assert world.shop.state.order(order["shop_order_id"])["status"] == "completed"


def test_an_order_given_up_in_the_shop_tells_the_customer_nothing(world: World) -> None:
    order = world.open_order(status=READY)
    world.shop.state.admin_edit(order["shop_order_id"], {"status": "cancelled"})
    applier = StatusChangeApplier(world.database_url, world.shop_client)
    message = change_message(order, DISPATCHED, READY, tracking_code=CODE, tracking_url=URL, carrier_name=CARRIER)
    [outcome] = applier([delivery_of(message)])
    assert type(outcome).__name__ == "Ack"
    assert customer_notes(world, order["shop_order_id"]) == []
    assert world.shop.state.order(order["shop_order_id"])["status"] == "cancelled"


def test_the_tracking_goes_to_the_shipment_tracking_plugin_once_where_the_shop_has_it(world: World) -> None:
    world.shop.tracking.set_enabled(True)
    order = world.open_order(status=READY)
    applier = StatusChangeApplier(world.database_url, world.shop_client)
    message = change_message(order, DISPATCHED, READY, tracking_code=CODE, tracking_url=URL, carrier_name=CARRIER)
    # The completion fails after the shop saved it: the retry looks before writing anything again.
    world.shop.state.set_faults({"fail_updates": {"status": 502, "count": 1, "after_write": True}})
    outcomes = [applier([delivery_of(message, tag=tag)])[0] for tag in (1, 2, 3)]
    assert [type(o).__name__ for o in outcomes] == ["RetryLater", "Ack", "Ack"]
    [item] = world.shop.tracking.items(order["shop_order_id"])
    assert (item["tracking_number"], item["custom_tracking_provider"], item["custom_tracking_link"]) == (CODE, CARRIER, URL)
    assert item["tracking_provider"] == "" and item["date_shipped"] == message.observed_at.date().isoformat()
    assert len(customer_notes(world, order["shop_order_id"])) == 1
    # The order meta keeps the tracking too (the operator page and reconcile read it).
    meta = {m["key"]: m["value"] for m in world.shop.state.order(order["shop_order_id"])["meta_data"]}
    assert meta["rewix_tracking_code"] == CODE


def test_the_plugins_route_answers_as_the_plugin_does_and_is_gone_without_it(world: World) -> None:
    order = world.open_order(status=READY)
    client = world.shop_client
    assert client.list_shipment_trackings(order["shop_order_id"]) is None  # no plugin: 404 rest_no_route
    assert client.add_shipment_tracking(order["shop_order_id"], tracking_number=CODE) is None
    world.shop.tracking.set_enabled(True)
    assert client.list_shipment_trackings(order["shop_order_id"]) == []
    added = client.add_shipment_tracking(order["shop_order_id"], tracking_number=CODE, provider=CARRIER, link=URL,
                                         date_shipped="2026-12-01")
    assert added["tracking_number"] == CODE and added["tracking_provider"] == CARRIER and added["tracking_link"] == URL
    assert [i["tracking_id"] for i in client.list_shipment_trackings(order["shop_order_id"])] == [added["tracking_id"]]
    # An order the shop does not know is an error, not a missing plugin.
    with pytest.raises(PermanentError) as refused:
        client.list_shipment_trackings(999_999)
    assert refused.value.status == 404
