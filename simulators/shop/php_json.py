"""JSON bytes exactly as WordPress's `wp_json_encode` writes them (PHP's `json_encode`, default flags).

What the simulated shop sends must look like what a real one sends: a
webhook body (WC_Webhook::deliver signs `trim(wp_json_encode($payload))`)
and a REST answer. PHP's defaults differ from Python's `json.dumps` in three
places, each checked against bytes PHP itself wrote
(tests/fixtures/php_webhook_vectors.json):

- "/" is written `\\/`;
- DEL (U+007F) is written as it is, while every other non-ASCII character is
  `\\uXXXX` (lowercase hex, astral ones as a surrogate pair);
- a float is written with the fewest digits that read back the same
  (serialize_precision -1), without a zero fraction (`100.0` is `100`), and
  in exponent form as PHP's php_gcvt decides: `1.0e+20`, `1.5e-7`.

Only the simulators and the tests write PHP's JSON: ingest checks the raw
bytes it received and never encodes a body again.
"""
from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

# json.dumps escapes DEL; PHP does not. Only an escape preceded by an even number of
# backslashes is one (an odd number means the backslash itself was escaped).
_ESCAPED_DEL = re.compile(r"(?<!\\)((?:\\\\)*)\\u007f")
# php_gcvt with serialize_precision -1 works on 17 significant digits at the most.
_PHP_DIGITS = 17


def wp_json_encode(value: Any) -> bytes:
    return _encode(value).encode("ascii")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return php_float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"PHP's json_encode has no form for {type(value).__name__}")


def _string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=True)
    # A "/" only ever occurs inside a string, and json.dumps never escapes it.
    encoded = encoded.replace("/", "\\/")
    return _ESCAPED_DEL.sub(lambda m: m.group(1) + "\x7f", encoded) if "\\u007f" in encoded else encoded


def php_float(number: float) -> str:
    """A float as php_gcvt(number, 17, '.', 'e') writes it with PHP's shortest round-trip digits."""
    if math.isnan(number) or math.isinf(number):
        raise ValueError("PHP's json_encode refuses NAN and INF")
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    if number == 0:
        return sign + "0"
    # repr gives the shortest digits that read back the same, as zend_dtoa's mode 0 does.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    written = "".join(map(str, digit_tuple))
    digits = written.rstrip("0") or "0"
    exponent += len(written) - len(digits)
    # decpt: where the decimal point falls, counted from the first digit (0.d1d2... x 10^decpt).
    decpt = len(digits) + exponent
    if decpt < -3 or decpt > _PHP_DIGITS:
        power = decpt - 1
        mantissa = digits[0] + "." + (digits[1:] or "0")
        return f"{sign}{mantissa}e{'-' if power < 0 else '+'}{abs(power)}"
    if decpt <= 0:
        return f"{sign}0.{'0' * -decpt}{digits}"
    if len(digits) <= decpt:
        return sign + digits + "0" * (decpt - len(digits))
    return f"{sign}{digits[:decpt]}.{digits[decpt:]}"
