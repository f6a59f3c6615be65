"""The pure parts of the daily check: waiting for supplier_sync, the footer, the row for a sent order
the shop gave up afterwards, the hold listing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from services.admin import health_report, supplier_convergence
from services.admin.commands import reconcile as command
from services.admin.handled_orders import ToHandle
from services.admin.three_way import Comparison, Difference, HeldOrder

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_for_supplier_sync_ends_when_nothing_is_left_and_reports_each_look() -> None:
    clock, looks, seen = Clock(), iter([{1, 2}, {2}, set()]), []
    left = supplier_convergence.wait_for(lambda: next(looks), until=60.0, progress=seen.append, clock=clock,
                                         sleep=clock.sleep)
    assert left == set() and seen == [2, 1, 0]
    assert clock.now == 2 * supplier_convergence.POLL_SECONDS


def test_waiting_for_supplier_sync_gives_up_at_the_deadline_with_what_is_left() -> None:
    clock = Clock()
    left = supplier_convergence.wait_for(lambda: {7}, until=1.0, clock=clock, sleep=clock.sleep)
    assert left == {7} and clock.now == 1.0


def difference(by_apply: bool) -> Difference:
    return Difference(shop=None, records=None, supplier=None, wrong="supplier", fix="x", order_id=1, by_apply=by_apply)


def test_the_footer_suggests_apply_only_for_what_apply_can_fix() -> None:
    person = Comparison(orders=[difference(False)])
    assert command._footer(person, None) == "1 difference(s): --apply cannot fix these; a person must act as each Fix says"
    both = Comparison(orders=[difference(False), difference(True)])
    assert "`rewix-sync reconcile --apply` brings the records and the supplier to the shop" in command._footer(both, None)
    applied = SimpleNamespace(not_recorded=set(), not_converged={100001})
    assert "supplier_sync had not finished" in command._footer(both, applied)
    assert command._footer(person, applied) == "1 difference(s) remain: a person must act as each Fix says"


def test_a_sent_order_given_up_in_the_shop_is_an_attention_row_naming_it_and_what_to_do() -> None:
    assert health_report._to_handle_rows([], NOW) == []
    waiting = [ToHandle(1042, "1042", "refunded", "777", NOW - timedelta(hours=3)),
               ToHandle(1043, "WC-1043", "deleted", "WC-1043", None)]
    [row] = health_report._to_handle_rows(waiting, NOW)
    assert row.name == "cancelled after sending" and row.state == health_report.ATTENTION
    assert row.text.startswith("2 sent order(s) given up in the shop afterwards: "
                               "#1042 (refunded in the shop, supplier order 777, since 3 h), "
                               "#WC-1043 (deleted in the shop, supplier order WC-1043)")
    assert row.text.endswith("then `rewix-sync orders handled NUMBER`")
    many = [ToHandle(i, str(i), "cancelled", str(i), NOW) for i in range(7)]
    assert "and 2 more (`rewix-sync orders --attention`)" in health_report._to_handle_rows(many, NOW)[0].text
    assert waiting[0].fix == ("cancel supplier order 777 on the supplier's platform, "
                              "then `rewix-sync orders handled 1042`")


def test_held_orders_are_listed_with_the_command_that_sends_each() -> None:
    held = HeldOrder(1005, "2026-0005", NOW)
    assert held.as_json()["send"] == "rewix-sync backfill --order 1005 --send-paid"
    assert command.held_text([held]).splitlines()[1] == \
        "  #2026-0005 held since 2026-12-08 12:00 UTC: `rewix-sync backfill --order 1005 --send-paid` sends it"
