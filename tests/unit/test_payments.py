"""Paying the supplier, the pure parts: autoConfirm on the wire, catalog prices, the report's amounts and
verdict, the `payments` row, the payment watch's pace, and the simulated account that confirms at once."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from services.admin.health_report import ATTENTION, OK, WARNING
from services.admin.payment_health import payment_row
from services.admin.payment_tables import report_text, summary, verdict
from services.admin.payments import (
    Amount, Item, PaymentReport, Unsent, WaitingOrder, amount_of, combined, do_not_pay, from_two_way,
    paid_not_booked, total_of, unsent_fix,
)
from shared.clients.rewix import DropshippingOrder, Recipient
from shared.clients.rewix.xml import build_dropshipping_order, parse_catalog
from shared.orders.payment_waits import PaymentWait, customers_waiting, note_text, overdue
from services.admin.supplier_diff import Difference as TwoWayDifference
from services.status_poller.payment_watch import check_interval
from simulators.rewix.state import BOOKED, CONFIRMED, SimulatorState
from simulators.rewix.wire import BadRequest, OrderRequest, parse_dropshipping_request

SINCE = datetime(2026, 12, 8, 9, 14, 30, tzinfo=timezone.utc)
DAY = 86400.0


def order(auto_confirm: bool = False) -> DropshippingOrder:
    return DropshippingOrder(key="1001", date=SINCE, items={100001: 2}, auto_confirm=auto_confirm,
                             recipient=Recipient(name="Ana Lima", address_1="Rua A 1", postcode="1000-001",
                                                 city="Lisboa", countrycode="PT"))


def wait(number: str = "1001", waited: float = 60.0, cancelled: bool = False, **kw: object) -> PaymentWait:
    fields: dict[str, object] = dict(supplier_row=1, shop_order_id=int(number), number=number, supplier_order_id=4711,
                                     key=number, status=5, waiting_since=SINCE, waited_seconds=waited,
                                     customer="Ana Lima", cancelled_in_shop=cancelled)
    fields.update(kw)
    return PaymentWait(**fields)  # type: ignore[arg-type]


# --- autoConfirm on the wire -------------------------------------------------------------------


def test_auto_confirm_is_sent_only_when_asked_and_the_strict_server_reads_it() -> None:
    asked = ET.fromstring(build_dropshipping_order(order(auto_confirm=True)))
    assert asked.findtext("order_list/order/autoConfirm") == "true"
    plain = ET.fromstring(build_dropshipping_order(order()))
    assert plain.find("order_list/order/autoConfirm") is None
    [read] = parse_dropshipping_request(build_dropshipping_order(order(auto_confirm=True)))
    assert read.auto_confirm is True
    [read] = parse_dropshipping_request(build_dropshipping_order(order()))
    assert read.auto_confirm is None


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_the_simulator_reads_auto_confirm_as_an_xs_boolean(value: str, expected: bool) -> None:
    body = build_dropshipping_order(order()).replace(b"</key>", f"</key><autoConfirm>{value}</autoConfirm>".encode())
    [read] = parse_dropshipping_request(body)
    assert read.auto_confirm is expected


def test_the_simulator_refuses_an_auto_confirm_that_is_no_boolean() -> None:
    body = build_dropshipping_order(order()).replace(b"</key>", b"</key><autoConfirm>yes</autoConfirm>")
    with pytest.raises(BadRequest, match="autoConfirm"):
        parse_dropshipping_request(body)


# --- the simulated account ---------------------------------------------------------------------


def simulator(**account: object) -> SimulatorState:
    state = SimulatorState()
    state.upsert_models([{"stock_id": 1, "availability": 10, "price": 12.5},
                         {"stock_id": 2, "availability": 10}])  # no price: e-credit cannot pay it
    state.configure_account(account)
    return state


def request(key: str, items: dict[int, int], auto_confirm: bool | None = True) -> OrderRequest:
    return OrderRequest(key=key, date="2026/12/08 09:14:30 +0000", recipient={}, items=items, auto_confirm=auto_confirm)


def statuses(state: SimulatorState) -> dict[str, int]:
    return {o["key"]: o["status"] for o in state.snapshot()["orders"]}


def test_e_credit_confirms_what_it_covers_and_is_spent() -> None:
    state = simulator(e_credit=30)
    state.create_orders([request("a", {1: 2})])  # 25.00
    state.create_orders([request("b", {1: 1})])  # 12.50 > 5.00 left
    state.create_orders([request("c", {2: 1})])  # no price
    assert statuses(state) == {"a": CONFIRMED, "b": BOOKED, "c": BOOKED}
    assert state.snapshot()["account"]["e_credit"] == 5.0


def test_auto_confirmation_confirms_any_order_that_asks_and_none_that_does_not() -> None:
    state = simulator(auto_confirmation=True)
    state.create_orders([request("asks", {2: 1}), request("silent", {1: 1}, auto_confirm=None)])
    assert statuses(state) == {"asks": CONFIRMED, "silent": BOOKED}


def test_the_account_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        simulator(auto_confirmation="yes")
    with pytest.raises(ValueError):
        simulator(e_credit=-1)


def test_a_unit_locked_by_hand_is_capped_at_the_stock() -> None:
    state = simulator()
    assert state.lock_by_hand({1: 3}) == {1: 3}
    assert state.lock_by_hand({1: 30}) == {1: 10}
    with pytest.raises(KeyError):
        state.lock_by_hand({99: 1})


# --- catalog prices ----------------------------------------------------------------------------


def catalog(product: dict[str, object], *models: dict[str, object]) -> bytes:
    return json.dumps({"lastUpdate": "x", "pageItems": [
        {"id": 7, "name": "Tee", **product, "models": [{"id": 100 + n, "code": "C", **m} for n, m in enumerate(models)]}
    ]}).encode()


def test_the_unit_price_is_the_models_best_taxable_then_its_taxable_then_the_products() -> None:
    models = parse_catalog(catalog(
        {"bestTaxable": 9, "currency": "usd"},
        {"bestTaxable": 12.5, "taxable": 14, "currency": "EUR"},
        {"taxable": "14.20"},
        {},
        {"bestTaxable": "n/a", "taxable": -3},
    )).models
    assert [(m.price, m.currency) for m in models] == [
        (Decimal("12.5000"), "EUR"), (Decimal("14.2000"), "USD"), (Decimal("9.0000"), "USD"), (Decimal("9.0000"), "USD")]


def test_a_catalog_without_prices_keeps_none() -> None:
    [model] = parse_catalog(catalog({}, {"currency": "euro", "bestTaxable": True})).models
    assert model.price is None and model.currency == ""


# --- the report ----------------------------------------------------------------------------------


def item(stock_id: int, quantity: int, price: str | None, currency: str = "EUR") -> Item:
    return Item(stock_id, quantity, unit_price=Decimal(price) if price is not None else None,
                currency=currency if price is not None else "")


def test_an_amount_is_known_only_when_every_item_has_a_price_in_one_currency() -> None:
    assert amount_of([item(1, 2, "12.5"), item(2, 1, "30")]) == Amount(Decimal("55.00"), "EUR")
    assert amount_of([item(1, 2, "12.5"), item(2, 1, None)]) is None
    assert amount_of([item(1, 2, "12.5"), item(2, 1, "30", "USD")]) is None
    assert amount_of([]) is None
    assert total_of([Amount(Decimal("25.00"), "EUR"), Amount(Decimal("30.00"), "EUR")]) == Amount(Decimal("55.00"), "EUR")
    assert total_of([Amount(Decimal("25.00"), "EUR"), None]) is None
    assert str(Amount(Decimal("25"), "EUR")) == "EUR 25.00"


def test_a_paid_order_not_booked_says_why_the_most_pressing_first() -> None:
    assert "--send-paid" in unsent_fix(Unsent(7, "1007", frozenset({"short"}), held=True))
    assert "dlq list" in unsent_fix(Unsent(7, "1007", frozenset({"short", "dead_lettered"}), held=False))
    assert "reservations" in unsent_fix(Unsent(7, "1007", frozenset({"short", "locked"}), held=False))
    assert "#1007 shortly" in unsent_fix(Unsent(7, "1007", frozenset({"locked"}), held=False))


def test_paid_orders_the_shop_knows_and_the_records_do_not_are_named_once() -> None:
    found = paid_not_booked([Unsent(7, "1007", frozenset({"locked"}), False)], [(7, "1007"), (8, "1008")])
    assert [(d.order_id, d.wrong) for d in found] == [(7, "supplier"), (8, "records")]
    assert "backfill --order 8 --send-paid" in found[1].fix


def test_each_order_is_named_once_the_first_finding_winning() -> None:
    cancelled = WaitingOrder(wait(number="7", cancelled=True), (), overdue=False)
    first = do_not_pay([cancelled, WaitingOrder(wait(number="9"), (), False)])
    later = paid_not_booked([Unsent(7, "7", frozenset(), False)])
    stock = from_two_way([TwoWayDifference(100003, needed=0, locked=1)])
    merged = combined(first, stock, later)
    assert [(d.kind, d.order_id or d.stock_id) for d in merged] == [("do_not_pay", 7), ("stock", 100003)]
    assert merged[1].fix.startswith("release 1 at the supplier") and (merged[1].records, merged[1].supplier) == (0, 1)


def report(*orders: WaitingOrder, differences: list | None = None, compared: str | None = "three") -> PaymentReport:
    return PaymentReport(list(orders), differences or [], compared, DAY, "https://pay.example.com")


def test_the_verdict_and_the_exit_code() -> None:
    waiting = WaitingOrder(wait(), (item(1, 2, "12.5"),), overdue=False)
    assert report().exit_code == 0 and not report().ready_to_pay
    assert verdict(report()).startswith("No supplier order waits")
    assert report(waiting).ready_to_pay and report(waiting).exit_code == 0
    assert verdict(report(waiting)).startswith("Ready to pay")
    blocked = report(waiting, differences=do_not_pay([WaitingOrder(wait(cancelled=True), (), False)]))
    assert not blocked.ready_to_pay and blocked.exit_code == 1
    assert verdict(blocked) == "Not ready to pay: 1 difference to fix first."
    unchecked = replace(report(waiting, compared=None), notes=["the supplier is down"])
    assert not unchecked.ready_to_pay and unchecked.exit_code == 1
    assert verdict(unchecked) == "Not checked before paying: the supplier is down."


def test_the_report_as_text_and_json() -> None:
    known = WaitingOrder(wait(), (Item(100001, 2, "TS-M", "T-shirt", "M", Decimal("12.5"), "EUR"),), overdue=True)
    unknown = WaitingOrder(wait(number="1002", waited=30, customer="Bo"), (item(100003, 1, None),), overdue=False)
    both = report(known, unknown)
    assert summary(both) == ("2 supplier orders wait for payment, the total unknown (the catalog gives no price "
                             "for some items), the oldest for 60 s; 1 waited longer than 24 h, their customers wait.")
    assert summary(report(known)).startswith("1 supplier order waits for payment, EUR 25.00 in all")
    text = report_text(both)
    assert "100001 TS-M T-shirt M ×2" in text and "amount unknown" in text and "60 s (overdue)" in text
    assert text.endswith("Pay at https://pay.example.com")
    data = both.as_json()
    assert data["ready_to_pay"] is True and data["total"] is None
    assert data["orders"][0]["amount"] == "25.00" and data["orders"][0]["items"][0]["unit_price"] == "12.50"
    assert data["orders"][0]["waiting_since"] == SINCE and data["orders"][0]["shop_order"] == "1001"


# --- who waits, and the status row ---------------------------------------------------------------


def test_a_wait_past_the_threshold_is_overdue_unless_its_shop_order_was_cancelled() -> None:
    waits = [wait("1", waited=2 * DAY), wait("2", waited=2 * DAY, cancelled=True), wait("3", waited=60)]
    assert [w.number for w in customers_waiting(waits)] == ["1", "3"]
    assert [w.number for w in overdue(waits, DAY)] == ["1"]


def test_the_payments_row() -> None:
    assert payment_row([], DAY).state == OK
    row = payment_row([wait("1001", waited=3 * 3600), wait("1002", waited=60)], DAY)
    assert row.state == WARNING and "2 supplier orders wait for payment, the oldest #1001 for 3 h" in row.text
    late = [wait(str(n), waited=2 * DAY + n) for n in range(12)]
    row = payment_row(late, DAY)
    assert row.state == ATTENTION
    assert row.text.startswith("12 supplier orders have waited for payment longer than 24 h: #0 (2 days)")
    assert "and 2 more" in row.text and "the oldest, #0, since 2026-12-08 09:14 UTC" in row.text


def test_the_note_says_since_when_and_what() -> None:
    assert note_text(wait()) == (
        "Waiting for payment at the supplier since 2026-12-08 09:14 UTC: supplier order 4711 is Booked, and the "
        "supplier prepares the parcel only once the dropshipper pays for it on the supplier's platform "
        "(`rewix-sync pay` lists what to pay).")
    assert "supplier order key 1001 is Booked" in note_text(wait(supplier_order_id=None))


@pytest.mark.parametrize(("threshold", "interval"), [(DAY, 60.0), (300.0, 30.0), (1.2, 1.0), (0.0, 1.0)])
def test_the_watch_looks_about_ten_times_within_the_threshold(threshold: float, interval: float) -> None:
    assert check_interval(threshold) == interval
