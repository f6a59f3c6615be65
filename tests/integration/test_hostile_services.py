"""ingest, supplier_sync and status_poller as processes, against both simulators: a paid order full of
control characters reaches the supplier as XML it parses, and nothing any service logs, while the
supplier answers with error pages quoting credentials and the customer, shows a secret or the
customer's name, street, phone or e-mail."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.clients.rewix import CONFIRMED, DISPATCHED
from shared.clients.rewix.fitting import cut_on_word
from shared.clients.rewix.xml import TEXT_LIMITS, wire_text
from simulators.shop.orders import DEFAULT_BILLING, make_order
from simulators.shop.php_json import wp_json_encode
from tests.faults.conftest import STOCK_OF_PRODUCT, World, shop_line, signed_headers
from tests.support import wait_until

PRODUCTS = list(STOCK_OF_PRODUCT)
# An error page that quotes everything it should not: a database URL with its password, the
# customer's e-mail and phone, and a NUL.
ERROR_PAGE = ("backend down: postgresql://rewix:pg-pass-0001@db/rewix unreachable; customer "
              f"{DEFAULT_BILLING['email']} {DEFAULT_BILLING['phone']}\x00 please retry")
HOSTILE_SHIPPING = {"first_name": "Zoë\x0b", "last_name": "Müller-Ørsted\x1b[0m", "address_1": "ul.\x1b Piotrkowska\x0c 104/2",
                    "address_2": "\x7f", "phone": "+48 42 123 45 67"}
HOSTILE_NOTE = "Ring twice\x07\x08, then leave it at the door\x1b. " + "Please " * 700


@pytest.fixture
def world(db: str, broker: str, tmp_path: Path) -> Iterator[World]:
    w = World(db, broker, tmp_path)
    yield w
    w.close(failed=False)


@pytest.mark.timeout(240)
def test_control_characters_reach_the_supplier_cleaned_and_no_log_line_leaks(world: World) -> None:
    ingest = world.ingest()
    sync = world.supplier_sync()
    poller = world.status_poller()
    services = [ingest, sync, poller]
    world.connect_webhooks(ingest)
    # The first calls meet the error page; supplier_sync retries them.
    world.rewix.state.configure_faults({"fail_next": {"status": 503, "count": 3, "body": ERROR_PAGE}})

    burst = [world.create_order("pending", world.random_lines(PRODUCTS)) for _ in range(6)]
    burst += [world.create_order("processing", world.random_lines(PRODUCTS)) for _ in range(3)]
    hostile = world.shop.state.create_order(
        status="processing", lines=[shop_line(PRODUCTS[0], 2)], shipping=HOSTILE_SHIPPING, customer_note=HOSTILE_NOTE,
    )

    converged = world.wait_exact(90, abort=world.stop_signs(services))
    assert converged.problem is None, converged.problem + "\n" + sync.tail()
    [sent] = [o for o in world.supplier_orders() if o["key"] == hostile["number"]]
    recipient = sent["recipient"]
    assert recipient["recipient"] == "Zoë Müller-Ørsted[0m"
    assert recipient["street_name"] == "ul. Piotrkowska 104/2"
    assert recipient["notes"].startswith("Ring twice, then leave it at the door. Please")
    # The control characters dropped, then fitted to the supplier's 2,000 characters on a word boundary.
    assert recipient["notes"] == cut_on_word(wire_text(HOSTILE_NOTE), TEXT_LIMITS["notes"]).strip()
    assert 1_900 < len(recipient["notes"]) <= 2_000
    assert len(world.supplier_orders()) == 4  # the hostile order and the burst's three paid ones

    # The supplier moves every order on; its first answers to the poller are the error page.
    world.rewix.state.configure_faults({"fail_next": {"status": 500, "count": 2, "body": ERROR_PAGE}})
    for order in world.supplier_orders():
        world.set_supplier_status(order["order_id"], CONFIRMED)
    for order in world.supplier_orders():
        world.set_supplier_status(order["order_id"], DISPATCHED, tracking_code="1Z999AA10123456784",
                                  tracking_url="https://track.example/1Z999AA10123456784", carrier_name="UPS")

    def all_dispatched() -> bool:
        paid, missing, extra = world.status_notes(DISPATCHED)
        return paid == 4 and missing == 0

    wait_until(all_dispatched, 60, "every paid order's Dispatched note")

    # Refused deliveries name the field, never its value (a number too long is cut, not refused: text never
    # refuses an order; a status is WooCommerce's, and one longer than any it has is not an order).
    too_long = make_order(900001, lines=[shop_line(PRODUCTS[1], 1)])
    too_long["status"] = "S" * 51
    far = make_order(900002, lines=[shop_line(PRODUCTS[1], 1)])
    far["date_modified_gmt"] = "9999-12-31T23:59:59"
    for body in (too_long, far):
        raw = wp_json_encode(body)
        answer = requests.post(ingest.webhook_url, data=raw, headers=signed_headers(raw), timeout=10)
        assert answer.status_code == 400, answer.text

    assert all(s.alive for s in services)
    assert sync.count_events("consuming") >= 1 and poller.count_events("consuming") >= 1
    assert not world.leaks(), world.leaks()[:10]
    # The masking did not swallow what an operator needs: the supplier's failure is in the logs.
    logged = "\n".join(s.text(since_start=False) for s in services)
    assert "backend down: postgresql://rewix:[secret]@db/rewix unreachable; customer [email] [phone]" in logged
    assert "pg-pass-0001" not in logged
