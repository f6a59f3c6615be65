"""The retry policy, in one place: what happens to a message that failed.

Transient failures wait in the wait queue of the next delay of
SYNC_RETRY_DELAYS (or the first one at least as long as the Retry-After the
other side asked for) and come back; after the last delay, and at once for
permanent failures and unparseable messages, the message goes to the dead
letters. Attempts are counted in our own header: RabbitMQ ignores an x-death
count republished by a client.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from shared.topology import WorkQueue

ATTEMPTS = "x-rewix-attempts"
FIRST_FAILED_AT = "x-rewix-first-failed-at"
LAST_FAILED_AT = "x-rewix-last-failed-at"
REASON = "x-rewix-reason"
HTTP_STATUS = "x-rewix-http-status"
QUEUE = "x-rewix-queue"
OUR_HEADERS = (ATTEMPTS, FIRST_FAILED_AT, LAST_FAILED_AT, REASON, HTTP_STATUS, QUEUE)


@dataclass(frozen=True)
class Ack:
    """Done (or nothing to do): acknowledge."""


@dataclass(frozen=True)
class RetryLater:
    reason: str
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    status: int | None = None


Outcome = Ack | RetryLater | DeadLetter


@dataclass(frozen=True)
class Route:
    """Where a failed message goes next and with which headers."""

    routing_key: str  # a queue name, published through the default exchange
    headers: dict[str, Any]
    dead: bool
    delay: int | None = None


def attempts_of(headers: Mapping[str, Any] | None) -> int:
    try:
        return int((headers or {}).get(ATTEMPTS, 0))
    except (TypeError, ValueError):
        return 0


def choose_delay(attempts_before: int, delays: list[int], retry_after: float | None) -> int | None:
    """The delay before the next attempt, or None when the schedule is used up."""
    if attempts_before >= len(delays):
        return None
    delay = delays[attempts_before]
    if retry_after is not None and retry_after > delay:
        longer = [d for d in sorted(set(delays)) if d >= retry_after]
        delay = longer[0] if longer else max(delays)
    return delay


def route_failure(
    outcome: RetryLater | DeadLetter,
    headers: Mapping[str, Any] | None,
    queue: WorkQueue,
    delays: list[int],
    now: datetime | None = None,
) -> Route:
    now_text = (now or datetime.now(timezone.utc)).isoformat()
    attempts_before = attempts_of(headers)
    new_headers = {k: v for k, v in (headers or {}).items() if k not in OUR_HEADERS}
    new_headers.update(
        {
            ATTEMPTS: attempts_before + 1,
            FIRST_FAILED_AT: (headers or {}).get(FIRST_FAILED_AT) or now_text,
            LAST_FAILED_AT: now_text,
            REASON: outcome.reason[:500],
            QUEUE: queue.name,
        }
    )
    if outcome.status is not None:
        new_headers[HTTP_STATUS] = outcome.status
    if isinstance(outcome, RetryLater):
        delay = choose_delay(attempts_before, delays, outcome.retry_after)
        if delay is not None:
            return Route(queue.wait(delay), new_headers, dead=False, delay=delay)
        new_headers[REASON] = f"gave up after {attempts_before + 1} attempts: {outcome.reason}"[:500]
    return Route(queue.dead, new_headers, dead=True)


def fresh_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Headers for a replayed message: unchanged but for a fresh attempt count."""
    return {k: v for k, v in (headers or {}).items() if k not in OUR_HEADERS and k != "x-death"}
