"""What recording a batch changes (services/supplier_sync/batch_changes.py) and the after-sending rule, without I/O.

store.record_batch writes these changes in SQL and the unit tests' fake applies
them in memory: the conditions on lines must read as the SQL's WHERE does, NULL included.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.messaging.messages import OrderLineMessage, SupplierLine
from services.supplier_sync.batch_changes import batch_changes, line_write_applies, removal_applies
from services.supplier_sync.lifecycle import RecordedLine, given_up_after_sending

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(seconds=1)
T2 = T0 + timedelta(seconds=2)


def bare(order_id: int) -> dict:
    return {"id": order_id, "number": "", "status": "", "date_modified_gmt": None, "deleted": False, "recipient": None,
            "customer_note": "", "supplier_line_ids": [], "last_error": None, "last_synced_at": None}


def line(order_id: int, line_id: int, stock_id: int, quantity: int, date: datetime, *, head: bool,
         line_ids: list[int] | None = None) -> OrderLineMessage:
    return OrderLineMessage(
        topic="order.updated", order_id=order_id, order_number=f"WC-{order_id}", status="pending",
        date_modified_gmt=date, line=SupplierLine(line_id=line_id, product_id=stock_id, stock_id=stock_id, quantity=quantity),
        head=head, supplier_line_ids=line_ids or [],
    )


def test_a_new_order_writes_its_row_its_lines_and_keeps_only_its_heads_lines():
    changes = batch_changes([line(1, 11, 1001, 2, T0, head=True, line_ids=[11, 12]), line(1, 12, 1002, 1, T0, head=False)],
                            {1: bare(1)}, {1}, {})

    assert changes.recorded.applied == [True, True]
    assert changes.recorded.order_ids == {1} and changes.recorded.stock_ids == {1001, 1002}
    (row,) = changes.orders
    assert (row["status"], row["number"], row["supplier_line_ids"], row["date_modified_gmt"]) == ("pending", "WC-1", [11, 12], T0)
    assert sorted((l["line_id"], l["quantity"], l["version"]) for l in changes.lines) == [(11, 2, T0), (12, 1, T0)]
    assert changes.removals == {1: (T0, [11, 12])}


def test_an_older_state_changes_nothing_and_a_changed_order_names_the_models_it_left():
    stored = {1: {**bare(1), "status": "pending", "date_modified_gmt": T1, "supplier_line_ids": [11]}}
    recorded = {(1, 11): RecordedLine(1001, 2, T1), (1, 12): RecordedLine(1009, 1, T0)}

    older = batch_changes([line(1, 11, 1001, 5, T0, head=True, line_ids=[11])], stored, set(), recorded)
    assert older.recorded.applied == [False] and older.orders == [] and older.lines == [] and older.removals == {}

    newer = batch_changes([line(1, 11, 1002, 1, T2, head=True, line_ids=[11])], stored, set(), recorded)
    # Every model the order had lines in may need less now, the one it moved to more.
    assert newer.recorded.stock_ids == {1001, 1002, 1009}


@pytest.mark.parametrize("recorded, version, applies", [
    (None, T1, True), (T0, T1, True), (T1, T1, True), (T2, T1, False), (T1, None, False), (None, None, True),
])
def test_a_line_is_never_written_back_to_an_older_state(recorded, version, applies):
    assert line_write_applies(recorded, version) is applies


@pytest.mark.parametrize("line_id, removed, recorded, applies", [
    (11, False, T0, False),  # the head keeps it
    (12, False, T0, True),
    (12, False, None, True),
    (12, False, T2, False),  # a line of a newer state
    (12, True, T1, False),  # released at this very state already
    (12, True, T0, True),  # released at an older state: the newer release stands
    (12, True, None, False),  # NULL = T1 is NULL: SQL leaves it
])
def test_a_head_releases_the_lines_it_no_longer_lists(line_id, removed, recorded, applies):
    assert removal_applies(line_id, removed, recorded, [11], T1) is applies


def test_a_sent_order_given_up_or_changed_afterwards_needs_a_person():
    def reason(**changes):
        facts = dict(deleted=False, status="processing", sent_as=7001, sent_items={1001: 2}, wanted={1001: 2}) | changes
        return given_up_after_sending(**facts)

    assert reason() is None
    assert reason(status="completed") is None
    assert reason(status="cancelled") == (
        "the shop order was cancelled after supplier order 7001 was sent: cancel it on the supplier's platform")
    assert reason(deleted=True).startswith("the shop order was trashed after supplier order 7001")
    assert reason(wanted={1001: 1, 1002: 1}) == (
        "the shop order changed after supplier order 7001 was sent (refunded or edited): 1 of stock_id 1001 no longer "
        "wanted, 1 more of stock_id 1002 wanted: change or cancel it on the supplier's platform")
    assert reason(sent_items=None, wanted={}) is None  # sent before its items were kept: judged by its status only
