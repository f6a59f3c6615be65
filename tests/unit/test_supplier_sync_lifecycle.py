"""The order lifecycle rules, without I/O: which state wins, which statuses hold, how locked units are shared."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from services.supplier_sync.lifecycle import StoredState, supersedes
from shared.reservations.model import HeldLine, TrackedLine, allocate, releases
from shared.vocabulary import HOLDING_STATUSES


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
