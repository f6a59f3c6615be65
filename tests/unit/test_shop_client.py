"""The WooCommerce client against the in-process shop simulator, and the simulator's webhooks."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.clients.shop.client import WooCommerceClient
from shared.clients.shop.signature import verify
from shared.failures.errors import SHOP, AccountRefused, ConnectionFailed, PermanentError, TimedOut, TransientError
from simulators.shop import ShopControl, ShopSimulator, start_in_thread
from tests.support import RecordingSession, WebhookReceiver

KEY = "ck_0123456789abcdef"
SECRET = "cs_very-secret-value"
HOOK_SECRET = "hook&amp;secret"  # stored entity-encoded, as WooCommerce may keep it
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim_module(receiver: WebhookReceiver) -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET,
                         webhook_url=receiver.url, webhook_secret=HOOK_SECRET) as simulator:
        yield simulator


@pytest.fixture
def sim(sim_module: ShopSimulator, receiver: WebhookReceiver) -> ShopSimulator:
    sim_module.reset()
    receiver.reset()
    return sim_module


@pytest.fixture
def client(sim: ShopSimulator) -> WooCommerceClient:
    return WooCommerceClient(sim.url, KEY, SECRET, timeout=5.0)


# -- reading ---------------------------------------------------------------------------------


def test_get_order_returns_the_full_resource(sim: ShopSimulator, client: WooCommerceClient) -> None:
    created = sim.state.create_order(status="processing", customer_note="Bitte klingeln")
    order = client.get_order(created["id"])
    assert order == sim.state.order(created["id"])
    assert order["billing"]["city"] == "Łódź" and order["shipping"]["phone"]
    assert isinstance(order["total"], str) and isinstance(order["line_items"][0]["price"], float)
    assert order["date_paid_gmt"] and order["date_completed_gmt"] is None
    assert "T" in order["date_modified_gmt"] and "+" not in order["date_modified_gmt"]


def test_listing_follows_total_pages_across_250_orders(sim: ShopSimulator) -> None:
    sim.webhooks.configure(enabled=False)
    ids = {sim.state.create_order()["id"] for _ in range(250)}
    session = RecordingSession()
    client = WooCommerceClient(sim.url, KEY, SECRET, session=session)
    since = datetime.now(timezone.utc) - timedelta(days=1)

    assert client.count_orders_modified_since(since) == 250
    session.calls.clear()
    seen = [order["id"] for order in client.iter_orders_modified_since(since)]

    assert sorted(seen) == sorted(ids)
    assert session.pages == ["1", "2", "3"]


def test_modified_after_filters_and_orders_by_modification(sim: ShopSimulator, client: WooCommerceClient) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    old, middle, recent = (sim.state.create_order(date_created_gmt=now - timedelta(hours=h))["id"] for h in (3, 2, 1))
    since = now - timedelta(minutes=90)

    assert [o["id"] for o in client.iter_orders_modified_since(since)] == [recent]

    sim.state.admin_edit(old, {"status": "on-hold"})
    assert [o["id"] for o in client.iter_orders_modified_since(since)] == [recent, old]
    assert client.count_orders_modified_since(since) == 2
    assert middle not in [o["id"] for o in client.iter_orders_modified_since(since)]


def test_trashed_orders_are_left_out_of_any(sim: ShopSimulator, client: WooCommerceClient) -> None:
    kept, trashed = sim.state.create_order()["id"], sim.state.create_order()["id"]
    sim.state.trash(trashed)
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert [o["id"] for o in client.iter_orders_modified_since(since)] == [kept]
    assert client.get_order(trashed)["status"] == "trash"


# -- writing ---------------------------------------------------------------------------------


def test_notes_are_added_and_listed(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    note = client.add_note(order_id, "Supplier order R-42 placed.")
    assert note["note"] == "Supplier order R-42 placed." and note["author"] == "WooCommerce"
    assert note["customer_note"] is False and set(note) >= {"id", "date_created", "date_created_gmt"}

    client.add_note(order_id, "Your parcel is on its way.", customer_note=True)
    assert [n["note"] for n in client.list_notes(order_id)] == ["Your parcel is on its way.", "Supplier order R-42 placed."]
    assert [w["kind"] for w in sim.state.writes(order_id)] == ["note", "note"]


def test_complete_order_sets_status_and_merges_meta(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order(status="processing")["id"]
    before = sim.state.order(order_id)
    assert before is not None

    order = client.complete_order(order_id, meta={"_rewix_order_id": "R-42", "_tracking": "1Z999"})
    assert order["status"] == "completed" and order["date_completed_gmt"]
    assert order["date_modified_gmt"] > before["date_modified_gmt"]
    order = client.complete_order(order_id, meta={"_tracking": "1Z000"})
    meta = {m["key"]: m["value"] for m in order["meta_data"]}
    assert meta["_rewix_order_id"] == "R-42" and meta["_tracking"] == "1Z000"
    assert sum(m["key"] == "_tracking" for m in order["meta_data"]) == 1
    notes = [n["note"] for n in client.list_notes(order_id)]
    assert notes == ["Order status changed from Processing to Completed."]
    assert [w["body"]["status"] for w in sim.state.writes(order_id)] == ["completed", "completed"]


def test_every_save_moves_date_modified_forward(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    stamps = [client.update_order(order_id, {"customer_note": str(i)})["date_modified_gmt"] for i in range(3)]
    assert stamps == sorted(set(stamps))


# -- errors ----------------------------------------------------------------------------------


def test_wrong_secret_is_refused_keys_and_never_leaks(sim: ShopSimulator) -> None:
    client = WooCommerceClient(sim.url, KEY, "cs_wrong-secret")
    with pytest.raises(AccountRefused) as caught:
        client.get_order(1)
    error = caught.value
    assert error.status == 401 and "woocommerce_rest_authentication_error" in error.reason
    assert error.account == SHOP and "WC_CONSUMER_KEY" in error.reason
    assert all("cs_wrong-secret" not in text for text in (str(error), error.body, repr(client)))


def test_a_revoked_key_is_refused_keys_on_every_route_but_the_public_index(sim: ShopSimulator,
                                                                         client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    control = ShopControl(sim.url)
    control.revoke_keys()
    try:
        for call in (lambda: client.get_order(order_id), lambda: client.add_note(order_id, "x"), client.probe_keys,
                     lambda: client.update_orders_meta({order_id: {"k": "v"}})):
            with pytest.raises(AccountRefused) as caught:
                call()
            assert caught.value.account == SHOP and caught.value.status == 401
        assert client.site_index()["home"]  # public: no key asked, none refused
    finally:
        control.revoke_keys(False)
    client.probe_keys()
    assert client.get_order(order_id)["id"] == order_id


def test_the_client_shows_neither_half_of_its_keys() -> None:
    client = WooCommerceClient("http://shop.example", "ck_live_4f2a9", "cs_live_8e1d0")
    assert repr(client) == "WooCommerceClient('http://shop.example')"
    assert "ck_live" not in str(client) and "cs_live" not in str(client)


def test_unknown_order_is_permanent(client: WooCommerceClient) -> None:
    with pytest.raises(PermanentError) as caught:
        client.get_order(999_999)
    assert caught.value.status == 404 and "woocommerce_rest_shop_order_invalid_id" in caught.value.reason
    with pytest.raises(PermanentError) as caught:
        client.update_order(999_999, {"status": "completed"})
    assert caught.value.status == 400


def test_invalid_status_is_permanent(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    with pytest.raises(PermanentError) as caught:
        client.update_order(order_id, {"status": "shipped"})
    assert caught.value.status == 400 and "rest_invalid_param" in caught.value.reason


def test_injected_500_is_transient_and_then_passes(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    sim.state.set_faults({"fail_notes": {"status": 500, "count": 1}})
    with pytest.raises(TransientError) as caught:
        client.add_note(order_id, "first try")
    assert caught.value.status == 500 and caught.value.outcome_unknown
    assert sim.state.writes(order_id) == []
    client.add_note(order_id, "second try")
    assert [w["body"]["note"] for w in sim.state.writes(order_id)] == ["second try"]


def test_500_after_the_write_is_applied(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order(status="processing")["id"]
    sim.state.set_faults({"fail_updates": {"status": 500, "count": 1, "after_write": True}})
    with pytest.raises(TransientError) as caught:
        client.complete_order(order_id, meta={"_rewix_order_id": "R-9"})
    assert caught.value.outcome_unknown
    assert client.get_order(order_id)["status"] == "completed"


def test_429_carries_retry_after(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    sim.state.set_faults({"fail_updates": {"status": 429, "count": 1, "retry_after": 3}})
    with pytest.raises(TransientError) as caught:
        client.complete_order(order_id, meta={})
    assert caught.value.status == 429 and caught.value.retry_after == 3.0


def test_timeout_on_a_write_leaves_the_outcome_unknown(sim: ShopSimulator) -> None:
    order_id = sim.state.create_order()["id"]
    sim.state.set_faults({"latency_ms": 600})
    with pytest.raises(TimedOut) as caught:
        WooCommerceClient(sim.url, KEY, SECRET, timeout=0.2).add_note(order_id, "slow")
    assert caught.value.outcome_unknown


def test_refused_connection_is_transient_and_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed) as caught:
        WooCommerceClient(f"http://127.0.0.1:{port}", KEY, SECRET, timeout=1).add_note(1, "x")
    assert caught.value.outcome_unknown is False


# -- webhooks --------------------------------------------------------------------------------


def test_webhooks_are_signed_and_carry_the_topics(sim: ShopSimulator, client: WooCommerceClient,
                                                  receiver: WebhookReceiver) -> None:
    order_id = sim.state.create_order(status="processing")["id"]
    client.add_note(order_id, "notes fire no webhook")
    client.complete_order(order_id, meta={"_rewix_order_id": "R-1"})
    sim.state.trash(order_id)
    sim.state.restore(order_id)
    assert sim.webhooks.wait_idle(5)

    topics = [headers["X-WC-Webhook-Topic"] for headers, _ in receiver.requests]
    assert topics == ["order.created", "order.updated", "order.deleted", "order.restored"]
    for headers, body in receiver.requests:
        assert verify(body, headers["X-WC-Webhook-Signature"], "hook&secret")
        assert headers["User-Agent"] == "WooCommerce/9.2.5 Hookshot (WordPress/7.0)"
        assert headers["X-WC-Webhook-Source"] == sim.url + "/"
        assert headers["X-WC-Webhook-Resource"] == "order" and headers["X-WC-Webhook-ID"] == "7"
        assert len(headers["X-WC-Webhook-Delivery-ID"]) == 32
    assert receiver.requests[2][1] == b'{"id":%d}' % order_id
    assert receiver.requests[2][0]["X-WC-Webhook-Event"] == "deleted"
    updated = json.loads(receiver.requests[1][1])
    assert updated["status"] == "completed" and b"\\/" in receiver.requests[1][1]
    assert [d["status"] for d in sim.webhooks.deliveries()] == [200, 200, 200, 200]


def test_disabled_webhook_loses_events(sim: ShopSimulator, receiver: WebhookReceiver) -> None:
    sim.webhooks.configure(enabled=False)
    sim.state.create_order()
    assert sim.webhooks.wait_idle(5)
    assert receiver.requests == []
    assert [(d["topic"], d["sent"]) for d in sim.webhooks.deliveries()] == [("order.created", False)]


def test_seventh_consecutive_failure_disables_the_webhook(sim: ShopSimulator, receiver: WebhookReceiver) -> None:
    receiver.status = 500
    for _ in range(8):
        sim.state.create_order()
        assert sim.webhooks.wait_idle(5)
    assert len(receiver.requests) == 7
    assert sim.webhooks.status()["status"] == "disabled"
    assert [d["sent"] for d in sim.webhooks.deliveries()] == [True] * 7 + [False]


def test_ping_is_form_encoded_and_unsigned(sim: ShopSimulator, receiver: WebhookReceiver) -> None:
    assert sim.webhooks.send_ping()["ok"]
    headers, body = receiver.requests[-1]
    assert body == b"webhook_id=7"
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert not any(name.startswith("X-WC-") for name in headers)


# -- the separate process --------------------------------------------------------------------


def test_simulator_process_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.shop", "--port", "0", "--consumer-key", KEY, "--consumer-secret", SECRET],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        control = ShopControl(url)
        order = control.create_order(status="on-hold", billing={"country": "DE"})
        assert WooCommerceClient(url, KEY, SECRET).get_order(order["id"])["billing"]["country"] == "DE"
        control.edit_order(order["id"], quantity={order["line_items"][0]["id"]: 3})
        assert control.wait_deliveries(1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


# -- the site: WordPress's REST index and the source of the deliveries --------------------------------


def test_the_rest_index_says_where_the_site_is_without_a_key(sim: ShopSimulator) -> None:
    session = RecordingSession()
    index = WooCommerceClient(sim.url, KEY, SECRET, timeout=5.0, session=session).site_index()
    assert index == {"home": sim.url, "url": sim.url}  # `_fields=home,url`: only those
    [(path, params)] = session.calls
    assert path.endswith("/wp-json/") and params == {"_fields": "home,url"}
    # Asked without credentials: WordPress would check a key it does not know on its own routes.
    whole = json.loads(urllib.request.urlopen(sim.url + "/wp-json/", timeout=5).read())
    assert {"name", "url", "home", "namespaces", "routes"} <= set(whole) and "wc/v3" in whole["namespaces"]
    assert json.loads(urllib.request.urlopen(sim.url + "/wp-json", timeout=5).read())["home"] == sim.url


def test_a_shop_with_its_own_site_url_reports_it_and_sends_it_as_the_source(receiver: WebhookReceiver) -> None:
    receiver.reset()
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET, webhook_url=receiver.url,
                         webhook_secret=HOOK_SECRET, site_url="https://www.shop.example.com/store/") as shop:
        # The index is public: read where the simulator listens, it names the home it was given.
        index = WooCommerceClient(shop.bound_url, KEY, SECRET, timeout=5.0).site_index()
        assert index == {"home": "https://www.shop.example.com/store", "url": "https://www.shop.example.com/store"}
        shop.state.create_order(status="pending")
        assert shop.webhooks.wait_idle(5)
    [(headers, _body)] = receiver.requests
    assert headers["X-WC-Webhook-Source"] == "https://www.shop.example.com/store/"  # home_url('/')
