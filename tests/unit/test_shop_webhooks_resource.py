"""The shop simulator's /webhooks resource and its deliveries, through the client, as WooCommerce behaves."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shared.clients.shop.auth import shop_auth
from shared.clients.shop.client import WooCommerceClient
from shared.clients.shop.signature import verify
from shared.failures.errors import PermanentError
from simulators.shop import ShopSimulator, start_in_thread
from tests.support import WebhookReceiver

KEY, SECRET = "ck_webhooks", "cs_webhooks"
HOOK_SECRET = "Secret0123456789abcdefghijklmnopq"


@pytest.fixture(scope="module")
def shop_module() -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET) as simulator:
        yield simulator


@pytest.fixture
def shop(shop_module: ShopSimulator, receiver: WebhookReceiver) -> ShopSimulator:
    shop_module.reset()
    receiver.reset()
    return shop_module


@pytest.fixture
def client(shop: ShopSimulator) -> WooCommerceClient:
    return WooCommerceClient(shop.url, KEY, SECRET)


def create(client: WooCommerceClient, receiver: WebhookReceiver, topic: str = "order.created", **extra: Any) -> dict:
    return client.create_webhook(name=f"sync {topic}", topic=topic, delivery_url=receiver.url, secret=HOOK_SECRET,
                                 **extra)


def signed_get(shop: ShopSimulator, path: str, **params: Any) -> requests.Response:
    return requests.get(shop.url + "/wp-json/wc/v3" + path, params=params, auth=shop_auth(shop.url, KEY, SECRET),
                        timeout=5)


def inside(shop: ShopSimulator, webhook_id: int) -> dict[str, Any]:
    [found] = shop.webhooks.inside(webhook_id)
    return found


def test_create_is_always_active_pings_at_once_and_never_shows_the_secret(shop: ShopSimulator,
                                                                         client: WooCommerceClient,
                                                                         receiver: WebhookReceiver) -> None:
    response = requests.post(shop.url + "/wp-json/wc/v3/webhooks", auth=shop_auth(shop.url, KEY, SECRET), timeout=5,
                             json={"name": "n", "topic": "order.updated", "delivery_url": receiver.url,
                                   "secret": HOOK_SECRET, "status": "paused"})
    assert response.status_code == 201
    created = response.json()
    assert response.headers["Location"].endswith(f"/wp-json/wc/v3/webhooks/{created['id']}")
    assert created["status"] == "active" and created["topic"] == "order.updated"
    assert (created["resource"], created["event"]) == ("order", "updated")
    assert receiver.pings() == [f"webhook_id={created['id']}".encode()]
    for shown in (created, client.list_webhooks()[0], signed_get(shop, f"/webhooks/{created['id']}").json()):
        assert "secret" not in shown and "failure_count" not in shown and HOOK_SECRET not in str(shown)
    assert inside(shop, created["id"])["secret"] == HOOK_SECRET
    assert inside(shop, created["id"])["pending_delivery"] is False  # the ping got its 200


def test_create_checks_topic_url_and_status(shop: ShopSimulator, client: WooCommerceClient,
                                            receiver: WebhookReceiver) -> None:
    for fields, code in (
        ({"topic": "order.exploded"}, "woocommerce_rest_shop_webhook_invalid_topic"),
        ({"delivery_url": "ftp://x.example.com/"}, "woocommerce_rest_shop_webhook_invalid_delivery_url"),
        ({"status": "sleeping"}, "rest_invalid_param"),
    ):
        body = {"name": "n", "topic": "order.created", "delivery_url": receiver.url, **fields}
        response = requests.post(shop.url + "/wp-json/wc/v3/webhooks", json=body, timeout=5,
                                 auth=shop_auth(shop.url, KEY, SECRET))
        assert (response.status_code, response.json()["code"]) == (400, code)
    assert client.list_webhooks() == []


def test_without_a_secret_woocommerce_makes_a_50_character_one(shop: ShopSimulator, receiver: WebhookReceiver) -> None:
    response = requests.post(shop.url + "/wp-json/wc/v3/webhooks", timeout=5, auth=shop_auth(shop.url, KEY, SECRET),
                             json={"topic": "order.created", "delivery_url": receiver.url})
    assert response.status_code == 201 and response.json()["name"].startswith("Webhook created on ")
    assert len(inside(shop, response.json()["id"])["secret"]) == 50


def test_list_filters_by_status_and_pages(shop: ShopSimulator, client: WooCommerceClient, receiver: WebhookReceiver) -> None:
    ids = [create(client, receiver, topic)["id"] for topic in ("order.created", "order.updated", "order.deleted")]
    client.update_webhook(ids[1], {"status": "paused"})
    shop.webhooks.admin_edit(ids[2], status="disabled")
    assert [w["id"] for w in client.list_webhooks(per_page=1)] == ids  # three pages
    for status, expected in (("active", ids[:1]), ("paused", ids[1:2]), ("disabled", ids[2:]), ("all", ids)):
        assert [w["id"] for w in client.list_webhooks(status)] == expected
    first = signed_get(shop, "/webhooks", per_page=2, orderby="id", order="asc")
    assert (first.headers["X-WP-Total"], first.headers["X-WP-TotalPages"]) == ("3", "2")
    assert 'rel="next"' in first.headers["Link"] and "page=2" in first.headers["Link"]
    # As WooCommerce does, the link repeats the request's parameters, its oauth_* ones too: followed
    # as it is, it carries the first request's signature and nonce, and is refused.
    assert "oauth_nonce=" in first.headers["Link"]
    following = requests.get(first.headers["Link"].split(">;")[0].lstrip("<"), timeout=5)
    assert following.status_code == 401
    assert following.json()["code"] == "woocommerce_rest_authentication_error"
    again = requests.get(first.url, timeout=5)
    assert again.status_code == 401 and again.json()["message"] == "Invalid nonce - nonce has already been used."
    assert signed_get(shop, "/webhooks", status="sleeping").status_code == 400


def test_update_saves_and_pings_a_new_url_and_delete_needs_force(shop: ShopSimulator, client: WooCommerceClient,
                                                                 receiver: WebhookReceiver) -> None:
    webhook = create(client, receiver)
    receiver.requests.clear()
    client.update_webhook(webhook["id"], {"secret": "another-secret"})
    assert receiver.pings() == []  # nothing to ping for: same URL, last ping succeeded
    updated = client.update_webhook(webhook["id"], {"delivery_url": receiver.url + "?v=2", "status": "active"})
    assert updated["delivery_url"] == receiver.url + "?v=2"
    assert receiver.pings() == [f"webhook_id={webhook['id']}".encode()]
    assert inside(shop, webhook["id"])["secret"] == "another-secret"
    with pytest.raises(PermanentError) as raised:
        client.update_webhook(webhook["id"], {"status": "sleeping"})
    assert raised.value.status == 400

    no_force = requests.delete(shop.url + f"/wp-json/wc/v3/webhooks/{webhook['id']}", timeout=5,
                               auth=shop_auth(shop.url, KEY, SECRET))
    assert (no_force.status_code, no_force.json()["code"]) == (501, "woocommerce_rest_trash_not_supported")
    assert client.delete_webhook(webhook["id"])["id"] == webhook["id"]
    assert client.list_webhooks() == []
    with pytest.raises(PermanentError) as gone:
        client.delete_webhook(webhook["id"])
    assert gone.value.status == 404


def test_events_go_to_active_webhooks_of_their_topic_only(shop: ShopSimulator, client: WooCommerceClient,
                                                          receiver: WebhookReceiver) -> None:
    created = create(client, receiver, "order.created")
    updated = create(client, receiver, "order.updated")
    client.update_webhook(updated["id"], {"status": "paused"})
    order = shop.state.create_order()
    shop.state.admin_edit(order["id"], {"customer_note": "edit"})
    assert shop.webhooks.wait_idle(5)
    assert receiver.events() == ["order.created"]
    headers, body = [r for r in receiver.requests if "X-WC-Webhook-Topic" in r[0]][0]
    assert headers["X-WC-Webhook-ID"] == str(created["id"]) and verify(body, headers["X-WC-Webhook-Signature"],
                                                                       HOOK_SECRET)
    lost = [d for d in shop.webhooks.deliveries() if not d["sent"]]
    assert [(d["webhook_id"], d["topic"], d["error"]) for d in lost] == [
        (updated["id"], "order.updated", "not sent: webhook paused")]


def test_the_7th_failure_in_a_row_disables_and_reactivating_keeps_the_count(shop: ShopSimulator,
                                                                            client: WooCommerceClient,
                                                                            receiver: WebhookReceiver) -> None:
    webhook = create(client, receiver)
    receiver.status = 503
    counts = []
    for _ in range(8):
        shop.state.create_order()
        assert shop.webhooks.wait_idle(5)
        counts.append((inside(shop, webhook["id"])["failure_count"], inside(shop, webhook["id"])["status"]))
    assert counts == [(1, "active"), (2, "active"), (3, "active"), (4, "active"), (5, "active"), (6, "active"),
                      (6, "disabled"), (6, "disabled")]
    assert len(receiver.events()) == 7

    assert client.update_webhook(webhook["id"], {"status": "active"})["status"] == "active"
    assert inside(shop, webhook["id"])["failure_count"] == 6  # re-activation does not reset it
    shop.state.create_order()
    assert shop.webhooks.wait_idle(5)
    assert inside(shop, webhook["id"])["status"] == "disabled"  # one more failure is enough

    client.update_webhook(webhook["id"], {"status": "active"})
    receiver.status = 302  # 200..302 is a success
    shop.state.create_order()
    assert shop.webhooks.wait_idle(5)
    assert (inside(shop, webhook["id"])["failure_count"], inside(shop, webhook["id"])["status"]) == (0, "active")


def test_a_webhook_whose_first_ping_failed_pings_again_after_its_next_success(shop: ShopSimulator,
                                                                              client: WooCommerceClient,
                                                                              receiver: WebhookReceiver) -> None:
    receiver.status = 404
    webhook = create(client, receiver)
    assert webhook["status"] == "active" and inside(shop, webhook["id"])["pending_delivery"] is True
    receiver.status = 200
    shop.state.create_order()
    assert shop.webhooks.wait_idle(5)
    assert receiver.pings() == [f"webhook_id={webhook['id']}".encode()] * 2
    assert inside(shop, webhook["id"])["pending_delivery"] is False
