"""A request budget for the supplier's status endpoints: evenly spaced, slowed by 429s.

Requests are handed out one slot at a time, `1 / rate` seconds apart (a token
bucket holding a single token), so a budget of 5 requests per second means
one request every 200 ms rather than five at once. The poller lowers the
pace further when fewer orders are open than the budget could poll in one
interval, so a cycle spreads over the interval instead of bursting at its
start (`pace`).

A 429 pauses every request until the supplier's Retry-After has passed and
halves the rate; each answered request wins back a little of it, so the rate
settles just under what the supplier tolerates (additive increase,
multiplicative decrease).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Without a Retry-After, a 429 pauses this long.
DEFAULT_RETRY_AFTER = 1.0
# Never pause longer than this on one 429, whatever the header says.
MAX_PAUSE = 300.0
# Fraction of the configured rate an answered request wins back after a 429.
RECOVERY_STEP = 0.02
# The rate never falls below this fraction of the configured rate.
FLOOR_FRACTION = 0.02


def pace(limit_per_second: float, open_orders: int, interval_seconds: float) -> float:
    """Requests per second that poll every open order once per interval, within the limit."""
    wanted = max(1, open_orders) / interval_seconds
    return min(limit_per_second, wanted)


class RequestBudget:
    """Thread-safe: the poller's workers each call `acquire` before a request."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second <= 0:
            raise ValueError("a request budget needs a positive rate")
        self.limit = float(per_second)
        self._clock = clock
        self._lock = threading.Lock()
        self._allowed = self.limit  # lowered by 429s, recovers with answers
        self._demand = self.limit  # what the poller needs (see pace)
        self._next_slot = clock()
        self._paused_until = 0.0
        self.throttled_count = 0

    # --- the rate ------------------------------------------------------------------

    @property
    def rate(self) -> float:
        with self._lock:
            return self._rate()

    def _rate(self) -> float:
        return max(min(self._allowed, self._demand), self.limit * FLOOR_FRACTION)

    def set_demand(self, per_second: float) -> None:
        """The pace the poller wants (never above the configured limit)."""
        with self._lock:
            self._demand = max(min(per_second, self.limit), self.limit * FLOOR_FRACTION)

    # --- slots ---------------------------------------------------------------------

    def reserve(self, deadline: float | None = None) -> float | None:
        """The clock time at which the caller may send its request, or None if not by `deadline`.

        Pure bookkeeping: a slot is only taken when it is handed out.
        """
        with self._lock:
            slot = max(self._clock(), self._next_slot, self._paused_until)
            if deadline is not None and slot > deadline:
                return None
            self._next_slot = slot + 1.0 / self._rate()
            return slot

    def seconds_until_free(self) -> float:
        """How long until the next slot: positive while paused after a 429 or fully booked."""
        with self._lock:
            return max(0.0, max(self._next_slot, self._paused_until) - self._clock())

    def acquire(self, stop: threading.Event, deadline: float | None = None) -> bool:
        """Wait for a slot; False when `stop` is set or no slot comes before `deadline`."""
        while True:
            slot = self.reserve(deadline)
            if slot is None:
                return False
            wait = slot - self._clock()
            if wait > 0 and stop.wait(wait):
                return False
            if stop.is_set():
                return False
            with self._lock:
                # A 429 seen while we waited moved the whole budget: take a new slot.
                if self._paused_until <= self._clock():
                    return True

    # --- feedback ------------------------------------------------------------------

    def throttled(self, retry_after: float | None) -> None:
        """The supplier answered 429: pause everyone, then go on at half the rate."""
        pause = DEFAULT_RETRY_AFTER if retry_after is None else min(max(retry_after, 0.0), MAX_PAUSE)
        with self._lock:
            now = self._clock()
            self.throttled_count += 1
            self._paused_until = max(self._paused_until, now + pause)
            self._allowed = max(self._rate() / 2.0, self.limit * FLOOR_FRACTION)
            self._next_slot = max(self._next_slot, self._paused_until)

    def answered(self) -> None:
        """A request went through: win back a little of the rate lost to 429s."""
        with self._lock:
            if self._allowed < self.limit:
                self._allowed = min(self.limit, self._allowed + self.limit * RECOVERY_STEP)
