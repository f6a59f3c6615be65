"""The traffic of a real WooCommerce 9.2.5 shop, recorded byte for byte, that tests compare with.

The recordings are kept beside the repository, not in it: `<repository>/../shared/fixtures/
woocommerce-9.2.5/`, with a README saying what happened in the shop, in order (a checkout made
with `git worktree add` elsewhere looks beside the repository it belongs to as well). Two files:

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


def checkouts() -> list[Path]:
    """This checkout and, when it is a git worktree, the main checkout of its repository."""
    roots = [REPOSITORY]
    git = REPOSITORY / ".git"
    if git.is_file():  # a worktree: ".git" says "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text(encoding="utf-8").partition(":")[2].strip())
        gitdir = gitdir if gitdir.is_absolute() else (REPOSITORY / gitdir)
        common = gitdir / "commondir"
        main_git = gitdir / common.read_text(encoding="utf-8").strip() if common.is_file() else gitdir.parents[1]
        roots.append(main_git.resolve().parent)
    return roots


def recording(name: str) -> Path:
    """The path of one recorded file; fails the test, naming the places looked at, when it is missing."""
    places = [root.parent / BESIDE_THE_REPOSITORY / name for root in checkouts()]
    for path in places:
        if path.is_file():
            return path
    pytest.fail(
        f"the recorded WooCommerce 9.2.5 traffic is missing: no {' nor '.join(map(str, places))}. It is kept"
        " beside the repository, at ../shared/fixtures/woocommerce-9.2.5/ from the repository's root.",
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
