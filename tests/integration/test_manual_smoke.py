"""docs/manual.md's going-live steps and smoke test, followed on the dev stack (simulators, real services)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import requests
from click.testing import CliRunner

from devstack import demo
from devstack.stack import DevStack
from devstack.waiting import wait_until
from services.admin.cli import main
from simulators.rewix.control import SimulatorControl
from simulators.shop import ShopControl
from tests.conftest import RUN_ID

REWIX_KEY, REWIX_PASSWORD = "smoke-key", "smoke-password"
SHOP_KEY, SHOP_SECRET = "ck_smoke", "cs_smoke"
HOOK_SECRET = "smokeTestWebhookSecret0123456789abcdef"
MODELS = [
    {"stock_id": 200001, "product_id": 20, "code": "BAG-1", "barcode": "8002000000010", "size": "", "name": "Bag",
     "availability": 10},
    {"stock_id": 200002, "product_id": 21, "code": "BELT", "barcode": "8002000000027", "size": "90", "name": "Belt",
     "availability": 10},
]


def test_going_live_and_the_smoke_test_follow_the_manual(database_url: str, amqp_url: str) -> None:
    stack = DevStack("rewix_smoke", name=f"rewix_smoke_{RUN_ID}", database_url=database_url, amqp_url=amqp_url)
    with stack:
        rewix_url = stack.start_rewix_simulator(REWIX_KEY, REWIX_PASSWORD, name="rewix")
        SimulatorControl(rewix_url).seed_catalog(MODELS)
        port = demo.free_port()
        delivery_url = f"http://127.0.0.1:{port}/webhooks/woocommerce"
        shop_url = stack.start_shop_simulator(SHOP_KEY, SHOP_SECRET, delivery_url, HOOK_SECRET, name="shop")
        shop = ShopControl(shop_url)
        shop.set_webhooks(enabled=False)  # a shop with no webhook to this system yet
        bag, belt = shop.add_products([{"name": "Bag", "sku": "8002000000010"},
                                       {"name": "Belt", "variations": [{"sku": "BELT", "size": "90"}]}])
        bag_line = {"product_id": bag["id"], "quantity": 1, "sku": "8002000000010"}
        # Paid before going live, perhaps placed at the supplier by hand.
        paid_before = shop.create_order(status="processing", lines=[bag_line],
                                        date_created_gmt=datetime.now(timezone.utc) - timedelta(hours=2))

        env = demo.service_env(stack, rewix_url, shop_url, port)
        env.update(REWIX_API_KEY=REWIX_KEY, REWIX_API_PASSWORD=REWIX_PASSWORD, WC_CONSUMER_KEY=SHOP_KEY,
                   WC_CONSUMER_SECRET=SHOP_SECRET, WC_WEBHOOK_SECRET=HOOK_SECRET, WC_WEBHOOK_DELIVERY_URL=delivery_url,
                   SHOP_CATCHUP_INTERVAL_SECONDS="2")
        cli_env = {k: v for k, v in env.items() if k not in ("PYTHONUNBUFFERED",)} | {"LOG_LEVEL": "WARNING"}

        def rewix_sync(*args: str, code: int = 0):
            result = CliRunner().invoke(main, list(args), env=cli_env)
            assert result.exit_code == code, f"rewix-sync {' '.join(args)}: {result.output}" + "".join(
                p.tail() for p in stack.services)
            return result

        # 2. The catalog; 3. the product map (the belt's SKU is its unique code, the bag's its barcode).
        rewix_sync("catalog", "sync")
        assert "matched 2 of 2" in rewix_sync("products", "match", "--import").stderr
        # 4. Check: the paid order would be locked and held.
        since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        plan = rewix_sync("backfill", "--since", since, "--dry-run").stdout
        assert f"#{paid_before['number']} processing: 200001 x1 -> lock, hold: paid already" in plan

        # 5. The workers.
        stack.start_services(env)
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).ok, 30, "ingest ready",
                   ignore=(requests.RequestException,))
        # 6. The orders already open: locked, and the paid one held.
        assert f"held #{paid_before['number']}" in rewix_sync("backfill", "--since", since).stdout

        def locked() -> dict[int, int]:
            rows = json.loads(rewix_sync("reservations", "--json").stdout)
            return {r["stock_id"]: r["locked"] for r in rows if r["locked"]}

        wait_until(lambda: locked() == {200001: 1}, 30, "the paid order locked")
        # 7. The webhooks.
        rewix_sync("webhooks", "install")
        rewix_sync("webhooks", "status")

        # 8. The smoke test: a pending test order is locked...
        test_order = shop.create_order(status="pending", lines=[
            {"product_id": belt["id"], "variation_id": belt["variations"][0], "quantity": 1, "sku": "BELT"}])
        wait_until(lambda: locked() == {200001: 1, 200002: 1}, 30, "the test order locked")
        orders = {o["order_id"]: o for o in json.loads(rewix_sync("orders", "--json").stdout)}
        assert orders[test_order["id"]]["status"] == "pending"
        rewix_sync("reconcile")
        # ...then cancelled and released; never paid.
        shop.edit_order(test_order["id"], status="cancelled")
        wait_until(lambda: locked() == {200001: 1}, 30, "the test order released")
        rewix_sync("reconcile")
        supplier = SimulatorControl(rewix_url).state()
        assert supplier["orders"] == []  # nothing was sent: the held order waits for the owner
        assert {int(k): int(v) for k, v in supplier["growing_order"]["models"].items() if int(v)} == {200001: 1}
        shop.trash(test_order["id"])
        stack.check_alive()
