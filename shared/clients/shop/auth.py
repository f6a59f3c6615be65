"""How a request to the shop's REST API proves it holds the API key.

WooCommerce honours HTTP Basic (consumer key as user, secret as password) only
when WordPress sees the request as TLS (`is_ssl()`). Over plain `http://` it
ignores Basic and accepts only OAuth 1.0a "one-legged": no token, HMAC-SHA1 with
the consumer secret plus "&" as key, and the oauth_* parameters in the query
string, where its WC_REST_Authentication reads them (with every other query
parameter in the signature base string, the JSON body left out). Signing is
left to oauthlib, which does RFC 5849 the same way, with a fresh nonce and
timestamp per request.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests_oauthlib import OAuth1


def shop_auth(base_url: str, consumer_key: str, consumer_secret: str) -> requests.auth.AuthBase:
    """Basic for an https:// shop, OAuth 1.0a signatures in the query string for an http:// one."""
    scheme = urlsplit(base_url).scheme.lower()
    if scheme == "https":
        return requests.auth.HTTPBasicAuth(consumer_key, consumer_secret)
    if scheme == "http":
        return OAuth1(consumer_key, client_secret=consumer_secret, signature_method="HMAC-SHA1",
                      signature_type="query")
    raise ValueError(f"shop URL must start with http:// or https://, not {base_url!r}")
