"""The shop simulator's listing as WooCommerce's v3 orders controller reads it, and the client's
keyset walk, batched reads and 404s against it."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from shared.clients.shop.auth import shop_auth
from shared.clients.shop.client import WooCommerceClient
from shared.failures.errors import PermanentError
from simulators.shop import ShopControl, ShopSimulator, start_in_thread
from tests.support import RecordingSession

KEY = "ck_listing"
SECRET = "cs_listing-secret"
LIVE = ["pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"]


@pytest.fixture(scope="module")
def sim_module() -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET) as simulator:
        yield simulator


@pytest.fixture
def sim(sim_module: ShopSimulator) -> ShopSimulator:
    sim_module.reset()
    sim_module.webhooks.configure(enabled=False)
    return sim_module


@pytest.fixture
def session() -> RecordingSession:
    return RecordingSession()


@pytest.fixture
def client(sim: ShopSimulator, session: RecordingSession) -> WooCommerceClient:
    return WooCommerceClient(sim.url, KEY, SECRET, timeout=5.0, session=session)


def _ids(client: WooCommerceClient, **params: Any) -> list[int]:
    return [o["id"] for o in client._call("GET", "/orders", params={"per_page": 100, **params}).json()]


def test_any_leaves_trash_out_even_when_trash_is_named_with_it(sim: ShopSimulator, client: WooCommerceClient) -> None:
    kept, trashed = sim.state.create_order()["id"], sim.state.create_order()["id"]
    sim.state.trash(trashed)
    assert _ids(client, status="any") == [kept]
    # WooCommerce's prepare_objects_query: `any` short-circuits the whole list.
    assert _ids(client, status="any,trash") == [kept]
    assert _ids(client, status="trash,any") == [kept]
    assert _ids(client, status="trash") == [trashed]
    assert sorted(_ids(client, status=",".join([*LIVE, "trash"]))) == [kept, trashed]


def test_an_unregistered_status_is_refused(sim: ShopSimulator, client: WooCommerceClient) -> None:
    with pytest.raises(PermanentError) as caught:
        _ids(client, status="pending,ready-for-pickup")
    assert caught.value.status == 400 and "rest_invalid_param" in caught.value.reason


def test_order_statuses_come_from_the_reports_totals(sim: ShopSimulator, client: WooCommerceClient) -> None:
    statuses = client.order_statuses()
    assert set(LIVE) <= set(statuses) and "trash" not in statuses and "any" not in statuses


def test_include_returns_only_those_ids_and_a_deleted_one_is_missing_and_404(
    sim: ShopSimulator, client: WooCommerceClient
) -> None:
    a, b, c = (sim.state.create_order()["id"] for _ in range(3))
    sim.state.trash(b)
    sim.state.delete(c)
    found = client.get_orders([a, b, c], [*LIVE, "trash"])
    assert [(o["id"], o["status"]) for o in found] == [(a, "pending"), (b, "trash")]
    assert client.find_order(c) is None
    with pytest.raises(PermanentError) as caught:
        client.get_order(c)
    assert caught.value.status == 404
    assert client.find_order(b)["status"] == "trash"
    with pytest.raises(ValueError):
        client.get_orders(list(range(1, 102)), LIVE)


def test_include_with_fields_answers_only_those_keys_of_each_order(
    sim: ShopSimulator, client: WooCommerceClient
) -> None:
    a, b = (sim.state.create_order()["id"] for _ in range(2))
    sim.state.trash(b)
    found = client.get_orders([a, b], [*LIVE, "trash"], fields=("id", "status", "date_modified_gmt"))
    assert [sorted(o) for o in found] == [["date_modified_gmt", "id", "status"]] * 2
    assert [(o["id"], o["status"]) for o in found] == [(a, "pending"), (b, "trash")]
    assert found[0]["date_modified_gmt"] == client.get_order(a)["date_modified_gmt"]


def test_a_permanent_delete_sends_no_webhook(sim: ShopSimulator) -> None:
    sim.webhooks.configure(enabled=True, url="http://127.0.0.1:9/nowhere", secret="s")
    order_id = sim.state.create_order()["id"]
    before = len(sim.webhooks.deliveries())
    ShopControl(sim.url).delete(order_id)
    assert sim.state.order(order_id) is None
    sim.webhooks.wait_idle(5)
    assert all(d.get("topic") != "order.deleted" for d in sim.webhooks.deliveries()[before:])


def test_rest_delete_trashes_and_force_deletes(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    assert client._call("DELETE", f"/orders/{order_id}").json()["status"] == "trash"
    with pytest.raises(PermanentError) as caught:
        client._call("DELETE", f"/orders/{order_id}")
    assert caught.value.status == 410
    client._call("DELETE", f"/orders/{order_id}", params={"force": "true"})
    assert client.find_order(order_id) is None


def test_modified_after_reads_site_local_columns_unless_dates_are_gmt(sim: ShopSimulator, client: WooCommerceClient) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    order = sim.state.create_order(date_created_gmt=now - timedelta(minutes=30))
    local = datetime.fromisoformat(order["date_modified"])
    assert local != datetime.fromisoformat(order["date_modified_gmt"])  # Europe/Rome is never UTC
    bound = (now - timedelta(minutes=31)).isoformat()
    assert _ids(client, modified_after=bound, dates_are_gmt="true") == [order["id"]]
    # Read as site-local time, the same UTC figure lies one or two hours after the local save.
    assert _ids(client, modified_after=(local + timedelta(minutes=1)).isoformat(), dates_are_gmt="true") == []
    assert _ids(client, modified_after=(local - timedelta(minutes=1)).isoformat()) == [order["id"]]
    # Exclusive: a bound equal to the modified second leaves the order out.
    assert _ids(client, modified_after=order["date_modified_gmt"], dates_are_gmt="true") == []


def test_paging_headers(sim: ShopSimulator, client: WooCommerceClient) -> None:
    for _ in range(5):
        sim.state.create_order()
    response = client._call("GET", "/orders", params={"per_page": 2, "page": 2})
    assert response.headers["X-WP-Total"] == "5" and response.headers["X-WP-TotalPages"] == "3"
    assert 'rel="next"' in response.headers["Link"] and 'rel="prev"' in response.headers["Link"]
    with pytest.raises(PermanentError):
        client._call("GET", "/orders", params={"per_page": 101})


def test_paging_links_repeat_the_request_as_woocommerce_does(sim: ShopSimulator, client: WooCommerceClient) -> None:
    """The plain parameters in order (oauth_* ones included), the lists as arrays, the defaults
    dp and context, and the page last, or where the request had it."""
    for _ in range(5):
        sim.state.create_order()
    link = client._call("GET", "/orders", params={"per_page": 2, "dates_are_gmt": "true",
                                                  "status": "pending,processing"}).headers["Link"]
    url = link.split(">;")[0].lstrip("<")
    names = [name for name, _ in parse_qsl(urlsplit(url).query)]
    assert names[:2] == ["per_page", "dates_are_gmt"] and "dates_are_gmt=1&" in url
    assert len(names) == 13 and all(n.startswith("oauth_") for n in names[2:-5])
    assert names[-5:] == ["status[0]", "status[1]", "dp", "context", "page"] and url.endswith("&page=2")
    middle = client._call("GET", "/orders", params={"page": 2, "per_page": 2}).headers["Link"]
    assert [urlsplit(u).query.split("&")[0] for u in re.findall(r"<([^>]*)>", middle)] == ["page=1", "page=3"]
    # A single page carries the API root instead.
    assert client._call("GET", "/orders").headers["Link"] == f'<{sim.url}/wp-json/>; rel="https://api.w.org/"'


def test_fields_keeps_only_what_is_asked(sim: ShopSimulator, client: WooCommerceClient) -> None:
    order_id = sim.state.create_order()["id"]
    [row] = client._call("GET", "/orders", params={"_fields": "id,billing.city,line_items.sku"}).json()
    # WordPress filters inside objects, not inside lists.
    assert row == {"id": order_id, "billing": {"city": "Łódź"}, "line_items": []}
    one = client._call("GET", f"/orders/{order_id}", params={"_fields": "status,_links"}).json()
    assert list(one) == ["status", "_links"]


def test_fields_left_empty_are_php_empty_arrays_and_the_list_is_read_as_wordpress_reads_it(
    sim: ShopSimulator, client: WooCommerceClient
) -> None:
    order_id = sim.state.create_order()["id"]
    # What the filter empties is PHP's array(), which json_encode writes [].
    assert client._call("GET", "/orders", params={"_fields": "no_such_field"}).json() == [[]]
    one = requests.get(f"{sim.url}/wp-json/wc/v3/orders/{order_id}", params={"_fields": "id,billing.no_such_field"},
                       auth=shop_auth(sim.url, KEY, SECRET), timeout=5)
    assert one.content == b'{"id":%d,"billing":[]}' % order_id
    # wp_parse_list: whitespace separates as a comma does; nothing named, nothing filtered.
    spaced = client._call("GET", f"/orders/{order_id}", params={"_fields": "id status"}).json()
    assert spaced == {"id": order_id, "status": "pending"}
    assert client._call("GET", f"/orders/{order_id}", params={"_fields": ","}).json() == client.get_order(order_id)


def test_a_refused_status_is_named_by_its_place_in_the_list(sim: ShopSimulator) -> None:
    answer = requests.get(sim.url + "/wp-json/wc/v3/orders", params={"status": "pending,ready-for-pickup"},
                          auth=shop_auth(sim.url, KEY, SECRET), timeout=5)
    assert answer.status_code == 400 and answer.headers["Allow"] == "GET, POST"
    detail = answer.json()["data"]["details"]["status"]
    assert detail["code"] == "rest_not_in_enum" and detail["message"].startswith("status[1] is not one of any, trash,")
    assert answer.json()["data"]["params"]["status"] == detail["message"]


def test_keyset_walk_reads_an_order_saved_while_paging_and_skips_none(
    sim: ShopSimulator, client: WooCommerceClient, session: RecordingSession
) -> None:
    """Offset paging loses an order here; the keyset walk reads every one, the saved one twice."""
    base = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) - timedelta(hours=1)
    ids = [sim.state.create_order(date_created_gmt=base + timedelta(seconds=i))["id"] for i in range(250)]
    # Right after the first page is answered, an order on it is saved: it moves to the end.
    ShopControl(sim.url).on_listing(ids[3], changes={"customer_note": "edited"})
    since = base - timedelta(seconds=1)
    seen = [o["id"] for o in client.iter_changes_since(since, [*LIVE, "trash"])]
    assert sorted(set(seen)) == sorted(ids)
    assert seen.count(ids[3]) == 2 and len(seen) == 251

    # The old offset walk, for contrast, misses the order that slid onto the page already read.
    sim.reset()
    sim.webhooks.configure(enabled=False)
    ids = [sim.state.create_order(date_created_gmt=base + timedelta(seconds=i))["id"] for i in range(250)]
    ShopControl(sim.url).on_listing(ids[3], changes={"customer_note": "edited"})
    offset_seen = {o["id"] for o in client.iter_orders_modified_since(since)}
    assert ids[100] not in offset_seen


def test_keyset_walk_steps_through_a_second_holding_more_than_a_page(sim: ShopSimulator, client: WooCommerceClient) -> None:
    moment = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) - timedelta(hours=1)
    ids = [sim.state.create_order(date_created_gmt=moment)["id"] for _ in range(230)]
    later = sim.state.create_order(date_created_gmt=moment + timedelta(seconds=5))["id"]
    seen = [o["id"] for o in client.iter_changes_since(moment - timedelta(seconds=1), [*LIVE, "trash"])]
    assert seen == [*ids, later]


def test_keyset_walk_lists_trashed_orders_and_an_idle_walk_is_one_request(
    sim: ShopSimulator, client: WooCommerceClient, session: RecordingSession
) -> None:
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    order_id = sim.state.create_order()["id"]
    sim.state.trash(order_id)
    assert [o["status"] for o in client.iter_changes_since(since, [*LIVE, "trash"])] == ["trash"]
    session.calls.clear()
    assert list(client.iter_changes_since(datetime.now(timezone.utc) + timedelta(minutes=5), [*LIVE, "trash"])) == []
    assert len(session.calls) == 1
    with pytest.raises(ValueError):
        list(client.iter_changes_since(since, ["any", "trash"]))
