"""`rewix-sync webhooks install` and `webhooks status` against the shop simulator, with ingest answering the pings."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine

from shared.clients.shop.webhooks import ORDER_TOPICS, webhook_name
from shared.db import normalise_url
from shared.shop_state.webhooks import record_reactivated
from simulators.shop import ShopSimulator, start_in_thread
from tests.integration.test_admin_views import cli_env, run
from tests.integration.ingest_process import SECRET as INGEST_SECRET
from tests.integration.ingest_process import Ingest

KEY, CONSUMER_SECRET = "ck_webhooks_cli", "cs_webhooks_cli"


@pytest.fixture
def shop() -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=CONSUMER_SECRET) as simulator:
        yield simulator


@pytest.fixture
def delivery_url(ingest: Ingest) -> str:
    return ingest.url + "/webhooks/woocommerce"


def env(db: str, broker: str, shop: ShopSimulator, delivery_url: str, **extra: str) -> dict[str, str]:
    values = dict(WC_URL=shop.url, WC_CONSUMER_KEY=KEY, WC_CONSUMER_SECRET=CONSUMER_SECRET,
                  WC_WEBHOOK_SECRET=INGEST_SECRET, WC_WEBHOOK_DELIVERY_URL=delivery_url)
    return cli_env(db, broker, **{**values, **extra})


def inside(shop: ShopSimulator) -> dict[str, dict]:
    """The shop's webhooks by topic, as WordPress keeps them (secret and failure count included)."""
    hooks = shop.webhooks.inside()
    assert len({h["topic"] for h in hooks}) == len(hooks), hooks
    return {h["topic"]: h for h in hooks}


def status_json(db: str, broker: str, shop: ShopSimulator, delivery_url: str) -> tuple[int, list[dict]]:
    result = run(["webhooks", "status", "--json"], env(db, broker, shop, delivery_url))
    return result.exit_code, json.loads(result.output)


def test_install_from_nothing_creates_the_four_and_status_is_happy(db: str, broker: str, shop: ShopSimulator,
                                                                    delivery_url: str) -> None:
    result = run(["webhooks", "install"], env(db, broker, shop, delivery_url))
    assert result.exit_code == 0, result.output
    assert result.output.count("created webhook") == 4 and "4 created, 0 kept" in result.output
    hooks = inside(shop)
    assert sorted(hooks) == sorted(ORDER_TOPICS)
    for topic, hook in hooks.items():
        assert hook["status"] == "active" and hook["delivery_url"] == delivery_url
        assert hook["secret"] == INGEST_SECRET and hook["name"] == webhook_name(topic)
        assert hook["pending_delivery"] is False  # ingest answered WooCommerce's ping with 200

    code, rows = status_json(db, broker, shop, delivery_url)
    assert code == 0
    assert [(r["topic"], r["status"], r["delivery_url"]) for r in rows] == [(t, "active", delivery_url)
                                                                             for t in ORDER_TOPICS]
    assert {r["id"] for r in rows} == {h["id"] for h in hooks.values()}
    text = run(["webhooks", "status"], env(db, broker, shop, delivery_url))
    assert text.exit_code == 0 and text.output.count("never") == 4


def test_install_twice_creates_nothing_new(db: str, broker: str, shop: ShopSimulator, delivery_url: str) -> None:
    assert run(["webhooks", "install"], env(db, broker, shop, delivery_url)).exit_code == 0
    before = {t: h["id"] for t, h in inside(shop).items()}
    again = run(["webhooks", "install"], env(db, broker, shop, delivery_url))
    assert again.exit_code == 0 and "0 created, 4 kept" in again.output
    assert again.output.count("already right") == 4
    assert {t: h["id"] for t, h in inside(shop).items()} == before


def test_install_repairs_a_changed_url_secret_or_status_in_place(db: str, broker: str, shop: ShopSimulator,
                                                                  delivery_url: str) -> None:
    assert run(["webhooks", "install"], env(db, broker, shop, delivery_url)).exit_code == 0
    hooks = inside(shop)
    ids = {t: h["id"] for t, h in hooks.items()}
    # Someone edits them in WP admin: another URL, another secret, one paused, one disabled by failures.
    shop.webhooks.admin_edit(ids["order.created"], delivery_url="https://old-host.example.com/hook")
    shop.webhooks.admin_edit(ids["order.updated"], secret="pasted-and-mangled")
    shop.webhooks.admin_edit(ids["order.deleted"], status="paused")
    shop.webhooks.admin_edit(ids["order.restored"], status="disabled", failure_count=6)

    result = run(["webhooks", "install"], env(db, broker, shop, delivery_url))
    assert result.exit_code == 0, result.output
    assert "0 created, 4 kept" in result.output
    assert "delivered to https://old-host.example.com/hook" in result.output
    assert "status paused" in result.output and "status disabled" in result.output
    repaired = inside(shop)
    assert {t: h["id"] for t, h in repaired.items()} == ids
    for hook in repaired.values():
        assert (hook["status"], hook["delivery_url"], hook["secret"]) == ("active", delivery_url, INGEST_SECRET)


