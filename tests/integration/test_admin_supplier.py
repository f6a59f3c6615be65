"""`rewix-sync reconcile` and `rewix-sync catalog sync` against the supplier simulator.

`reconcile --apply` has supplier_sync set the supplier: its consumer runs on a
thread here (`sync`), on the real broker and database, as in the other tests.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from shared.clients.rewix import RewixClient
from shared.db import normalise_url, session_scope
from shared.db.models import CatalogModel, StockLock, SyncState
from shared.messaging import topology
from shared.messaging.consumer import BatchConsumer
from services.admin.cli import main
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units
from simulators.rewix import start_in_thread
from simulators.rewix.control import SimulatorControl
from tests.conftest import TEST_RETRY_DELAYS, queue_depth
from tests.integration.test_admin_views import add_order, cli_env, run
from tests.support import wait_until

KEY, PASSWORD = "admin-test-key", "admin-test-password"


@pytest.fixture
def supplier() -> Iterator[tuple[str, SimulatorControl, RewixClient]]:
    server = start_in_thread(api_key=KEY, password=PASSWORD)
    control = SimulatorControl(server.url)
    control.seed_catalog([
        {"stock_id": 100001, "product_id": 501, "code": "SNK-GRUN-42", "barcode": "8001234500012", "availability": 10},
        {"stock_id": 100002, "product_id": 501, "code": "SNK-GRUN-43", "barcode": "8001234500029", "availability": 10},
        {"stock_id": 100003, "product_id": 502, "code": "TEE-0001", "barcode": "8001234500036", "availability": 10},
        {"stock_id": 100004, "product_id": 503, "code": "BAG-9", "barcode": "", "availability": 10},
        {"stock_id": 100005, "product_id": 504, "code": "HAT-1", "barcode": "", "availability": 0},
    ])
    client = RewixClient(server.url, KEY, PASSWORD)
    yield server.url, control, client
    client.close()
    control.close()
    server.stop()


@pytest.fixture
def sync(db: str, broker: str, supplier) -> Iterator[str]:
    """supplier_sync's consumer against the same supplier; yields the broker's URL."""
    url, _, _ = supplier
    stop = threading.Event()
    client = RewixClient(url, KEY, PASSWORD, timeout=5)
    consumer = BatchConsumer(broker, topology.ORDER_LINES, OrderLineHandler(sql_units(db), client),
                             retry_delays=TEST_RETRY_DELAYS, stop=stop, name="sync-admin")
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    wait_until(lambda: consumers(broker) == 1, timeout=20, what="supplier_sync consuming")
    yield broker
    stop.set()
    thread.join(timeout=10)
    client.close()


def consumers(broker: str) -> int:
    from shared.messaging.amqp import consumer_count

    return consumer_count(broker, topology.ORDER_LINES.name)


def env_for(db: str, url: str, broker: str | None = None, **extra: str) -> dict[str, str]:
    args = (db, broker) if broker else (db,)
    return cli_env(*args, REWIX_API_URL=url, REWIX_API_KEY=KEY, REWIX_API_PASSWORD=PASSWORD, **extra)


def seed_orders(db: str) -> None:
    with session_scope(db) as s:
        add_order(s, 2001, "pending", [(1, 100001, 2), (2, 100004, 5)])
        add_order(s, 2002, "processing", [(3, 100001, 1)])
        add_order(s, 2003, "cancelled", [(4, 100003, 2)], sync_status="released")
        add_order(s, 2004, "on-hold", [(5, 100005, 1)], sync_status="short")


def test_reconcile_reports_every_difference_and_exits_1(db: str, supplier) -> None:
    url, _, client = supplier
    seed_orders(db)
    client.modify_growing_order(set={100001: 1, 100003: 2, 100004: 5})
    result = run(["reconcile"], env_for(db, url))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["Remote", "ID", "Needed", "Locked", "at", "supplier", "Difference"]
    rows = {int(line.split()[0]): line.split()[1:] for line in lines[2:5]}
    assert rows == {
        100001: ["3", "1", "+2", "(lock", "2", "more)"],
        100003: ["0", "2", "-2", "(release", "2)"],
        100005: ["1", "0", "+1", "(lock", "1", "more)"],
    }
    assert "3 difference(s)" in lines[5]
    assert client.get_growing_order().locked(100001) == 1  # looking changes nothing


def test_reconcile_apply_sets_the_supplier_and_records_what_it_holds(db: str, supplier, sync: str) -> None:
    url, _, client = supplier
    seed_orders(db)
    client.modify_growing_order(set={100001: 1, 100003: 2, 100004: 5})
    result = run(["reconcile", "--apply"], env_for(db, url, sync))
    # 100005 has no stock at the supplier: it cannot be locked, so a difference remains.
    assert result.exit_code == 1, result.output
    assert "set 3 model(s) at the supplier: 100001=3, 100003=0, 100005=1" in result.output
    assert "1 difference(s) remain" in result.output
    growing = client.get_growing_order()
    assert {s: m.locked for s, m in growing.models.items() if m.locked} == {100001: 3, 100004: 5}
    with session_scope(db) as s:
        locks = {row.stock_id: (row.needed, row.locked) for row in s.scalars(select(StockLock))}
    assert locks == {100001: (3, 3), 100003: (0, 0), 100005: (1, 0)}

    with session_scope(db) as s:  # the order that needed the missing model is cancelled
        s.execute(text("UPDATE shop_orders SET status = 'cancelled' WHERE id = 2004"))
    result = run(["reconcile", "--apply"], env_for(db, url, sync))
    assert result.exit_code == 0, result.output
    assert "the supplier holds exactly what the open orders need" in result.output


def test_reconcile_waits_for_supplier_syncs_lock_on_the_stock_id(db: str, supplier, sync: str) -> None:
    url, _, client = supplier
    seed_orders(db)
    client.modify_growing_order(set={100001: 3, 100004: 5, 100005: 0})
    with session_scope(db) as s:
        s.execute(text("UPDATE shop_orders SET status = 'cancelled' WHERE id = 2004"))
        s.execute(text("UPDATE order_lines SET quantity = 4 WHERE order_id = 2001 AND line_id = 1"))
    engine = create_engine(normalise_url(db))
    holder = engine.connect()
    transaction = holder.begin()
    holder.execute(text("SELECT pg_advisory_xact_lock(100001)"))
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault("result", run(["reconcile", "--apply"], env_for(db, url, sync))))
    worker.start()
    time.sleep(1.0)
    assert worker.is_alive(), "reconcile --apply did not wait for the advisory lock"
    assert client.get_growing_order().locked(100001) == 3
    transaction.rollback()
    holder.close()
    engine.dispose()
    worker.join(timeout=30)
    assert outcome["result"].exit_code == 0, outcome["result"].output
    assert client.get_growing_order().locked(100001) == 5


def test_reconcile_apply_without_supplier_sync_changes_nothing_and_exits_1(db: str, supplier, broker: str) -> None:
    url, _, client = supplier
    seed_orders(db)
    client.modify_growing_order(set={100001: 1, 100003: 2, 100004: 5})
    result = run(["reconcile", "--apply"], env_for(db, url, broker))
    assert result.exit_code == 1, result.output
    assert "supplier_sync is not running (nothing consumes rewix.order_lines)" in result.output
    assert {s: m.locked for s, m in client.get_growing_order().models.items() if m.locked} == \
        {100001: 1, 100003: 2, 100004: 5}
    with session_scope(db) as s:
        assert s.scalars(select(StockLock)).all() == []  # nothing marked either
    assert queue_depth(broker, topology.ORDER_LINES.name) == 0
    as_json = run(["reconcile", "--apply", "--json"], env_for(db, url, broker))
    report = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and report["ok"] is False and report["error"].startswith("supplier_sync is not")
    assert {d["stock_id"] for d in report["differences"]} == {100001, 100003, 100005}


def test_reconcile_when_all_agree(db: str, supplier) -> None:
    url, _, _ = supplier
    result = run(["reconcile"], env_for(db, url))
    assert result.exit_code == 0 and "holds exactly what the open orders need" in result.output


def test_reconcile_fails_with_one_line(db: str, supplier) -> None:
    url, control, _ = supplier
    wrong = CliRunner().invoke(main, ["reconcile"], env={**env_for(db, url), "REWIX_API_PASSWORD": "nope"})
    assert wrong.exit_code == 2 and wrong.output.startswith("Error: credentials refused (HTTP 401)")
    assert wrong.output.count("\n") == 1
    missing = CliRunner().invoke(main, ["reconcile"], env={**env_for(db, url), "REWIX_API_URL": ""})
    assert missing.exit_code == 2 and "REWIX_API_URL is required" in missing.output
    down = CliRunner().invoke(main, ["reconcile"], env=env_for(db, "http://127.0.0.1:1"))
    assert down.exit_code == 2 and "connection error" in down.output and down.output.count("\n") == 1
    control.faults(fail_next={"status": 503, "count": 1})
    busy = CliRunner().invoke(main, ["reconcile"], env=env_for(db, url))
    assert busy.exit_code == 2 and "HTTP 503" in busy.output


def catalog_rows(db: str) -> dict[int, tuple[int, str, str, int]]:
    with session_scope(db) as s:
        return {m.stock_id: (m.product_id, m.code, m.barcode, m.availability) for m in s.scalars(select(CatalogModel))}


def test_catalog_sync_full_then_incremental(db: str, supplier) -> None:
    url, control, _ = supplier
    result = run(["catalog", "sync"], env_for(db, url))
    assert result.exit_code == 0, result.output
    assert "catalog: 5 models stored (full catalog)" in result.output
    assert catalog_rows(db)[100001] == (501, "SNK-GRUN-42", "8001234500012", 10)
    with session_scope(db) as s:
        first_stamp = s.get(SyncState, "catalog_last_update").value

    time.sleep(0.01)
    control.seed_catalog([{"stock_id": 100003, "availability": 4}, {"stock_id": 100006, "product_id": 505,
                                                                     "code": "NEW-1", "availability": 3}])
    result = run(["catalog", "sync"], env_for(db, url))
    assert result.exit_code == 0, result.output
    assert f"(changes since {first_stamp})" in result.output
    rows = catalog_rows(db)
    assert rows[100003][3] == 4 and rows[100006] == (505, "NEW-1", "", 3) and len(rows) == 6


def test_catalog_sync_falls_back_to_full_when_the_window_expired(db: str, supplier) -> None:
    url, _, _ = supplier
    with session_scope(db) as s:
        s.add(SyncState(name="catalog_last_update", value="2020-01-01T00:00:00.000Z"))
    result = run(["catalog", "sync"], env_for(db, url))
    assert result.exit_code == 0, result.output
    assert "5 models stored (full catalog)" in result.output
    with session_scope(db) as s:
        assert s.get(SyncState, "catalog_last_update").value != "2020-01-01T00:00:00.000Z"


def test_catalog_sync_rate_limited(db: str, supplier) -> None:
    url, control, client = supplier
    control.faults(rate_limit={"per_second": 0.001, "retry_after": 7})
    client.get_growing_order()  # spends the one token
    result = CliRunner().invoke(main, ["catalog", "sync"], env=env_for(db, url))
    assert result.exit_code == 1
    assert result.output == "Error: rate limited by the supplier, retry in 7 s\n"
    assert catalog_rows(db) == {}


def test_supplier_commands_have_help() -> None:
    for command in (["reconcile"], ["catalog"], ["catalog", "sync"], ["backfill"]):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
