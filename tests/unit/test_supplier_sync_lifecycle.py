"""The order lifecycle rules, without I/O: which state wins, which statuses hold, how locked units are shared."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from shared.orders.vocabulary import HOLDING_STATUSES
from shared.reservations.model import HeldLine, TrackedLine, allocate, releases
from services.supplier_sync.lifecycle import StoredState, supersedes


def holds_stock(status: str, deleted: bool) -> bool:
    """Would a line of an order in this state be held (were it still in the order and not sent)?"""
    return not deleted and status in HOLDING_STATUSES


def is_released(status: str, deleted: bool) -> bool:
    return releases(TrackedLine(1, 1, removed=False, order_status=status, deleted=deleted, sent=False))

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(seconds=1)


def test_a_first_state_is_always_recorded():
    assert supersedes(T0, False, "order.created", None)


def test_newer_wins_equal_is_a_harmless_duplicate_older_loses():
    stored = StoredState(T1, False)
    assert supersedes(T1 + timedelta(seconds=1), False, "order.updated", stored)
    assert supersedes(T1, False, "order.updated", stored)
    assert not supersedes(T0, False, "order.updated", stored)


def test_a_delete_always_applies():
    assert supersedes(None, True, "order.deleted", StoredState(T1, False))
    assert supersedes(None, True, "order.deleted", StoredState(T1, True))


def test_a_stale_state_cannot_resurrect_a_deleted_order_but_a_restore_can():
    deleted = StoredState(T1, True)
    assert not supersedes(T1, False, "order.updated", deleted)
    assert not supersedes(T0, False, "order.restored", deleted)
    assert supersedes(T1, False, "order.restored", deleted)
    assert supersedes(T1 + timedelta(seconds=1), False, "order.updated", deleted)


def test_an_order_deleted_before_we_knew_it_comes_back_only_by_restore():
    deleted_unknown = StoredState(None, True)
    assert not supersedes(T0, False, "order.updated", deleted_unknown)
    assert supersedes(T0, False, "order.restored", deleted_unknown)


def test_which_statuses_hold_and_which_release():
    for status in ("pending", "on-hold", "processing"):
        assert holds_stock(status, deleted=False) and not is_released(status, deleted=False)
        assert not holds_stock(status, deleted=True)
    for status in ("cancelled", "refunded", "failed", "trash"):
        assert is_released(status, deleted=False) and not holds_stock(status, deleted=False)
    assert not holds_stock("completed", deleted=False)
    assert is_released("pending", deleted=True)


def test_short_units_go_to_the_newest_orders():
    lines = [HeldLine(3, 31, 7, 2), HeldLine(1, 11, 7, 2), HeldLine(2, 21, 7, 2)]
    covered, short = allocate(4, lines)
    assert covered == {(1, 11), (2, 21)} and short == {(3, 31)}


@given(st.integers(0, 50), st.lists(st.integers(1, 10), max_size=20))
def test_allocation_never_promises_more_than_was_locked(locked, quantities):
    lines = [HeldLine(i, i, 7, q) for i, q in enumerate(quantities)]
    covered, short = allocate(locked, lines)
    assert covered | short == {(l.order_id, l.line_id) for l in lines} and not covered & short
    assert sum(l.quantity for l in lines if (l.order_id, l.line_id) in covered) <= locked
    if sum(quantities) <= locked:
        assert not short


# --- the same date with another state: ask the shop --------------------------------------------

def contradicts_recorded(**incoming):
    from services.supplier_sync.lifecycle import RecordedLine, contradicts

    recorded = dict(stored_date=T1, stored_status="processing", stored_line=RecordedLine(1001, 2, T1),
                    stored_line_ids=[7, 8])
    state = dict(date=T1, status="processing", line=(1001, 2), line_ids=[8, 7]) | incoming
    return contradicts(**state, **recorded)


def test_the_same_state_again_is_no_contradiction():
    assert not contradicts_recorded()
    assert not contradicts_recorded(line=None, line_ids=None)


def test_another_status_lines_or_quantity_at_the_same_date_contradict():
    assert contradicts_recorded(status="pending")  # a stale read with the right date
    assert contradicts_recorded(line=(1001, 3))  # two saves within one second
    assert contradicts_recorded(line=(1002, 2))
    assert contradicts_recorded(line_ids=[7])


def test_only_the_same_date_can_contradict():
    assert not contradicts_recorded(date=T1 + timedelta(seconds=1), status="pending")
    assert not contradicts_recorded(date=None, status="trash")


def test_what_is_not_known_of_the_recorded_state_contradicts_nothing():
    from services.supplier_sync.lifecycle import RecordedLine, contradicts

    # Line ids recorded as empty: a line of that state came before its head.
    assert not contradicts(date=T1, status="processing", line=None, line_ids=[7], stored_date=T1,
                           stored_status="processing", stored_line=None, stored_line_ids=[])
    # A line recorded from another state of the order is simply replaced.
    assert not contradicts(date=T1, status="processing", line=(1001, 3), line_ids=None, stored_date=T1,
                           stored_status="processing", stored_line=RecordedLine(1001, 2, T0), stored_line_ids=[7])
