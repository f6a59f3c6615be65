"""The shop's REST authentication, checked as WooCommerce's WC_REST_Authentication checks it.

Over TLS (`is_ssl()`): HTTP Basic, or the consumer_key/consumer_secret query
parameters. Over plain HTTP WooCommerce never looks at either: only OAuth 1.0a
one-legged is accepted, with the oauth_* parameters in the query string (or a
form body, or an `Authorization: OAuth` header). Its check, reproduced here
independently of the client's signing library:

- every query (and form) parameter but oauth_signature is sorted by name,
  name and value RFC 3986-encoded, joined as `name=value` with `&`, and the
  whole encoded again; the base string is
  `METHOD&encode(site URL + path)&that`, with the site's own home URL (not
  the Host header) and the scheme http;
- the key is `consumer_secret&`; HMAC-SHA1 or HMAC-SHA256, base64;
- then the timestamp must lie within 15 minutes of now, and the nonce must
  not have been used with this key within those 15 minutes.

A request without any oauth_* parameter is not authenticated at all, and the
route's permission check answers 401 `woocommerce_rest_cannot_*`, which is what
a Basic request over plain HTTP gets.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, unquote_plus

VALID_WINDOW = 15 * 60  # seconds, both for the timestamp and for remembering nonces
REQUIRED = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method")
# What the permission callbacks of the REST controllers answer a request with no user.
CANNOT = {
    "GET": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "POST": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
    "PUT": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "PATCH": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "DELETE": ("woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource."),
}


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rfc3986(text: str) -> str:
    """PHP's rawurlencode: everything but letters, digits and -._~ is %XX-encoded (UTF-8)."""
    return quote(text, safe="~")


def signature_base_string(method: str, base_uri: str, params: dict[str, str]) -> str:
    """WooCommerce's check_oauth_signature(): params without oauth_signature, sorted by raw name (strcmp)."""
    pairs = [f"{rfc3986(name)}={rfc3986(value)}" for name, value in sorted(params.items())]
    return "&".join((method.upper(), rfc3986(base_uri), "%26".join(rfc3986(pair) for pair in pairs)))


def oauth_signature(base_string: str, consumer_secret: str, method: str = "HMAC-SHA1") -> str:
    algorithm = hashlib.sha1 if method == "HMAC-SHA1" else hashlib.sha256
    digest = hmac.new(f"{consumer_secret}&".encode(), base_string.encode(), algorithm).digest()
    return base64.b64encode(digest).decode("ascii")


class ShopAuthenticator:
    """One API key (the simulated key has read_write permission). Thread-safe."""

    def __init__(self, site_url: str, consumer_key: str, consumer_secret: str, *, tls: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.site_url = site_url.rstrip("/")
        self.tls = tls
        self._key = consumer_key
        self._secret = consumer_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._nonces: dict[str, int] = {}  # nonce -> its timestamp
        # The shop owner revoked the key (WooCommerce > Settings > Advanced > REST API): every request is refused.
        self.revoked = False

    def reset(self) -> None:
        with self._lock:
            self._nonces.clear()
        self.revoked = False

    def check(self, method: str, path: str, raw_query: str, authorization: str | None,
              form: dict[str, str] | None = None) -> None:
        """Raises AuthError(code, message) exactly where WooCommerce answers 401."""
        if self.revoked:
            # A deleted key is no longer found: WooCommerce answers as for a key it never had.
            raise AuthError("woocommerce_rest_authentication_error", "Consumer key is invalid.")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))  # the last of a repeated name wins, as in PHP
        if self.tls and self._basic_ok(query, authorization):
            return
        params = {**query, **(form or {}), **_oauth_header(authorization)}
        present = [name for name in REQUIRED if params.get(name)]
        if not present:
            raise AuthError(*CANNOT.get(method.upper(), ("rest_forbidden", "Sorry, you are not allowed to do that.")))
        missing = [name for name in REQUIRED if not params.get(name)]
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            raise AuthError("woocommerce_rest_authentication_missing_parameter",
                            f"Missing OAuth {noun} {', '.join(missing)}")
        if not hmac.compare_digest(params["oauth_consumer_key"].encode(), self._key.encode()):
            raise AuthError("woocommerce_rest_authentication_error", "Consumer key is invalid.")
        self._check_signature(method, path, params)
        self._check_timestamp_and_nonce(params["oauth_timestamp"], params["oauth_nonce"])

    def _basic_ok(self, query: dict[str, str], authorization: str | None) -> bool:
        key, secret = query.get("consumer_key"), query.get("consumer_secret")
        if not (key and secret) and authorization and authorization.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(authorization[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
        if not (key and secret) or not hmac.compare_digest(key.encode(), self._key.encode()):
            return False
        if not hmac.compare_digest(secret.encode(), self._secret.encode()):
            raise AuthError("woocommerce_rest_authentication_error", "Consumer secret is invalid.")
        return True

    def _check_signature(self, method: str, path: str, params: dict[str, str]) -> None:
        # PHP decoded a '+' of the query string to a space; base64 needs it back.
        provided = params["oauth_signature"].replace(" ", "+")
        signed = {name: value for name, value in params.items() if name != "oauth_signature"}
        signature_method = signed["oauth_signature_method"]
        if signature_method not in ("HMAC-SHA1", "HMAC-SHA256"):
            raise AuthError("woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid.")
        scheme_site = ("https://" if self.tls else "http://") + self.site_url.split("://", 1)[1]
        expected = oauth_signature(signature_base_string(method, scheme_site + path, signed), self._secret,
                                   signature_method)
        if not hmac.compare_digest(expected.encode(), provided.encode()):
            raise AuthError("woocommerce_rest_authentication_error",
                            "Invalid signature - provided signature does not match.")

    def _check_timestamp_and_nonce(self, raw_timestamp: str, nonce: str) -> None:
        now = int(self._clock())
        try:
            timestamp = int(raw_timestamp)
        except ValueError:
            raise AuthError("woocommerce_rest_authentication_error", "Invalid timestamp.") from None
        if timestamp < now - VALID_WINDOW or timestamp > now + VALID_WINDOW:
            raise AuthError("woocommerce_rest_authentication_error", "Invalid timestamp.")
        with self._lock:
            if nonce in self._nonces:
                raise AuthError("woocommerce_rest_authentication_error",
                                "Invalid nonce - nonce has already been used.")
            # WooCommerce keeps the used nonces keyed by timestamp (one per second survives);
            # remembering every one is stricter, which a client with fresh nonces never notices.
            self._nonces[nonce] = timestamp
            for old, stamp in list(self._nonces.items()):
                if stamp < now - VALID_WINDOW:
                    del self._nonces[old]


def _oauth_header(authorization: str | None) -> dict[str, str]:
    """The oauth_* parameters of an `Authorization: OAuth k="v", ...` header (WooCommerce's parse_header)."""
    if not authorization or not authorization.startswith("OAuth "):
        return {}
    params = {}
    for part in authorization[6:].split(","):
        name, _, value = part.strip().partition("=")
        if name.startswith("oauth_"):
            params[name] = unquote_plus(value.strip().strip('"'))
    return params
