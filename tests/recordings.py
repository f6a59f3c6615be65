"""The traffic of a real WooCommerce 9.2.5 shop, recorded byte for byte, that tests compare with.

The recordings are kept beside the repository, at `<repository>/../shared/fixtures/
woocommerce-9.2.5/`, with a README saying what happened in the shop, in order; they are read from
there. A verbatim copy lives in `tests/fixtures/woocommerce-9.2.5/` for a clone made anywhere
else, and a test checks it equals the original wherever both are present. Two files:

- `webhooks.jsonl`: every delivery, one JSON object a line: `delivery_url_path` (the topic),
  `secret` (null for the unsigned pings), `headers` as received, `body` (the exact bytes);
- `rest.json`: REST API v3 answers, a list of `{name, request: {method, path, query, json},
  status, headers, body}`.

Every test that reads them goes through this module, which fails at once, saying where it
looked, when they are not there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
BESIDE_THE_REPOSITORY = Path("shared") / "fixtures" / "woocommerce-9.2.5"
IN_THE_REPOSITORY = Path("tests") / "fixtures" / "woocommerce-9.2.5"
# The shop's home_url('/') while it was recorded: what it sent as X-WC-Webhook-Source.
RECORDED_SITE = "http://127.0.0.1:8090"


@dataclass(frozen=True)
class Delivery:
    """One recorded webhook delivery."""

    topic: str
    secret: str | None
    headers: dict[str, str]
    body: bytes

    @property
    def is_ping(self) -> bool:
        return self.secret is None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class RestAnswer:
    """One recorded REST request and WooCommerce's answer."""

    name: str
    method: str
    path: str
    query: dict[str, Any]
    status: int
    headers: dict[str, str]
    body: Any


def places(name: str) -> list[Path]:
    """Where the recorded file `name` is looked for, in order: beside the repository, then the copy in it."""
    return [REPOSITORY.parent / BESIDE_THE_REPOSITORY / name, REPOSITORY / IN_THE_REPOSITORY / name]


def recording(name: str) -> Path:
    """The path of one recorded file; fails the test, naming the places looked at, when it is missing."""
    looked = places(name)
    for path in looked:
        if path.is_file():
            return path
    pytest.fail(
        f"the recorded WooCommerce 9.2.5 traffic is missing: no {' nor '.join(map(str, looked))}.",
        pytrace=False,
    )


@cache
def deliveries() -> tuple[Delivery, ...]:
    """Every recorded webhook delivery, in the order WooCommerce made them."""
    found = []
    for line in recording("webhooks.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            topic = raw["delivery_url_path"].lstrip("/")
            found.append(Delivery(topic, raw["secret"], dict(raw["headers"]), raw["body"].encode("utf-8")))
    return tuple(found)


def delivery_of(topic: str, order_id: int) -> Delivery:
    """The first recorded delivery of `topic` for the order."""
    for delivery in deliveries():
        if delivery.topic == topic and not delivery.is_ping and delivery.json().get("id") == order_id:
            return delivery
    raise LookupError(f"no recorded {topic} delivery of order {order_id}")


@cache
def rest_answers() -> tuple[RestAnswer, ...]:
    found = []
    for raw in json.loads(recording("rest.json").read_text(encoding="utf-8")):
        request = raw["request"]
        found.append(RestAnswer(raw["name"], request["method"], request["path"], dict(request["query"] or {}),
                                raw["status"], dict(raw["headers"]), raw["body"]))
    return tuple(found)


def rest_answer(name: str) -> RestAnswer:
    """The recorded answer of that name (the `name` of rest.json)."""
    for answer in rest_answers():
        if answer.name == name:
            return answer
    raise KeyError(f"no recorded REST answer named {name!r}")
