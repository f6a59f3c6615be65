"""The simulated shop writes JSON byte for byte as PHP's json_encode does (simulators/shop/php_json.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.shop.php_json import php_float, wp_json_encode

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "php_webhook_vectors.json").read_text())


@pytest.mark.parametrize("payload", VECTORS["payloads"], ids=lambda payload: payload["name"])
def test_the_bodies_php_wrote_are_written_again_byte_for_byte(payload: dict) -> None:
    body = payload["body"].encode("utf-8")
    assert wp_json_encode(json.loads(body)) == body


def test_what_differs_from_python() -> None:
    value = {"url": "https://shop.example.com/a/b", "name": "Zoë Müller-Ørsted", "city": "Łódź", "n": 19.5,
             "none": None, "ok": True, "list": [1, "x"], "backslash": "a\\/b", "quote": 'say "hi"',
             "del": "a\x7fb", "not_del": "\\u007f", "whole": 100.0, "big": 1e20, "small": 1.5e-7}
    encoded = wp_json_encode(value)
    assert encoded == (
        b'{"url":"https:\\/\\/shop.example.com\\/a\\/b","name":"Zo\\u00eb M\\u00fcller-\\u00d8rsted",'
        b'"city":"\\u0141\\u00f3d\\u017a","n":19.5,"none":null,"ok":true,"list":[1,"x"],'
        b'"backslash":"a\\\\\\/b","quote":"say \\"hi\\"","del":"a\x7fb","not_del":"\\\\u007f",'
        b'"whole":100,"big":1.0e+20,"small":1.5e-7}'
    )
    assert json.loads(encoded) == {**value, "whole": 100}


# Each pair as PHP 8.2 printed it: php -r 'echo json_encode([0.0, -0.0, ...]);'
@pytest.mark.parametrize(("number", "php"), [
    (0.0, "0"), (-0.0, "-0"), (0.5, "0.5"), (0.0001, "0.0001"), (0.00001, "1.0e-5"), (1e16, "10000000000000000"),
    (1e17, "1.0e+17"), (1e18, "1.0e+18"), (0.1 + 0.2, "0.30000000000000004"), (-2.5, "-2.5"),
    (5e-324, "5.0e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (12345.678, "12345.678"),
])
def test_floats_as_php_writes_them(number: float, php: str) -> None:
    assert php_float(number) == php


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_reads_back_the_same(number: float) -> None:
    written = php_float(number)
    assert float(written) == number and math.copysign(1, float(written)) == math.copysign(1, number)


@given(st.text())
def test_every_string_reads_back_the_same_and_is_ascii_but_for_del(text: str) -> None:
    encoded = wp_json_encode(text)
    assert json.loads(encoded) == text
    assert all(byte < 0x80 for byte in encoded)
    assert b"/" not in encoded.replace(b"\\/", b"")


def test_nan_and_inf_are_refused_as_php_refuses_them() -> None:
    with pytest.raises(ValueError):
        wp_json_encode({"x": float("nan")})
    with pytest.raises(ValueError):
        wp_json_encode([float("inf")])
