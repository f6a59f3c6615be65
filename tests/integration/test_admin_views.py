"""`rewix-sync reservations` and `rewix-sync orders` on a real database."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from click.testing import CliRunner, Result

from shared.db import session_scope
from shared.db.models import OrderLine, ShopOrder, StockLock, SupplierOrder
from services.admin.cli import main
from tests.conftest import TEST_RETRY_DELAYS

WC_URL = "https://shop.example.com"
SYNCED = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


def cli_env(database_url: str, amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F", **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "SYNC_RETRY_DELAYS": ",".join(str(d) for d in TEST_RETRY_DELAYS),
        "WC_URL": WC_URL,
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def add_order(session, order_id: int, status: str, lines: list[tuple[int, int, int]], *, deleted: bool = False,
              removed: tuple[int, ...] = (), sync_status: str = "locked", last_error: str | None = None) -> None:
    """lines: (line_id, stock_id, quantity); product id = stock_id - 100000 + 2000, variation = stock_id."""
    session.add(ShopOrder(id=order_id, number=str(order_id), status=status, deleted=deleted,
                          last_error=last_error, last_synced_at=SYNCED))
    session.flush()
    for line_id, stock_id, quantity in lines:
        session.add(OrderLine(order_id=order_id, line_id=line_id, product_id=2000 + stock_id % 1000,
                              variation_id=stock_id, stock_id=stock_id, quantity=quantity,
                              removed=line_id in removed, sync_status=sync_status))


def seed(database_url: str) -> None:
    with session_scope(database_url) as s:
        add_order(s, 1001, "pending", [(1, 100001, 2), (2, 100002, 1)], removed=(2,))
        add_order(s, 1002, "processing", [(3, 100001, 1)], sync_status="pending")
        add_order(s, 1003, "processing", [(4, 100001, 5)], sync_status="sent")
        add_order(s, 1004, "cancelled", [(5, 100003, 1)], sync_status="released")
        add_order(s, 1005, "pending", [(6, 100004, 7)], deleted=True)
        add_order(s, 1006, "on-hold", [(7, 100005, 1)], sync_status="short",
                  last_error="supplier has 0 of 1 units of 100005")
        s.flush()
        s.add(SupplierOrder(shop_order_id=1003, key="1003", supplier_order_id=777001, status=3,
                            tracking_code="1Z999AA10123456784", tracking_url="https://track.example/1Z999AA10123456784",
                            carrier_name="UPS", final=True, last_polled_at=SYNCED))
        s.add(SupplierOrder(shop_order_id=1004, key="1004", supplier_order_id=777002, status=5,
                            cancelled_in_shop=True))
        s.add(StockLock(stock_id=100001, needed=3, locked=3, available=40, synced_at=SYNCED))
        s.add(StockLock(stock_id=100003, needed=0, locked=1, available=9, synced_at=SYNCED))
        s.add(StockLock(stock_id=100005, needed=1, locked=0, available=0, synced_at=SYNCED))


def test_reservations_json_counts_only_what_open_unsent_orders_need(db: str) -> None:
    seed(db)
    result = run(["reservations", "--json"], cli_env(db))
    assert result.exit_code == 0, result.output
    rows = {row["stock_id"]: row for row in json.loads(result.output)}
    assert sorted(rows) == [100001, 100003, 100005]

    first = rows[100001]
    assert first["needed"] == 3 and first["locked"] == 3
    assert first["needed_pending"] == 2 and first["needed_processing"] == 1
    assert [o["order_id"] for o in first["orders"]] == [1001, 1002]
    assert first["orders"][0]["url"] == f"{WC_URL}/wp-admin/post.php?post=1001&action=edit"
    assert first["woocommerce_ids"] == [{"product_id": 2001, "variation_id": 100001}]
    assert first["sync_status"] == "pending"  # the most urgent of its lines
    assert first["synced_at"] == "2026-11-26T09:30:00Z"

    assert rows[100003]["needed"] == 0 and rows[100003]["locked"] == 1
    assert rows[100003]["sync_status"] == "to release"
    assert rows[100005]["sync_status"] == "short"


def test_reservations_table_for_people(db: str) -> None:
    seed(db)
    result = run(["reservations"], cli_env(db))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["Remote", "ID", "WooCommerce", "ID", "Orders", "Needed", "Locked", "Sync", "status"]
    row = next(line for line in lines if line.lstrip().startswith("100001"))
    assert "100001 (product 2001)" in row and "#1001 pending x2" in row and "#1002 processing x1" in row
    assert row.split()[-3:] == ["3", "3", "pending"]
    assert f"#1001  {WC_URL}/wp-admin/post.php?post=1001&action=edit" in result.output
    assert "1003" not in result.output  # sent: its units are the supplier order's now


def test_reservations_without_wc_url_and_empty(db: str) -> None:
    env = cli_env(db)
    result = run(["reservations"], env)
    assert result.exit_code == 0 and "nothing is reserved" in result.output
    seed(db)
    del env["WC_URL"]
    result = run(["reservations", "--json"], {**env, "WC_URL": ""})
    assert all(o["url"] is None for row in json.loads(result.output) for o in row["orders"])


def test_orders_json_and_table(db: str) -> None:
    seed(db)
    result = run(["orders", "--json"], cli_env(db))
    assert result.exit_code == 0, result.output
    rows = {row["order_id"]: row for row in json.loads(result.output)}
    assert sorted(rows) == [1001, 1002, 1003, 1004, 1005, 1006]
    sent = rows[1003]
    assert sent["supplier_order_id"] == 777001
    assert sent["supplier_status"] == 3 and sent["supplier_status_name"] == "Dispatched"
    assert sent["tracking_code"] == "1Z999AA10123456784" and sent["carrier_name"] == "UPS"
    assert sent["last_synced_at"] == "2026-11-26T09:30:00Z"
    assert rows[1001]["lines"] == [{"line_id": 1, "stock_id": 100001, "product_id": 2001, "variation_id": 100001,
                                     "quantity": 2, "sync_status": "locked", "sync_error": None}]
    assert rows[1002]["supplier_status_name"] is None
    assert rows[1004]["cancelled_in_shop"] is True
    assert rows[1006]["last_error"] == "supplier has 0 of 1 units of 100005"
    # What each order's rewix_sync_status meta says in the shop (shared/orders/sync_status.py), word for word.
    assert {order_id: row["rewix_sync_status"] for order_id, row in rows.items()} == {
        1001: "reserved", 1002: "pending", 1003: "sent: Dispatched",
        1004: "problem: cancelled in the shop after it was sent; the supplier's order is Booked",
        1005: "released", 1006: "short: stock_id 100005 x1"}
    assert rows[1003]["rewix_supplier_order"] == "777001" and rows[1002]["rewix_supplier_order"] == ""

    table = run(["orders"], cli_env(db)).output
    line_of = {int(line.split()[0].lstrip("#")): line for line in table.splitlines()[2:]}
    assert "Dispatched" in line_of[1003] and "1Z999AA10123456784 (UPS)" in line_of[1003]
    assert "sent: Dispatched" in line_of[1003] and "reserved" in line_of[1001]
    assert "777001" in line_of[1003] and "2026-11-26 09:30:00Z" in line_of[1003]
    assert "not sent" in line_of[1002]
    assert "Booked (cancelled in shop!)" in line_of[1004]
    assert "pending (deleted)" in line_of[1005]
    assert "supplier has 0 of 1 units" in line_of[1006]


def test_orders_empty(db: str) -> None:
    result = run(["orders"], cli_env(db))
    assert result.exit_code == 0 and "no shop order with supplier lines" in result.output


def test_database_down_fails_with_one_line(db: str) -> None:
    env = cli_env("postgresql://postgres@127.0.0.1:1/nowhere")
    for command in (["reservations"], ["orders", "--json"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and "database unavailable" in result.output


def test_every_command_has_help() -> None:
    for command in (["reservations"], ["orders"], ["dlq"], ["dlq", "list"], ["dlq", "show"], ["dlq", "replay"],
                    ["dlq", "purge"], ["web"], ["demo"], ["db", "upgrade"], ["products", "import"]):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
