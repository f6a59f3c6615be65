"""`rewix-sync backfill` against the shop simulator, the broker and the database."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from shared.db import session_scope
from shared.db.models import ProductMapping
from shared.messaging import topology
from services.admin.cli import main
from simulators.shop import start_in_thread
from tests.conftest import drain
from tests.integration.test_admin_views import cli_env, run

KEY, SECRET = "ck_admin_test", "cs_admin_test"
SUPPLIER_LINE = {"product_id": 2101, "variation_id": 2104, "quantity": 2, "sku": "SNK-GRÜN-42", "price": "89.90"}
OWN_LINE = {"product_id": 3307, "variation_id": 0, "quantity": 1, "sku": "TEE-0001", "price": "19.50"}


@pytest.fixture
def shop() -> Iterator:
    simulator = start_in_thread(consumer_key=KEY, consumer_secret=SECRET)
    yield simulator
    simulator.stop()


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 26, hour, minute, tzinfo=timezone.utc)


def env_for(db: str, broker: str, shop_url: str, **extra: str) -> dict[str, str]:
    return cli_env(db, broker, WC_URL=shop_url, WC_CONSUMER_KEY=KEY, WC_CONSUMER_SECRET=SECRET, **extra)


def test_backfill_sends_orders_modified_at_or_after_since(db: str, broker: str, shop) -> None:
    with session_scope(db) as s:
        s.add(ProductMapping(wc_product_id=2101, wc_variation_id=2104, stock_id=100001))
    shop.state.create_order(status="pending", lines=[SUPPLIER_LINE], date_created_gmt=at(8))
    exactly = shop.state.create_order(status="processing", lines=[SUPPLIER_LINE, OWN_LINE], date_created_gmt=at(9))
    later = shop.state.create_order(status="pending", lines=[SUPPLIER_LINE], date_created_gmt=at(10))
    shop.state.create_order(status="pending", lines=[OWN_LINE], date_created_gmt=at(10, 30))

    result = run(["backfill", "--since", "2026-11-26T09:00:00Z"], env_for(db, broker, shop.url))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "backfill: 3 orders, 2 messages published, 1 skipped (no supplier line or not an order)"
    )
    messages = [json.loads(body) for _, body in drain(broker, topology.ORDER_LINES.name)]
    assert [(m["order_id"], m["source"], m["line"]["stock_id"]) for m in messages] == [
        (exactly["id"], "backfill", 100001), (later["id"], "backfill", 100001)
    ]

    # Offsets are allowed: the same moment in another zone, or with no offset at all (UTC).
    result = run(["backfill", "--since", "2026-11-26T10:00:00+00:00"], env_for(db, broker, shop.url))
    assert "backfill: 2 orders, 1 messages published, 1 skipped" in result.output
    result = run(["backfill", "--since", "2026-11-26T11:00:00+01:00"], env_for(db, broker, shop.url))
    assert "backfill: 2 orders" in result.output


def test_backfill_fails_with_one_line(db: str, broker: str, shop) -> None:
    def invoke(*args: str, **env: str):
        return CliRunner().invoke(main, ["backfill", *args], env={**env_for(db, broker, shop.url), **env})

    bad_time = invoke("--since", "last tuesday")
    assert bad_time.exit_code == 2 and bad_time.output.count("\n") == 1 and "ISO-8601" in bad_time.output
    no_shop = invoke("--since", "2026-11-26T09:00:00Z", WC_URL="")
    assert no_shop.exit_code == 2 and "WC_URL is required" in no_shop.output
    wrong_key = invoke("--since", "2026-11-26T09:00:00Z", WC_CONSUMER_SECRET="cs_wrong")
    assert wrong_key.exit_code == 2 and wrong_key.output.startswith("Error: credentials refused (HTTP 401)")
    no_broker = invoke("--since", "2026-11-26T09:00:00Z", AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F")
    assert no_broker.exit_code == 2 and no_broker.output.startswith("Error: RabbitMQ unavailable")
    no_db = invoke("--since", "2026-11-26T09:00:00Z", DATABASE_URL="postgresql://postgres@127.0.0.1:1/x")
    assert no_db.exit_code == 2 and "database unavailable" in no_db.output
    shop_down = invoke("--since", "2026-11-26T09:00:00Z", WC_URL="http://127.0.0.1:1")
    assert shop_down.exit_code == 2 and "connection error" in shop_down.output
