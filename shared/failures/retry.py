"""The retry policy, in one place: what a failure means and what happens to its message.

`outcome_of` is the one decision whether a failure is worth retrying: a
TransientError (timeouts, 5xx, 429) and anything unexpected (the database
down, a bug) is retried, a PermanentError (400, 404, 412) and an
unparseable message are not, and an AccountRefused (401, 403) blames no
message at all: the worker pauses (`Paused`). Every consumer's handler calls it.
`database_refusal` tells a database refusing a message's data for good (a
value too long, a duplicate) from the database being unreachable.

`RetryPolicy` says where a failed message goes: transient failures wait in
the wait queue of the next delay of the queue's schedule (or the first one at
least as long as the Retry-After the other side asked for) and come back;
after the last delay, and at once for permanent failures, the message goes to
the dead letters, and `is_final` says so beforehand. Attempts are counted in
our own header: RabbitMQ ignores an x-death count republished by a client.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from shared.failures.errors import AccountRefused, PermanentError, TransientError
from shared.messaging.messages import UnparseableMessage
from shared.messaging.topology import WorkQueue
from shared.orders.text import stored_reason

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


@dataclass(frozen=True)
class Paused:
    """No message is at fault: the worker cannot work at all (the supplier refuses the account).

    The message goes back to its queue as it was (no attempt counted), and the
    consumer stops taking messages until the handler says work can resume.
    """

    reason: str
    status: int | None = None


Outcome = Ack | RetryLater | DeadLetter | Paused


def outcome_of(exc: BaseException, context: str | None = None) -> RetryLater | DeadLetter | Paused:
    """What a failure means for its message; `context` prefixes the reason ("supplier: ...")."""
    prefix = f"{context}: " if context else ""
    if isinstance(exc, AccountRefused):
        return Paused(prefix + exc.reason, exc.status)
    if isinstance(exc, PermanentError):
        return DeadLetter(prefix + exc.reason, exc.status)
    if isinstance(exc, TransientError):
        return RetryLater(prefix + exc.reason, exc.status, exc.retry_after)
    if isinstance(exc, UnparseableMessage):
        return DeadLetter(f"{prefix}{exc}"[:300])
    if isinstance(exc, SQLAlchemyError):
        return RetryLater(f"{prefix}database error: {exc!r}"[:300])
    return batch_failure(exc, context)


# SQLSTATE classes of the database refusing a statement's data itself: 22, a data
# exception (a value longer than its column, out of range, not representable);
# 23, an integrity violation (a duplicate key, a missing parent row). The same
# data fails the same way on every retry; anything else (the connection, a
# deadlock, a server restarting) may pass.
REFUSED_SQLSTATE_CLASSES = frozenset({"22", "23"})


def database_refusal(exc: BaseException, context: str | None = None) -> DeadLetter | None:
    """A DeadLetter when the database refused the data for good, else None.

    The reason is the database's own short message and SQLSTATE, masked:
    never the statement or its parameters, which carry the order.
    """
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return None
    code = str(getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None) or "")
    if code[:2] not in REFUSED_SQLSTATE_CLASSES:
        return None
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or type(exc.orig).__name__
    constraint = getattr(diag, "constraint_name", None)
    where = f" (constraint {constraint})" if constraint else ""
    prefix = f"{context}: " if context else ""
    return DeadLetter(stored_reason(f"{prefix}the database refused the message: {primary}{where} [SQLSTATE {code}]")[:300])


def batch_failure(exc: BaseException, context: str | None = None) -> RetryLater:
    """A handler that could not run at all (a bug, a dependency down): its messages are not at fault, so they are retried."""
    prefix = f"{context}: " if context else ""
    return RetryLater(f"{prefix}handler error: {exc!r}"[:300])


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


@dataclass(frozen=True)
class RetryPolicy:
    """The retry schedule of one work queue: its wait-queue delays, in seconds."""

    queue: WorkQueue
    delays: tuple[int, ...]

    @property
    def max_attempts(self) -> int:
        """Attempts a transiently failing message gets before it is dead-lettered."""
        return len(self.delays) + 1

    def is_final(self, outcome: Outcome, headers: Mapping[str, Any] | None) -> bool:
        """Does this outcome send the message to the dead letters now?"""
        if isinstance(outcome, DeadLetter):
            return True
        if isinstance(outcome, RetryLater):
            return choose_delay(attempts_of(headers), list(self.delays), outcome.retry_after) is None
        return False

    def route(self, outcome: RetryLater | DeadLetter, headers: Mapping[str, Any] | None, now: datetime | None = None) -> Route:
        return route_failure(outcome, headers, self.queue, list(self.delays), now)


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