def test_install_does_not_take_over_someone_elses_webhook(db: str, broker: str, shop: ShopSimulator,
                                                          delivery_url: str) -> None:
    other = shop.webhooks.create(name="CRM sync", topic="order.created",
                                 delivery_url="https://crm.example.com/hook", secret="crm")
    assert run(["webhooks", "install"], env(db, broker, shop, delivery_url)).exit_code == 0
    [crm] = shop.webhooks.inside(other["id"])
    assert (crm["delivery_url"], crm["secret"]) == ("https://crm.example.com/hook", "crm")
    code, rows = status_json(db, broker, shop, delivery_url)
    assert code == 0 and other["id"] not in {r["id"] for r in rows}


@pytest.mark.parametrize("trouble", ["missing", "paused", "disabled"])
def test_status_exits_1_when_one_is_missing_paused_or_disabled(db: str, broker: str, shop: ShopSimulator,
                                                               delivery_url: str, trouble: str) -> None:
    assert run(["webhooks", "install"], env(db, broker, shop, delivery_url)).exit_code == 0
    victim = inside(shop)["order.deleted"]["id"]
    if trouble == "missing":
        shop.webhooks.delete(victim)
    else:
        shop.webhooks.admin_edit(victim, status=trouble)
    code, rows = status_json(db, broker, shop, delivery_url)
    assert code == 1
    [row] = [r for r in rows if r["topic"] == "order.deleted"]
    assert row["status"] == trouble and row["delivery_url"] == delivery_url
    assert (row["id"] is None) == (trouble == "missing")
    text = run(["webhooks", "status"], env(db, broker, shop, delivery_url))
    assert text.exit_code == 1 and f"order.deleted {trouble}" in text.output


def test_status_shows_when_the_check_last_reactivated_one(db: str, broker: str, shop: ShopSimulator,
                                                          delivery_url: str) -> None:
    assert run(["webhooks", "install"], env(db, broker, shop, delivery_url)).exit_code == 0
    hook = shop.webhooks.get(inside(shop)["order.updated"]["id"])
    at = datetime(2026, 12, 1, 20, 30, tzinfo=timezone.utc)
    engine = create_engine(normalise_url(db))
    with engine.begin() as conn:
        record_reactivated(conn, hook, found_status="disabled", off_since=at, at=at)
    engine.dispose()
    code, rows = status_json(db, broker, shop, delivery_url)
    assert code == 0
    [row] = [r for r in rows if r["topic"] == "order.updated"]
    assert row["reactivated_count"] == 1 and row["last_reactivated_at"].startswith("2026-12-01T20:30")
    text = run(["webhooks", "status"], env(db, broker, shop, delivery_url)).output
    assert "2026-12-01 20:30 UTC (found disabled; 1 time(s) in all)" in text


def test_a_refused_key_is_one_line_saying_what_it_needs(db: str, broker: str, shop: ShopSimulator,
                                                        delivery_url: str) -> None:
    for command in (["webhooks", "install"], ["webhooks", "status"]):
        result = run(command, env(db, broker, shop, delivery_url, WC_CONSUMER_SECRET="cs_wrong"))
        assert result.exit_code == 2
        [line] = result.output.strip().splitlines()
        assert "HTTP 401" in line and "read_write" in line and "shop manager or administrator" in line
    assert shop.webhooks.inside() == []


def test_without_a_delivery_url_it_says_where_to_give_one(db: str, broker: str, shop: ShopSimulator,
                                                          delivery_url: str) -> None:
    result = run(["webhooks", "install"], env(db, broker, shop, delivery_url, WC_WEBHOOK_DELIVERY_URL=""))
    assert result.exit_code == 2 and "--delivery-url" in result.output and "WC_WEBHOOK_DELIVERY_URL" in result.output
    given = run(["webhooks", "install", "--delivery-url", delivery_url],
                env(db, broker, shop, delivery_url, WC_WEBHOOK_DELIVERY_URL=""))
    assert given.exit_code == 0 and "4 created" in given.output


def test_the_status_screen_and_operator_page_name_the_last_reactivation(db: str, broker: str, shop: ShopSimulator,
                                                                        delivery_url: str) -> None:
    from shared.settings import Settings
    from shared.shop_state.checks import PeriodicCheck, webhooks_checked
    from services.admin.health_report import gather

    assert run(["webhooks", "install"], env(db, broker, shop, delivery_url)).exit_code == 0
    hook = shop.webhooks.get(inside(shop)["order.created"]["id"])
    at = datetime(2026, 12, 1, 20, 40, tzinfo=timezone.utc)
    engine = create_engine(normalise_url(db))
    with engine.begin() as conn:
        record_reactivated(conn, hook, found_status="disabled", off_since=at, at=at)
    webhooks_checked(PeriodicCheck(engine, "webhook_check", 300), missing=[], reactivated=[])
    engine.dispose()
    settings = Settings(database_url=db, amqp_url=broker, wc_url=shop.url, wc_consumer_key=KEY,
                        wc_consumer_secret=CONSUMER_SECRET, wc_webhook_delivery_url=delivery_url)
    [row] = [r for r in gather(settings).rows if r.name == "webhooks"]
    assert row.state == "ok"
    assert "all four active" in row.text and "last re-activated: order.created at 2026-12-01 20:40 UTC" in row.text
