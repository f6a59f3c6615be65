"""The supplier's request budget, shared by every process that calls it.

The supplier throttles the account, not a process: supplier_sync's replicas,
status_poller and the operator's CLI all spend one budget,
SUPPLIER_REQUESTS_PER_SECOND. It is a schedule of request slots kept in one
PostgreSQL row (`supplier_request_budget.next_free`, seconds on the
database's clock, so the processes' own clocks do not matter): a request
takes the next free slot and waits for it; slots are 1/rate apart, so no
half-open second ever holds more than `rate` requests, whoever made them.

Two priorities share it (`FIRST`, `LEFTOVER`):

- FIRST (the growing order's locks, the operator) always takes the next
  slot, queued behind the slots already given;
- LEFTOVER (dropshipping sends, status polls) takes a slot only when none
  is taken ahead, that is when FIRST's demand left one free now; otherwise it
  waits until the schedule is free and asks again. A lock so never waits
  behind more than one send.

The arithmetic is pure (`first_slot`, `leftover_slot`, unit-tested);
`SqlBudget` does the same in one UPDATE per request, the row lock ordering
the processes. A 429 the supplier answers anyway (another
client of the account, a limit lower than the setting) is still the failure
policy's, retried after its Retry-After.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, text

from shared.observability.logging import get_logger

log = get_logger(__name__)

FIRST = "first"
LEFTOVER = "leftover"
PRIORITIES = (FIRST, LEFTOVER)

# A LEFTOVER request that found the schedule taken asks again at the latest after this long.
LONGEST_RECHECK = 0.5


@dataclass(frozen=True)
class Slot:
    """A request's turn: `wait` seconds from now; `next_free` is the schedule after taking it."""

    wait: float
    next_free: float


def first_slot(next_free: float, now: float, interval: float) -> Slot:
    """FIRST: the next free slot, however far ahead (the slots already given are not taken back)."""
    start = max(next_free, now)
    return Slot(start - now, start + interval)


def leftover_slot(next_free: float, now: float, interval: float, count: int = 1) -> Slot | None:
    """LEFTOVER: `count` slots from now if none is taken ahead, else None (ask again once the schedule is free).

    The slots are now, now + interval, ...: a send reserves its two requests before it takes its
    models' locks, so it never holds them while waiting its turn (services/supplier_sync/send_worker.py).
    """
    if next_free > now:
        return None
    return Slot(0.0, now + count * interval)


class RequestBudget(Protocol):
    def spend(self, priority: str) -> None:
        """Wait until one request of this priority may go to the supplier."""

    def reserve(self, count: int) -> None:
        """Wait for `count` LEFTOVER slots in a row; this thread's next `count` requests spend them."""

    def release(self) -> None:
        """Forget this thread's reserved slots not spent (a slot unused is simply lost)."""


class Unlimited:
    """SUPPLIER_REQUESTS_PER_SECOND=0: nothing to wait for."""

    def spend(self, priority: str) -> None:
        return None

    def reserve(self, count: int) -> None:
        return None

    def release(self) -> None:
        return None


# One UPDATE takes a slot: the row lock orders the processes, the database's clock is everyone's.
_TAKE_FIRST = text(
    """
    UPDATE supplier_request_budget
       SET next_free = GREATEST(next_free, extract(epoch FROM clock_timestamp())) + :interval
     WHERE id = 1
    RETURNING next_free - :interval - extract(epoch FROM clock_timestamp()) AS wait
    """
)
_TAKE_LEFTOVER = text(
    """
    UPDATE supplier_request_budget
       SET next_free = extract(epoch FROM clock_timestamp()) + :interval * :count
     WHERE id = 1 AND next_free <= extract(epoch FROM clock_timestamp())
    RETURNING 0.0 AS wait
    """
)
_AHEAD = text("SELECT next_free - extract(epoch FROM clock_timestamp()) FROM supplier_request_budget WHERE id = 1")
_ENSURE_ROW = text("INSERT INTO supplier_request_budget (id, next_free) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")


class SqlBudget:
    """The shared budget on PostgreSQL (the row migration 0019 creates; made again if someone deleted it)."""

    def __init__(self, engine: Engine, per_second: float, *, sleep=time.sleep) -> None:
        if per_second <= 0:
            raise ValueError("a budget needs a positive rate; 0 means Unlimited")
        self.engine = engine
        self.interval = 1.0 / per_second
        self._sleep = sleep
        self._row_checked = threading.Event()
        self._reserved = threading.local()  # this thread's slots taken ahead: monotonic times

    def spend(self, priority: str) -> None:
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        slots = getattr(self._reserved, "slots", None)
        if slots:
            wait = slots.pop(0) - time.monotonic()
            if wait > -self.interval:
                if wait > 0:
                    self._sleep(wait)
                return
            # Its slot passed while the caller waited on something else (a model's lock): spent now
            # beside the requests given the slots since, it would crowd them. A fresh slot instead.
            slots.clear()
            priority = LEFTOVER
        self._take_slots(priority, 1)

    def reserve(self, count: int) -> None:
        self._take_slots(LEFTOVER, count)
        now = time.monotonic()
        self._reserved.slots = [now + n * self.interval for n in range(count)]

    def release(self) -> None:
        self._reserved.slots = []

    def _take_slots(self, priority: str, count: int) -> None:
        self._ensure_row()
        while True:
            wait = self._take(priority, count)
            if wait is not None:
                if wait > 0:
                    self._sleep(wait)
                return
            ahead = self._ahead()
            if ahead is None:
                self._ensure_row(again=True)  # the row was deleted (a TRUNCATE): the schedule starts afresh
                continue
            # LEFTOVER and the schedule is taken: wait until it is free, then ask again.
            self._sleep(min(LONGEST_RECHECK, max(ahead, 0.001)))

    def _take(self, priority: str, count: int) -> float | None:
        statement = _TAKE_FIRST if priority == FIRST else _TAKE_LEFTOVER
        with self.engine.begin() as connection:
            row = connection.execute(statement, {"interval": self.interval, "count": count}).first()
        return None if row is None else max(0.0, float(row[0]))

    def _ahead(self) -> float | None:
        """Seconds until the schedule is free (0 or less: free now); None when the row is missing."""
        with self.engine.connect() as connection:
            value = connection.execute(_AHEAD).scalar()
        return None if value is None else float(value)

    def _ensure_row(self, *, again: bool = False) -> None:
        if self._row_checked.is_set() and not again:
            return
        with self.engine.begin() as connection:
            connection.execute(_ENSURE_ROW)
        self._row_checked.set()


def request_budget(database_url: str | None, per_second: float) -> RequestBudget:
    """The budget the settings ask for: shared through the database, or none at all (0)."""
    if per_second <= 0:
        return Unlimited()
    if not database_url:
        raise ValueError("SUPPLIER_REQUESTS_PER_SECOND needs DATABASE_URL: the budget is shared through it")
    from shared.db import get_engine

    log.info("supplier request budget", requests_per_second=per_second)
    return SqlBudget(get_engine(database_url), per_second)
