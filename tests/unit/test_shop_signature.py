"""WooCommerce webhook signatures: the rules, and what PHP itself computed (tests/fixtures/php_webhook_vectors.json)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from shared.clients.shop.signature import sign, verify, wp_specialchars_decode

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "php_webhook_vectors.json").read_text())


def _reference(body: bytes, key: bytes) -> str:
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def test_sign_is_base64_of_raw_hmac_sha256() -> None:
    body = b'{"id":1001,"status":"processing"}'
    signature = sign(body, "s3cr3t-Key")
    assert signature == _reference(body, b"s3cr3t-Key")
    assert len(signature) == 44 and signature.endswith("=")


def test_secret_is_html_entity_decoded_first() -> None:
    body = b'{"id":1}'
    assert sign(body, "a&amp;b") == _reference(body, b"a&b")
    assert sign(body, "&lt;x&gt;&quot;&#039;") == _reference(body, b"<x>\"'")
    # One pass, like wp_specialchars_decode: "&amp;lt;" is "&lt;", not "<".
    assert sign(body, "&amp;lt;") == _reference(body, b"&lt;")
    assert sign(body, "plain") == _reference(body, b"plain")


def test_verify() -> None:
    body = b'{"id":7}'
    good = sign(body, "secret")
    assert verify(body, good, "secret")
    assert verify(body, f" {good}\n", "secret")
    assert not verify(body, good, "other")
    assert not verify(body + b" ", good, "secret")
    assert not verify(body, None, "secret")
    assert not verify(body, "", "secret")



@pytest.mark.parametrize("case", VECTORS["secrets"], ids=lambda case: case["secret"])
def test_the_key_is_the_one_wordpress_derives(case: dict) -> None:
    assert wp_specialchars_decode(case["secret"]) == case["key"]


@pytest.mark.parametrize("payload", VECTORS["payloads"], ids=lambda payload: payload["name"])
def test_signatures_are_the_ones_woocommerce_computes(payload: dict) -> None:
    body = payload["body"].encode("utf-8")
    secrets = [case["secret"] for case in VECTORS["secrets"]]
    assert len(payload["signatures"]) == len(secrets)
    for secret, signature in zip(secrets, payload["signatures"]):
        assert sign(body, secret) == signature, secret
        assert verify(body, signature, secret), secret
