"""The shared request budget's arithmetic (shared/clients/rewix/budget.py)."""
from __future__ import annotations

import pytest

from shared.clients.rewix.budget import FIRST, SqlBudget, Slot, Unlimited, first_slot, leftover_slot, request_budget

INTERVAL = 0.1  # 10 requests/s


def test_first_takes_the_next_free_slot_at_once_when_the_schedule_is_free():
    assert first_slot(next_free=90.0, now=100.0, interval=INTERVAL) == Slot(0.0, 100.1)


def test_first_queues_behind_the_slots_already_given():
    slot = first_slot(next_free=100.3, now=100.0, interval=INTERVAL)
    assert slot.wait == pytest.approx(0.3)
    assert slot.next_free == pytest.approx(100.4)


def test_leftover_takes_a_slot_only_when_none_is_taken_ahead():
    assert leftover_slot(next_free=100.0, now=100.0, interval=INTERVAL) == Slot(0.0, 100.1)
    assert leftover_slot(next_free=100.05, now=100.0, interval=INTERVAL) is None


def test_requests_taken_back_to_back_are_never_more_than_the_rate_in_any_second():
    next_free, now, starts = 0.0, 100.0, []
    for _ in range(50):  # FIRST asking as fast as it can, LEFTOVER filling what is free
        slot = first_slot(next_free, now, INTERVAL)
        starts.append(now + slot.wait)
        next_free = slot.next_free
        leftover = leftover_slot(next_free, now + slot.wait + INTERVAL, INTERVAL)
        if leftover is not None:
            starts.append(now + slot.wait + INTERVAL)
            next_free = leftover.next_free
    for start in starts:
        in_a_second = [s for s in starts if start <= s < start + 1.0 - 1e-9]
        assert len(in_a_second) <= 10


def test_a_lock_waits_behind_at_most_one_leftover_request():
    # LEFTOVER took the free slot at 100.0; FIRST arriving right after goes next, not behind a queue of sends.
    taken = leftover_slot(next_free=99.0, now=100.0, interval=INTERVAL)
    assert taken is not None
    assert first_slot(taken.next_free, now=100.001, interval=INTERVAL).wait == pytest.approx(0.099)
    assert leftover_slot(taken.next_free, now=100.001, interval=INTERVAL) is None


def test_no_rate_is_no_budget():
    assert isinstance(request_budget(None, 0), Unlimited)
    with pytest.raises(ValueError, match="DATABASE_URL"):
        request_budget(None, 10)


def test_a_send_reserves_its_requests_in_a_row_and_only_when_nothing_is_taken_ahead():
    slot = leftover_slot(next_free=99.0, now=100.0, interval=INTERVAL, count=2)
    assert slot is not None and slot.wait == 0.0 and slot.next_free == pytest.approx(100.2)
    assert leftover_slot(next_free=100.01, now=100.0, interval=INTERVAL, count=2) is None


class FakeClockBudget(SqlBudget):
    """SqlBudget's reserved slots without a database: the shared schedule is a list of what was taken."""

    def __init__(self) -> None:
        super().__init__(engine=None, per_second=10, sleep=lambda _s: None)
        self.taken: list[str] = []

    def _take_slots(self, priority: str, count: int) -> None:
        self.taken.append(f"{priority} x{count}")


def test_a_reserved_slot_is_spent_in_its_turn_and_a_passed_one_is_taken_afresh(monkeypatch):
    budget = FakeClockBudget()
    now = [1000.0]
    monkeypatch.setattr("shared.clients.rewix.budget.time.monotonic", lambda: now[0])

    budget.reserve(2)
    budget.spend(FIRST)  # the first reserved slot: now
    assert budget.taken == ["leftover x2"]
    now[0] += 1.0  # the caller waited a second on a lock: the second slot has long passed
    budget.spend(FIRST)
    assert budget.taken == ["leftover x2", "leftover x1"]
