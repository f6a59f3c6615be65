"""The request budget: even spacing, pace within the interval, 429 back-off."""
from __future__ import annotations

import threading

import pytest

from services.status_poller.budget import RequestBudget, pace
from services.status_poller.poller import lease_size


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_slots_are_spread_evenly_at_the_rate_not_handed_out_at_once() -> None:
    clock = FakeClock()
    budget = RequestBudget(10, clock=clock)
    slots = [budget.reserve() for _ in range(20)]
    gaps = [b - a for a, b in zip(slots, slots[1:])]
    assert slots[0] == pytest.approx(1000.0)
    assert all(gap == pytest.approx(0.1) for gap in gaps)
    # In any one second no more than the rate (plus the one at its start).
    assert sum(1 for s in slots if s < 1001.0) == 10


def test_an_idle_budget_does_not_save_up_a_burst() -> None:
    clock = FakeClock()
    budget = RequestBudget(10, clock=clock)
    budget.reserve()
    clock.now += 60  # a minute without requests
    slots = [budget.reserve() for _ in range(5)]
    assert [round(s - clock.now, 6) for s in slots] == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_pace_spreads_the_open_orders_over_the_interval_within_the_limit() -> None:
    assert pace(1500, 1000, 10) == pytest.approx(100)  # 1,000 orders in 10 s: 100/s, not 1,500/s
    assert pace(1500, 100_000, 10) == 1500  # more than the budget can do: the budget wins
    assert pace(5, 0, 60) == pytest.approx(1 / 60)  # nothing open: at least one order's worth


def test_demand_lowers_the_spacing_to_fill_the_interval() -> None:
    clock = FakeClock()
    budget = RequestBudget(1500, clock=clock)
    budget.set_demand(pace(1500, 1000, 10))
    first, second = budget.reserve(), budget.reserve()
    assert second - first == pytest.approx(0.01)


def test_a_429_pauses_for_retry_after_and_halves_the_rate_then_recovers() -> None:
    clock = FakeClock()
    budget = RequestBudget(10, clock=clock)
    budget.reserve()
    budget.throttled(retry_after=3)
    assert budget.throttled_count == 1
    assert budget.rate == pytest.approx(5)
    slot = budget.reserve()
    assert slot >= 1003.0
    assert budget.reserve() - slot == pytest.approx(0.2)
    for _ in range(100):
        budget.answered()
    assert budget.rate == pytest.approx(10)


def test_repeated_429s_never_stop_polling_altogether() -> None:
    budget = RequestBudget(10, clock=FakeClock())
    for _ in range(50):
        budget.throttled(retry_after=None)
    assert budget.rate > 0


def test_acquire_gives_up_at_the_deadline_and_on_stop() -> None:
    budget = RequestBudget(1)  # real clock: one request per second
    stop = threading.Event()
    assert budget.acquire(stop)
    # The next slot is a second away: past a deadline 0.1 s from now.
    import time

    assert not budget.acquire(stop, deadline=time.monotonic() + 0.1)
    stop.set()
    assert not budget.acquire(stop)


@pytest.mark.parametrize(
    ("per_second", "lookahead", "expected"),
    [(100, 5, 400), (1000, 5, 4000), (10_000, 5, 5000), (0.01, 30, 1)],
)
def test_a_lease_takes_what_the_pace_polls_in_most_of_half_an_interval(per_second: float, lookahead: float, expected: int) -> None:
    assert lease_size(per_second, lookahead, max_lease=5000) == expected


def test_rows_per_lease_grow_with_the_orders_so_leases_per_interval_do_not() -> None:
    interval = 10.0
    for orders in (1_000, 10_000):
        per_second = pace(1500, orders, interval)
        size = lease_size(per_second, interval / 2, max_lease=5000)
        assert -(-orders // size) == 3  # three leases per interval either way


def test_a_slot_refused_for_its_deadline_is_not_used_up() -> None:
    clock = FakeClock()
    budget = RequestBudget(1, clock=clock)
    assert budget.reserve() == pytest.approx(1000.0)
    assert budget.reserve(deadline=1000.5) is None
    assert budget.reserve() == pytest.approx(1001.0)


def test_seconds_until_free_covers_a_429_pause() -> None:
    clock = FakeClock()
    budget = RequestBudget(100, clock=clock)
    assert budget.seconds_until_free() == 0
    budget.throttled(retry_after=2.5)
    assert budget.seconds_until_free() == pytest.approx(2.5)
