"""Order meta written one order at a time and in batches: the client against the shop simulator, whose
POST /orders/batch answers as WooCommerce 9.2.5's WC_REST_Controller::batch_items does."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from shared.clients.shop.client import BATCH_LIMIT, WooCommerceClient, order_gone
from shared.failures.errors import PermanentError, TransientError
from simulators.shop import ShopSimulator, start_in_thread
from tests.support import WebhookReceiver

KEY, SECRET = "ck_batch", "cs_batch"
STATUS = "rewix_sync_status"


@pytest.fixture(scope="module")
def sim_module(receiver: WebhookReceiver) -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET, webhook_url=receiver.url,
                         webhook_secret="batch-secret") as simulator:
        yield simulator


@pytest.fixture
def sim(sim_module: ShopSimulator, receiver: WebhookReceiver) -> ShopSimulator:
    sim_module.reset()
    receiver.reset()
    return sim_module


@pytest.fixture
def client(sim: ShopSimulator) -> WooCommerceClient:
    return WooCommerceClient(sim.url, KEY, SECRET, timeout=5.0)


def meta_of(sim: ShopSimulator, order_id: int) -> dict[str, object]:
    return {m["key"]: m["value"] for m in sim.state.order(order_id)["meta_data"]}


def test_a_meta_write_saves_the_order_fires_order_updated_and_replaces_the_value(
        sim: ShopSimulator, client: WooCommerceClient, receiver: WebhookReceiver) -> None:
    order_id = sim.state.create_order(status="on-hold")["id"]
    before = sim.state.order(order_id)["date_modified_gmt"]
    saved = client.update_order_meta(order_id, {STATUS: "reserved"})
    assert saved["date_modified_gmt"] > before
    client.update_order_meta(order_id, {STATUS: "sent: Booked", "rewix_supplier_order": "4711"})
    meta = meta_of(sim, order_id)
    assert (meta[STATUS], meta["rewix_supplier_order"]) == ("sent: Booked", "4711")
    assert sum(m["key"] == STATUS for m in sim.state.order(order_id)["meta_data"]) == 1
    assert sim.webhooks.wait_idle(5)
    assert [h["X-WC-Webhook-Topic"] for h, _ in receiver.requests] == ["order.created", "order.updated", "order.updated"]
    assert [w["body"] for w in sim.state.writes(order_id)] == [
        {"meta_data": [{"key": STATUS, "value": "reserved"}]},
        {"meta_data": [{"key": STATUS, "value": "sent: Booked"}, {"key": "rewix_supplier_order", "value": "4711"}]},
    ]


def test_a_batch_saves_each_order_fires_each_webhook_and_answers_each(
        sim: ShopSimulator, client: WooCommerceClient, receiver: WebhookReceiver) -> None:
    ids = [sim.state.create_order(status="on-hold")["id"] for _ in range(3)]
    before = {i: sim.state.order(i)["date_modified_gmt"] for i in ids}
    answers = client.update_orders_meta({i: {STATUS: f"reserved {i}"} for i in ids})
    assert [(a.order_id, a.error) for a in answers] == [(i, None) for i in ids]
    for i in ids:
        assert meta_of(sim, i)[STATUS] == f"reserved {i}"
        assert sim.state.order(i)["date_modified_gmt"] > before[i]
        [write] = [w for w in sim.state.writes(i) if w["kind"] == "update"]
        assert write["method"] == "BATCH"
    assert sim.webhooks.wait_idle(5)
    updated = [json.loads(body)["id"] for headers, body in receiver.requests
               if headers["X-WC-Webhook-Topic"] == "order.updated"]
    assert updated == ids


def test_the_wire_shape_of_a_batch_and_its_per_item_errors(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id, other = (sim.state.create_order()["id"] for _ in range(2))
    sim.state.set_faults({"fail_batch_items": {"order_ids": [other], "status": 500, "count": 1}})
    # The whole answer, as WooCommerce sends it: {"update": [the order as saved | {"id", "error"}]}.
    body = {"update": [{"id": order_id, "meta_data": [{"key": STATUS, "value": "pending"}]},
                       {"id": 999_999, "meta_data": []}, {"id": other, "meta_data": []}]}
    raw = client._call("POST", "/orders/batch", json_body=body).json()
    assert list(raw) == ["update"] and len(raw["update"]) == 3
    saved, missing, failed = raw["update"]
    assert saved["id"] == order_id and saved["_links"]["self"] and saved["status"] == "pending"
    assert missing == {"id": 999_999, "error": {"code": "woocommerce_rest_shop_order_invalid_id",
                                                "message": "Invalid ID.", "data": {"status": 400}}}
    assert failed["id"] == other and failed["error"]["data"] == {"status": 500}

    # Through the client: one answer each, the errors typed as a PUT's would be.
    sim.state.set_faults({"fail_batch_items": {"order_ids": [other], "status": 503, "count": 1}})
    answers = {a.order_id: a.error for a in client.update_orders_meta(
        {order_id: {STATUS: "reserved"}, 999_999: {STATUS: "reserved"}, other: {STATUS: "reserved"}})}
    assert answers[order_id] is None
    assert isinstance(answers[999_999], PermanentError) and order_gone(answers[999_999])
    assert isinstance(answers[other], TransientError) and answers[other].status == 503
    assert meta_of(sim, order_id)[STATUS] == "reserved" and STATUS not in meta_of(sim, other)


def test_more_than_the_limit_is_refused_whole(sim: ShopSimulator, client: WooCommerceClient) -> None:
    with pytest.raises(ValueError):
        client.update_orders_meta({i: {STATUS: "x"} for i in range(BATCH_LIMIT + 1)})
    ids = [sim.state.create_order()["id"] for _ in range(3)]
    sim.state.batch_limit = 2  # a plugin's woocommerce_rest_batch_items_limit filter
    with pytest.raises(PermanentError) as refused:
        client.update_orders_meta({i: {STATUS: "x"} for i in ids})
    assert refused.value.status == 413 and "woocommerce_rest_request_entity_too_large" in refused.value.reason
    assert "more than 2 items" in refused.value.reason
    assert all(sim.state.writes(i) == [] for i in ids)  # nothing of it was saved


def test_a_write_to_an_order_the_shop_no_longer_has_says_so(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    sim.state.delete(order_id)
    with pytest.raises(PermanentError) as gone:
        client.update_order_meta(order_id, {STATUS: "released"})
    assert order_gone(gone.value) and gone.value.status == 400
    assert not order_gone(PermanentError("shop PUT /orders/1: 400 rest_invalid_param: Invalid parameter(s)", status=400))


def test_a_batch_failing_whole_is_an_update_fault(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    sim.state.set_faults({"fail_updates": {"status": 502, "count": 1, "after_write": True}})
    with pytest.raises(TransientError) as failed:
        client.update_orders_meta({order_id: {STATUS: "reserved"}})
    assert failed.value.outcome_unknown  # the shop may have saved it: the caller reads before writing again
    assert meta_of(sim, order_id)[STATUS] == "reserved"
    # An empty batch is PHP's empty array, a JSON list.
    assert client._call("POST", "/orders/batch", json_body={"update": []}).json() == []
