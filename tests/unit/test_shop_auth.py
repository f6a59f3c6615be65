"""Which credentials the shop client sends, and the simulator's copy of WooCommerce's OAuth check (no services)."""
from __future__ import annotations

import base64
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from shared.clients.shop.auth import shop_auth
from simulators.shop.auth import AuthError, ShopAuthenticator, oauth_signature, signature_base_string

KEY, SECRET = "ck_unit", "cs_unit-secret"


def prepared(base_url: str, method: str = "GET", params: dict[str, str] | None = None,
             json_body: dict[str, object] | None = None) -> requests.PreparedRequest:
    request = requests.Request(method, base_url + "/wp-json/wc/v3/orders", params=params, json=json_body,
                               auth=shop_auth(base_url, KEY, SECRET))
    return request.prepare()


def test_https_sends_basic_and_no_signature() -> None:
    request = prepared("https://shop.example.com", params={"per_page": "100"})
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert "oauth_" not in request.url


def test_http_signs_in_the_query_string_and_sends_no_basic() -> None:
    request = prepared("http://shop.example.com", params={"per_page": "100", "status": "any"})
    assert "Authorization" not in request.headers
    query = dict(parse_qsl(urlsplit(request.url).query))
    assert query["oauth_consumer_key"] == KEY and query["oauth_signature_method"] == "HMAC-SHA1"
    assert query["per_page"] == "100" and query["oauth_nonce"] and query["oauth_timestamp"].isdigit()
    assert SECRET not in request.url


def test_every_request_gets_a_fresh_nonce() -> None:
    nonces = {dict(parse_qsl(urlsplit(prepared("http://shop.example.com").url).query))["oauth_nonce"]
              for _ in range(20)}
    assert len(nonces) == 20


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError):
        shop_auth("ftp://shop.example.com", KEY, SECRET)


def authenticator(site: str = "http://shop.example.com", now: float | None = None) -> ShopAuthenticator:
    import time

    return ShopAuthenticator(site, KEY, SECRET, clock=(lambda: now) if now is not None else time.time)


def check(auth: ShopAuthenticator, request: requests.PreparedRequest) -> None:
    url = urlsplit(request.url)
    auth.check(request.method, url.path, url.query, request.headers.get("Authorization"))


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_the_library_signature_passes_the_woocommerce_check(method: str) -> None:
    body = {"status": "active", "note": "a+b & c"} if method in ("POST", "PUT") else None
    check(authenticator(), prepared("http://shop.example.com", method, {"force": "true", "q": "a b+c/ü"}, body))


def test_a_signature_over_another_path_method_or_secret_does_not_match() -> None:
    auth = authenticator()
    good = prepared("http://shop.example.com", "GET", {"page": "2"})
    url = urlsplit(good.url)
    for method, path, query in (
        ("DELETE", url.path, url.query),
        ("GET", url.path + "/1001", url.query),
        ("GET", url.path, url.query.replace("page=2", "page=3")),
    ):
        with pytest.raises(AuthError, match="signature - provided signature does not match"):
            auth.check(method, path, query, None)
    wrong_secret = requests.Request("GET", "http://shop.example.com/wp-json/wc/v3/orders",
                                    auth=shop_auth("http://shop.example.com", KEY, "cs_other")).prepare()
    with pytest.raises(AuthError, match="does not match"):
        check(auth, wrong_secret)


def test_the_base_string_is_the_rfc_5849_one() -> None:
    # RFC 5849 section 3.4.1.1's normalisation, by hand, for a query with reserved characters.
    base = signature_base_string("get", "http://shop.example.com/wp-json/wc/v3/orders",
                                 {"b": "x y", "a": "1&2", "oauth_nonce": "n"})
    assert base == ("GET&http%3A%2F%2Fshop.example.com%2Fwp-json%2Fwc%2Fv3%2Forders&"
                    "a%3D1%25262%26b%3Dx%2520y%26oauth_nonce%3Dn")
    assert len(base64.b64decode(oauth_signature(base, SECRET))) == 20  # SHA-1
    assert len(base64.b64decode(oauth_signature(base, SECRET, "HMAC-SHA256"))) == 32


def test_a_replayed_nonce_and_a_timestamp_off_by_more_than_15_minutes_are_refused() -> None:
    request = prepared("http://shop.example.com")
    timestamp = int(dict(parse_qsl(urlsplit(request.url).query))["oauth_timestamp"])
    auth = authenticator(now=timestamp)
    check(auth, request)
    with pytest.raises(AuthError, match="nonce has already been used"):
        check(auth, request)
    for now in (timestamp + 15 * 60 + 1, timestamp - 15 * 60 - 1):
        with pytest.raises(AuthError, match="Invalid timestamp"):
            check(authenticator(now=now), request)
    check(authenticator(now=timestamp + 15 * 60), request)  # the window's edge still counts


def test_basic_over_plain_http_is_not_authentication() -> None:
    basic = requests.Request("GET", "http://shop.example.com/wp-json/wc/v3/orders", auth=(KEY, SECRET)).prepare()
    with pytest.raises(AuthError) as raised:
        check(authenticator(), basic)
    assert raised.value.code == "woocommerce_rest_cannot_view"
    with pytest.raises(AuthError, match="Missing OAuth parameters oauth_timestamp"):
        authenticator().check("GET", "/wp-json/wc/v3/orders", f"oauth_consumer_key={KEY}", None)


def test_behind_tls_basic_is_accepted_and_a_wrong_secret_named() -> None:
    tls = ShopAuthenticator("https://shop.example.com", KEY, SECRET, tls=True)
    tls.check("GET", "/wp-json/wc/v3/orders", "", "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode())
    tls.check("GET", "/wp-json/wc/v3/orders", f"consumer_key={KEY}&consumer_secret={SECRET}", None)
    with pytest.raises(AuthError, match="Consumer secret is invalid"):
        tls.check("GET", "/wp-json/wc/v3/orders", "", "Basic " + base64.b64encode(f"{KEY}:nope".encode()).decode())
