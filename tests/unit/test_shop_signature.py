"""WooCommerce webhook signatures and PHP-identical JSON bytes."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from shared.shop.signature import sign, verify, wp_json_encode


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


def test_wp_json_encode_writes_like_php() -> None:
    value = {"url": "https://shop.example.com/a/b", "name": "Zoë Müller-Ørsted", "city": "Łódź", "n": 19.5,
             "none": None, "ok": True, "list": [1, "x"], "backslash": "a\\/b", "quote": 'say "hi"'}
    encoded = wp_json_encode(value)
    assert encoded == (
        b'{"url":"https:\\/\\/shop.example.com\\/a\\/b","name":"Zo\\u00eb M\\u00fcller-\\u00d8rsted",'
        b'"city":"\\u0141\\u00f3d\\u017a","n":19.5,"none":null,"ok":true,"list":[1,"x"],'
        b'"backslash":"a\\\\\\/b","quote":"say \\"hi\\""}'
    )
    assert json.loads(encoded) == value
