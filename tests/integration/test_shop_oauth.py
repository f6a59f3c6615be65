"""OAuth 1.0a against the shop simulator over real HTTP, as WooCommerce checks it on a plain-http:// shop."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_TYPE_QUERY, Client

from shared.clients.shop import WooCommerceClient
from shared.failures.errors import SHOP, AccountRefused
from simulators.shop import ShopSimulator, start_in_thread

KEY, SECRET = "ck_oauth_test", "cs_oauth_test"


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET) as simulator:
        simulator.state.create_order(status="pending")
        yield simulator


def signed_url(url: str, *, secret: str = SECRET, timestamp: int | None = None, method: str = "GET") -> str:
    client = Client(KEY, client_secret=secret, signature_type=SIGNATURE_TYPE_QUERY,
                    timestamp=str(timestamp) if timestamp is not None else None)
    uri, _headers, _body = client.sign(url, http_method=method)
    return uri


def answer(url: str, **kwargs: object) -> tuple[int, str]:
    response = requests.get(url, timeout=5, **kwargs)
    return response.status_code, response.json().get("code", "") if response.status_code != 200 else ""


def orders_url(shop: ShopSimulator) -> str:
    return shop.url + "/wp-json/wc/v3/orders?per_page=5"


def test_the_client_reads_writes_and_pages_with_signed_requests(shop: ShopSimulator) -> None:
    client = WooCommerceClient(shop.url, KEY, SECRET)
    assert client.get_order(1001)["id"] == 1001
    client.add_note(1001, "signed")
    assert client.list_notes(1001)[0]["note"] == "signed"
    assert client.update_order(1001, {"customer_note": "signed too"})["customer_note"] == "signed too"
    for _ in range(3):
        shop.state.create_order(status="pending")
    seen = list(client.iter_orders_modified_since(datetime(2000, 1, 1, tzinfo=timezone.utc), per_page=2))
    assert len(seen) == 4  # two pages, each signed afresh


def test_a_good_signature_passes_once(shop: ShopSimulator) -> None:
    url = signed_url(orders_url(shop))
    assert answer(url) == (200, "")
    status, code = answer(url)
    assert (status, code) == (401, "woocommerce_rest_authentication_error")
    assert "nonce" in requests.get(url, timeout=5).json()["message"]


def test_a_wrong_signature_is_refused(shop: ShopSimulator) -> None:
    assert answer(signed_url(orders_url(shop), secret="cs_guess")) == (401, "woocommerce_rest_authentication_error")
    # A parameter changed after signing breaks the signature too.
    url = urlsplit(signed_url(orders_url(shop)))
    query = dict(parse_qsl(url.query))
    query["per_page"] = "100"
    tampered = urlunsplit(url._replace(query=urlencode(query)))
    response = requests.get(tampered, timeout=5)
    assert response.status_code == 401 and "signature" in response.json()["message"]


def test_an_old_or_future_timestamp_is_refused(shop: ShopSimulator) -> None:
    for offset in (-16 * 60, 16 * 60):
        response = requests.get(signed_url(orders_url(shop), timestamp=int(time.time()) + offset), timeout=5)
        assert response.status_code == 401 and response.json()["message"] == "Invalid timestamp."


def test_basic_over_plain_http_is_refused(shop: ShopSimulator) -> None:
    assert answer(orders_url(shop), auth=(KEY, SECRET)) == (401, "woocommerce_rest_cannot_view")
    assert answer(orders_url(shop) + f"&consumer_key={KEY}&consumer_secret={SECRET}") == (
        401, "woocommerce_rest_cannot_view")


def test_the_client_reports_a_wrong_secret_as_refused_credentials(shop: ShopSimulator) -> None:
    with pytest.raises(AccountRefused) as raised:
        WooCommerceClient(shop.url, KEY, "cs_wrong").get_order(1001)
    assert raised.value.status == 401 and raised.value.account == SHOP


def test_signatures_are_checked_against_the_site_url_not_the_bound_address() -> None:
    # As WooCommerce checks them against its configured home URL: in compose the simulator binds
    # 0.0.0.0 and the services sign for http://shop-sim:8091 (its --site-url).
    site = "http://shop-sim.invalid:8091"
    with ShopSimulator(consumer_key=KEY, consumer_secret=SECRET, site_url=site).start() as simulator:
        simulator.state.create_order(status="pending")
        assert simulator.url == site and simulator.bound_url != site
        path = "/wp-json/wc/v3/orders?per_page=5"
        for_the_site = urlsplit(signed_url(site + path))
        sent_to_the_bound_address = urlunsplit(for_the_site._replace(netloc=urlsplit(simulator.bound_url).netloc))
        assert answer(sent_to_the_bound_address) == (200, "")
        assert answer(signed_url(simulator.bound_url + path)) == (401, "woocommerce_rest_authentication_error")
        # The links it hands out name the site too.
        order = requests.get(urlunsplit(urlsplit(signed_url(site + "/wp-json/wc/v3/orders/1001"))._replace(
            netloc=urlsplit(simulator.bound_url).netloc)), timeout=5).json()
        assert all(link["href"].startswith(site) for link in order["_links"]["self"])
