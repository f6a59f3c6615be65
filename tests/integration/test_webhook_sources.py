"""A staging copy of the shop must not act on the live system: ingest refuses signed deliveries whose
X-WC-Webhook-Source is not the shop's site, changes nothing for them, and `status` / `webhooks status` name
them. Real ingest processes, the run's database and broker, the shop simulator, and WooCommerce's own
recorded deliveries."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from shared.clients.shop import WooCommerceClient
from shared.db import normalise_url
from shared.failures.errors import TransientError
from services.status_poller.shop_watch.site_check import SiteCheck
from simulators.shop import ShopSimulator, start_in_thread
from simulators.shop.orders import make_order
from simulators.shop.php_json import wp_json_encode
from tests.conftest import drain
from tests.integration.test_admin_views import cli_env, run
from tests.integration.ingest_process import LINES, SECRET, SITE, STOCK, VARIATION, Ingest, published
from tests.recordings import recording
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
# What a real WooCommerce 9.2.5 shop sent, byte for byte (its README says what happened).
STAGING = "https://staging.shop.example.com/"
KEY, CONSUMER_SECRET = "ck_sources", "cs_sources"
# Tables a delivery that gets through would write to.
WRITTEN_BY_A_DELIVERY = ("order_versions", "unmatched_lines", "shop_orders", "order_lines")


def count_rows(db: str, table: str, where: str = "true", **params: Any) -> int:
    engine = create_engine(normalise_url(db))
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
    finally:
        engine.dispose()


def refused_rows(db: str) -> dict[str, int]:
    engine = create_engine(normalise_url(db))
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT source, refused_count FROM refused_sources")).all())
    finally:
        engine.dispose()


def status_rows(env: dict[str, str]) -> tuple[int, dict[str, dict[str, str]]]:
    result = run(["status", "--json"], env)
    return result.exit_code, {row["name"]: row for row in json.loads(result.output)["rows"]}


@pytest.fixture
def shop() -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=CONSUMER_SECRET) as simulator:
        yield simulator


# -- refused: from another site, or from no site at all ----------------------------------------------------


def test_a_signed_delivery_from_another_site_is_refused_and_changes_nothing(
    ingest: Ingest, catalog: str, broker: str, shop: ShopSimulator
) -> None:
    db = catalog
    before = ingest.metric("rewix_ingest_webhooks_total", outcome="wrong_source")
    order = wp_json_encode(make_order(6001, status="processing", lines=[VARIATION]))
    for topic in ("order.created", "order.updated", "order.deleted"):
        response = ingest.post(order, topic, headers={"X-WC-Webhook-Source": STAGING})
        assert response.status_code == 403, response.text
        assert response.json()["source"] == STAGING
        assert "not the shop's site" in response.json()["error"]

    # Nothing published, nothing written but the refusal's record.
    assert drain(broker, LINES) == []
    for table in WRITTEN_BY_A_DELIVERY:
        assert count_rows(db, table) == 0, table
    assert ingest.metric("rewix_ingest_webhooks_total", outcome="wrong_source") == before + 3
    # The first refusal is recorded at once; the next two wait for the minute to pass (counted, not written).
    assert wait_until(lambda: refused_rows(db).get(STAGING), 10, "the refusal recorded") >= 1
    lines = ingest.lines()
    assert sum(1 for line in lines if line.get("event") == "webhook" and line.get("outcome") == "wrong_source"
               and line.get("source") == STAGING and line.get("level") == "info") >= 3
    warnings = [line for line in lines if line.get("level") == "warning" and line.get("source") == STAGING]
    assert len(warnings) == 1 and "staging" in warnings[0]["hint"]

    # `status` names the source as needing a person.
    env = cli_env(db, broker, WC_URL=SITE, INGEST_URL=ingest.url)
    code, rows = status_rows(env)
    assert code == 1
    row = rows["webhook sources"]
    assert row["state"] == "attention" and STAGING in row["text"] and "refused" in row["text"]
    assert "WC_WEBHOOK_SOURCES" in row["text"] and "secret" in row["text"]

    # So does `webhooks status` (the shop's own webhooks are fine), which exits 1 for it.
    delivery_url = ingest.url + "/webhooks/woocommerce"
    shop_env = cli_env(db, broker, WC_URL=shop.url, WC_CONSUMER_KEY=KEY, WC_CONSUMER_SECRET=CONSUMER_SECRET,
                       WC_WEBHOOK_SECRET=SECRET, WC_WEBHOOK_DELIVERY_URL=delivery_url)
    assert run(["webhooks", "install"], shop_env).exit_code == 0
    result = run(["webhooks", "status"], shop_env)
    assert result.exit_code == 1
    needs = [line for line in result.output.splitlines() if line.startswith("needs a person")]
    assert len(needs) == 1 and STAGING in needs[0] and "refused" in needs[0]
    assert f"deliveries accepted from {shop.url} (the shop's home)" in result.output

    # Once the configuration accepts it (it was a second address of the shop), nobody is needed.
    code, rows = status_rows({**env, "WC_WEBHOOK_SOURCES": STAGING})
    assert rows["webhook sources"]["state"] == "ok"
    assert STAGING.rstrip("/") in rows["webhook sources"]["text"]


def test_a_signed_delivery_without_a_source_is_refused_naming_the_header(
    ingest: Ingest, catalog: str, broker: str
) -> None:
    response = ingest.post(wp_json_encode(make_order(6002, lines=[VARIATION])), "order.created",
                           headers={"X-WC-Webhook-Source": None})  # type: ignore[dict-item]
    assert response.status_code == 403
    assert "X-WC-Webhook-Source" in response.json()["error"] and response.json()["source"] is None
    assert drain(broker, LINES) == []
    assert count_rows(catalog, "order_versions") == 0
    wait_until(lambda: "" in refused_rows(catalog), 10, "the refusal recorded")
    code, rows = status_rows(cli_env(catalog, broker, WC_URL=SITE, INGEST_URL=ingest.url))
    assert rows["webhook sources"]["state"] == "attention"
    assert "(no X-WC-Webhook-Source header)" in rows["webhook sources"]["text"]


def test_the_source_is_checked_after_the_signature_and_before_the_topic(ingest: Ingest, broker: str) -> None:
    body = wp_json_encode({"id": 1, "name": "Sneaker"})
    # Unsigned from anywhere: 401, not 403 (and not recorded).
    assert ingest.post(body, "product.updated", signed=False, headers={"X-WC-Webhook-Source": STAGING}
                       ).status_code == 401
    # A copy's product webhook is refused too, before its topic is looked at.
    assert ingest.post(body, "product.updated", headers={"X-WC-Webhook-Source": STAGING}).status_code == 403
    assert ingest.post(body, "product.updated").status_code == 202
    # A ping carries no source and stays 200.
    ping = requests.post(ingest.url + "/webhooks/woocommerce", data=b"webhook_id=3", timeout=5,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert ping.status_code == 200


# -- accepted: the shop's home as it reports it, WC_URL's site, a second address -------------------------


def test_deliveries_from_the_learned_home_and_a_second_address_are_accepted(
    catalog: str, amqp_url: str, broker: str
) -> None:
    db = catalog
    with start_in_thread(consumer_key=KEY, consumer_secret=CONSUMER_SECRET,
                         site_url="https://www.shop.example.com/store") as shop:
        # What status_poller's site check does at start and every few minutes: ask the shop where it is.
        site = SiteCheck(db, WooCommerceClient(shop.bound_url, KEY, CONSUMER_SECRET, timeout=5)).run_once()
        assert site.home == "https://www.shop.example.com/store"
        # A check that cannot reach the shop changes nothing of what was learned.
        with pytest.raises(TransientError):
            SiteCheck(db, WooCommerceClient("http://127.0.0.1:1", KEY, CONSUMER_SECRET, timeout=2)).run_once()

        # WC_URL is the address the system reaches the shop at, not the shop's home.
        server = Ingest(AMQP_URL=amqp_url, DATABASE_URL=db, WC_URL=shop.bound_url,
                        WC_WEBHOOK_SOURCES="https://shop.example.it")
        try:
            accepted = [
                "https://www.shop.example.com/store/",       # home_url('/'), as WooCommerce sends it
                "http://WWW.shop.example.com:443/store",     # scheme, case, default port, slash: the same site
                shop.bound_url + "/",                        # WC_URL's site
                "https://shop.example.it/",                  # WC_WEBHOOK_SOURCES
            ]
            for n, source in enumerate(accepted):
                order = make_order(6100 + n, lines=[VARIATION])
                response = server.post(wp_json_encode(order), "order.created", headers={"X-WC-Webhook-Source": source})
                assert response.status_code == 200 and response.json()["messages"] == 1, (source, response.text)
            assert sorted(m.order_id for m in published(broker)) == [6100, 6101, 6102, 6103]
            for source in ("https://www.shop.example.com/", "https://www.shop.example.com/store/en/"):
                response = server.post(wp_json_encode(make_order(6199, lines=[VARIATION])), "order.created",
                                       headers={"X-WC-Webhook-Source": source})
                assert response.status_code == 403, source

            # The shop's own deliveries name its home: accepted end to end.
            shop.webhooks.configure(url=server.url + "/webhooks/woocommerce", secret=SECRET)
            created = shop.state.create_order(status="pending", lines=[VARIATION])
            assert shop.webhooks.wait_idle(10)
            assert [d["status"] for d in shop.webhooks.deliveries()] == [200]
            [message] = published(broker)
            assert message.order_id == created["id"] and message.line.stock_id == STOCK[2101]
        finally:
            assert server.stop() == 0
            server.close()


def test_without_the_database_the_configured_site_is_accepted_and_no_other_is_refused(
    amqp_url: str, broker: str
) -> None:
    """The shop's home lives in the database: while ingest has never read it, a source only it could accept
    is answered 503 (WooCommerce's delivery fails, the catch-up brings the order), never refused."""
    server = Ingest(AMQP_URL=amqp_url, DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing")
    try:
        order = wp_json_encode(make_order(6201, lines=[VARIATION]))
        other = server.post(order, "order.created", headers={"X-WC-Webhook-Source": "https://www.shop.example.com/"})
        assert other.status_code == 503 and other.json() == {"error": "database unavailable"}
        # The configured site is known without the database: the order goes on to need it (503 too).
        assert server.post(order, "order.created").status_code == 503
        # No header at all is refused whatever the database says.
        assert server.post(order, "order.created", headers={"X-WC-Webhook-Source": None}  # type: ignore[dict-item]
                           ).status_code == 403
        assert server.metric("rewix_ingest_webhooks_total", outcome="database_unavailable") == 2
        assert drain(broker, LINES) == []
    finally:
        assert server.stop() == 0
        server.close()


def test_ingest_does_not_start_without_the_shops_site() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WC_URL", "WC_WEBHOOK_SOURCES")}
    env.update(WC_WEBHOOK_SECRET=SECRET, INGEST_HOST="127.0.0.1", INGEST_PORT="0")
    result = subprocess.run([sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "WC_URL" in line


# -- WooCommerce's own recorded deliveries -----------------------------------------------------------------


def recorded_deliveries() -> list[dict[str, Any]]:
    return [json.loads(line) for line in recording("webhooks.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def replay(server: Ingest, delivery: dict[str, Any]) -> requests.Response:
    """The delivery as WooCommerce sent it: its headers (but the connection's own) and its exact bytes."""
    headers = {k: v for k, v in delivery["headers"].items() if k.lower() not in ("host", "content-length")}
    return requests.post(server.url + "/webhooks/woocommerce", data=delivery["body"].encode("utf-8"),
                         headers=headers, timeout=15)


@pytest.mark.parametrize(("site", "signed_answer"), [("http://127.0.0.1:8090/", 200), ("http://127.0.0.1:8091", 403),
                                                     ("https://shop.example.com", 403)])
def test_real_woocommerce_deliveries_are_accepted_only_from_the_shops_site(
    db: str, amqp_url: str, broker: str, site: str, signed_answer: int
) -> None:
    deliveries = recorded_deliveries()
    [secret] = {d["secret"] for d in deliveries if d["secret"]}
    assert {d["headers"].get("X-WC-Webhook-Source") for d in deliveries if d["secret"]} == {"http://127.0.0.1:8090/"}
    server = Ingest(AMQP_URL=amqp_url, DATABASE_URL=db, WC_URL=site, WC_WEBHOOK_SECRET=secret)
    try:
        answers = [(d["delivery_url_path"], d["secret"] is not None, replay(server, d).status_code)
                   for d in deliveries]
    finally:
        assert server.stop() == 0
        server.close()
    pings = [status for _path, signed, status in answers if not signed]
    signed = [status for _path, signed, status in answers if signed]
    assert pings == [200] * 4  # WooCommerce's pings carry no source: always 200
    assert signed == [signed_answer] * len(signed), answers
    if signed_answer == 403:
        assert drain(broker, LINES) == []
        assert count_rows(db, "order_versions") == 0
        # The first was written at once, the others when ingest stopped: all of them counted. (Only this
        # source's row: the module's own ingest may write what it refused earlier a minute later.)
        assert refused_rows(db).get("http://127.0.0.1:8090/") == len(signed)
