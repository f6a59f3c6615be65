"""`rewix-sync status` against running services: exit 0 while all is well, 1 with the row to act on."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from shared.db import normalise_url, session_scope
from shared.db.models import DeadLetterRecord, OrderLine, ShopOrder
from shared.settings import Settings
from services.admin.cli import main
from simulators.rewix import SimulatorControl
from simulators.rewix.server import start_in_thread as start_rewix
from simulators.shop.server import start_in_thread as start_shop
from tests.integration.worker_processes import (
    REWIX_KEY, REWIX_PASSWORD, WC_KEY, WC_SECRET, ServiceProcess, free_port, ingest_env, worker_env,
)
from tests.support import wait_until


@pytest.fixture
def system(db: str, broker: str) -> Iterator[dict]:
    rewix = start_rewix(api_key=REWIX_KEY, password=REWIX_PASSWORD)
    shop = start_shop(consumer_key=WC_KEY, consumer_secret=WC_SECRET)
    env = worker_env(db, broker, rewix.url, shop.url, SHOP_CATCHUP_INTERVAL_SECONDS="2",
                     SHOP_VERIFY_INTERVAL_SECONDS="0")
    ingest = ingest_env(db, broker)
    processes = [
        ServiceProcess("services.ingest", ingest),
        ServiceProcess("services.supplier_sync", env),
        ServiceProcess("services.status_poller", {**env, "METRICS_PORT": str(free_port())}),
    ]
    cli = {key: env[key] for key in ("DATABASE_URL", "AMQP_URL", "REWIX_API_URL", "REWIX_API_KEY",
                                     "REWIX_API_PASSWORD", "WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET",
                                     "SHOP_CATCHUP_INTERVAL_SECONDS", "SHOP_VERIFY_INTERVAL_SECONDS")}
    cli.update(INGEST_URL=f"http://127.0.0.1:{ingest['INGEST_PORT']}", LOG_LEVEL="WARNING")
    try:
        yield {"env": cli, "rewix": rewix, "processes": processes, "db": db}
    finally:
        for process in processes:
            process.stop()
        shop.stop()
        rewix.stop()


def status(env: dict[str, str]) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(main, ["status", "--json"], env=env, catch_exceptions=False)
    report = json.loads(result.output)
    assert report["ok"] is (result.exit_code == 0)
    return result.exit_code, {row["name"]: row for row in report["rows"]}


def test_status_is_quiet_while_all_is_well_and_points_at_what_needs_a_person(system):
    env = system["env"]

    def all_well():
        code, rows = status(env)
        return code == 0 and rows["catch-up"]["state"] == "ok" and rows

    rows = wait_until(all_well, timeout=40, what="status exit 0 with the catch-up done")
    # Turned off here (SHOP_VERIFY_INTERVAL_SECONDS=0) once the setting exists; until then it has not run yet.
    verification = "off" if "shop_verify_interval_seconds" in Settings.model_fields else "warning"
    assert {name: row["state"] for name, row in rows.items()} == {
        "database": "ok", "RabbitMQ": "ok", "supplier_sync": "ok", "status_poller": "ok", "ingest": "ok",
        "supplier account": "ok", "shop": "ok", "webhooks": "off", "webhook sources": "ok", "catch-up": "ok",
        "verification": verification, "dead letters": "ok", "short lines": "ok", "orders to send": "ok",
        "product map": "ok", "payments": "ok",
    }
    # status_poller's site check has read where the shop says it is: deliveries from there are accepted.
    rows = wait_until(lambda: (r := status(env)[1]) and "(the shop's home)" in r["webhook sources"]["text"] and r,
                      timeout=20, what="the shop's home learned")
    assert rows["webhook sources"]["text"].startswith(f"deliveries accepted from {env['WC_URL']} (the shop's home)")

    # The table for people says the same.
    table = CliRunner().invoke(main, ["status"], env=env, catch_exceptions=False)
    assert table.exit_code == 0 and "nothing needs a person" in table.output

    # A dead letter, a line short for 20 minutes, a paid order unsent for 20 minutes.
    old = datetime.now(timezone.utc) - timedelta(minutes=20)
    with session_scope(system["db"]) as session:
        session.add(DeadLetterRecord(queue="rewix.order_lines", message_id="m-1", body="{}", reason="HTTP 404"))
        session.add(ShopOrder(id=501, number="501", status="on-hold"))
        session.add(ShopOrder(id=502, number="502", status="processing"))
        session.flush()
        session.add(OrderLine(order_id=501, line_id=1, product_id=1, stock_id=1001, quantity=2, sync_status="short"))
        session.add(OrderLine(order_id=502, line_id=1, product_id=1, stock_id=1002, quantity=1, sync_status="locked"))
    engine = create_engine(normalise_url(system["db"]))
    with engine.begin() as connection:
        connection.execute(text("UPDATE order_lines SET updated_at = :old"), {"old": old})
        connection.execute(text("UPDATE shop_orders SET updated_at = :old"), {"old": old})
        # An open order whose only line matched nothing, as ingest remembers it (shared/products/waiting.py).
        connection.execute(text("INSERT INTO waiting_orders (order_id, number, status, date_modified_gmt, lines,"
                                " lookup_version, since) VALUES (503, '503', 'pending', :old, '[[9100, 0, \"MUG\"]]',"
                                " 1, :old)"), {"old": old})
    engine.dispose()
    SimulatorControl(system["rewix"].url).faults(status_window={"status": 401, "seconds": 60})
    system["processes"][1].stop()  # supplier_sync

    code, rows = wait_until(lambda: (r := status(env)) and r[1]["supplier_sync"]["state"] == "attention" and r,
                            timeout=20, what="supplier_sync missing")
    assert code == 1
    assert rows["dead letters"]["state"] == "attention" and rows["dead letters"]["text"].startswith("1 waiting")
    assert rows["short lines"]["state"] == "attention" and "oldest for 20 min" in rows["short lines"]["text"]
    assert rows["orders to send"]["state"] == "attention" and rows["orders to send"]["text"].startswith("1 paid")
    assert rows["product map"]["state"] == "attention"
    assert rows["product map"]["text"].startswith("1 open order waits for a product map")
    assert "the oldest #503 for 20 min" in rows["product map"]["text"]
    assert rows["supplier account"]["state"] == "attention" and "refused (HTTP 401)" in rows["supplier account"]["text"]
    assert "nothing consumes rewix.order_lines" in rows["supplier_sync"]["text"]
    assert rows["status_poller"]["state"] == "ok"
    table = CliRunner().invoke(main, ["status"], env=env, catch_exceptions=False)
    assert table.exit_code == 1 and "needs a person" in table.output
    assert any(line.startswith("ACT") and "dead letters" in line for line in table.output.splitlines())


def test_status_with_everything_down_still_answers_every_row(db):
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
           "INGEST_URL": "http://127.0.0.1:1", "REWIX_API_URL": "http://127.0.0.1:1", "REWIX_API_KEY": "k",
           "REWIX_API_PASSWORD": "p", "WC_URL": "http://127.0.0.1:1", "WC_CONSUMER_KEY": "k",
           "WC_CONSUMER_SECRET": "s", "LOG_LEVEL": "WARNING"}
    code, rows = status(env)
    assert code == 1
    for name in ("database", "RabbitMQ", "ingest", "supplier account", "shop", "records", "payments"):
        assert rows[name]["state"] == "attention", rows[name]
