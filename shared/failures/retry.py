"""The failure policy, in one place: what a failure means and what happens to its message.

`outcome_of` is the one decision. From the type of the error (and the data
the clients put on it: status, Retry-After) it says both the fate of the
message and the kind of failure the metrics count it under, carried on the
outcome as data (`kind`), so nothing downstream sorts failures again:

    error                                   fate          kind
    AccountRefused (401, 403)               Paused        account_refused  (the worker pauses; `account` says whose)
    TransientError: 429                     RetryLater    rate_limited
                    TimedOut                RetryLater    timeout
                    ConnectionFailed        RetryLater    connection
                    5xx                     RetryLater    server_error
                    anything else (a 2xx    RetryLater    other
                    that does not parse)
    PermanentError: 4xx                     DeadLetter    rejected
                    anything else           DeadLetter    other
    UnparseableMessage                      DeadLetter    unparseable
    the database (SQLAlchemyError)          RetryLater    database
    anything unexpected (a bug)             RetryLater    handler_error

`database_refusal` tells a database refusing a message's data for good (a
value too long, a duplicate: DeadLetter, rejected) from the database being
unreachable. The convergence adds `short` itself (the supplier could not lock
every unit: no error at all), and the consumer counts `gave_up` for a
RetryLater whose schedule ran out. `about_the_item` says whether a failure
may be about the one item a call named (a model of a `set`) rather than about
the server or the account.

`RetryPolicy` says where a failed message goes: transient failures wait in
the wait queue of the next delay of the queue's schedule (or the first one at
least as long as the Retry-After the other side asked for) and come back;
after the last delay, and at once for permanent failures, the message goes to
the dead letters, and `is_final` says so beforehand. Attempts are counted in
our own header: RabbitMQ ignores an x-death count republished by a client.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from shared.failures.errors import (
    SUPPLIER, AccountRefused, ConnectionFailed, ExternalError, PermanentError, TimedOut, TransientError,
)
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

# The kinds of failure, so that a dashboard can tell "the supplier is down" from "one bad order".
RATE_LIMITED = "rate_limited"  # 429
ACCOUNT_REFUSED = "account_refused"  # 401/403: the supplier or the shop refuses the credentials
SERVER_ERROR = "server_error"  # 5xx
REJECTED = "rejected"  # another 4xx, or the database refusing the data: this order or model is refused
TIMEOUT = "timeout"
CONNECTION = "connection"  # connection refused, reset, cut short
UNPARSEABLE = "unparseable"  # the message itself cannot be read
SHORT = "short"  # the supplier could not lock every unit (a paid order waits)
DATABASE = "database"  # PostgreSQL unavailable while handling
HANDLER_ERROR = "handler_error"  # the handler could not run (a dependency down, a bug)
GAVE_UP = "gave_up"  # a transient failure with the retry schedule used up
OTHER = "other"
KINDS = (RATE_LIMITED, ACCOUNT_REFUSED, SERVER_ERROR, REJECTED, TIMEOUT, CONNECTION, UNPARSEABLE, SHORT, DATABASE,
         HANDLER_ERROR, GAVE_UP, OTHER)


@dataclass(frozen=True)
class Ack:
    """Done (or nothing to do): acknowledge."""


@dataclass(frozen=True)
class RetryLater:
    reason: str
    status: int | None = None
    retry_after: float | None = None
    kind: str = OTHER

    def saying(self, reason: str) -> "RetryLater":
        """The same failure with another reason (the caller names what failed)."""
        return dataclasses.replace(self, reason=reason)


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    status: int | None = None
    kind: str = OTHER

    def saying(self, reason: str) -> "DeadLetter":
        """The same failure with another reason (the caller names what failed)."""
        return dataclasses.replace(self, reason=reason)


@dataclass(frozen=True)
class Paused:
    """No message is at fault: the worker cannot work at all (the supplier refuses the account,
    or the shop the REST keys: `account`).

    The message goes back to its queue as it was (no attempt counted), and the
    consumer stops taking messages until the handler says work can resume.
    """

    reason: str
    status: int | None = None
    account: str = SUPPLIER
    kind: str = ACCOUNT_REFUSED


Outcome = Ack | RetryLater | DeadLetter | Paused


def outcome_of(
    exc: BaseException, context: str | None = None, *, pause: bool = True
) -> RetryLater | DeadLetter | Paused:
    """What a failure means for its message; `context` prefixes the reason ("supplier: ...").

    `pause=False` is for a worker whose work does not all need the refused
    account (supplier_sync asking the shop to confirm a delete): its message
    waits on the retry schedule instead of stopping the worker.
    """
    prefix = f"{context}: " if context else ""
    kind = kind_of(exc)
    if isinstance(exc, AccountRefused):
        if not pause:
            return RetryLater(prefix + exc.reason, exc.status, kind=kind)
        return Paused(prefix + exc.reason, exc.status, account=exc.account, kind=kind)
    if isinstance(exc, PermanentError):
        return DeadLetter(prefix + exc.reason, exc.status, kind=kind)
    if isinstance(exc, TransientError):
        return RetryLater(prefix + exc.reason, exc.status, exc.retry_after, kind=kind)
    if isinstance(exc, UnparseableMessage):
        return DeadLetter(f"{prefix}{exc}"[:300], kind=kind)
    if isinstance(exc, SQLAlchemyError):
        return RetryLater(f"{prefix}database error: {exc!r}"[:300], kind=kind)
    return batch_failure(exc, context)


def kind_of(exc: BaseException) -> str:
    """The kind of failure an error is, one of KINDS (the table above)."""
    if isinstance(exc, AccountRefused):
        return ACCOUNT_REFUSED
    if isinstance(exc, TimedOut):
        return TIMEOUT
    if isinstance(exc, ConnectionFailed):
        return CONNECTION
    if isinstance(exc, ExternalError):
        status = exc.status
        if status == 429:
            return RATE_LIMITED
        if status is not None and status >= 500:
            return SERVER_ERROR
        if status is not None and 400 <= status < 500:
            return REJECTED
        return OTHER
    if isinstance(exc, UnparseableMessage):
        return UNPARSEABLE
    if isinstance(exc, SQLAlchemyError):
        return DATABASE
    return HANDLER_ERROR


def about_the_item(outcome: Outcome) -> bool:
    """May this failure be about the one item the call named (a model of a `set`), not the server or the account?

    A refusal names the item; so may a 5xx (the server failing on one item's
    data): both are isolated by splitting the call. A 429, a timeout, a cut
    connection, a page that does not parse or a refused account are about the
    server or the account, whatever the call named.
    """
    return isinstance(outcome, DeadLetter) or (isinstance(outcome, RetryLater) and outcome.kind == SERVER_ERROR)


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
    reason = stored_reason(f"{prefix}the database refused the message: {primary}{where} [SQLSTATE {code}]")
    return DeadLetter(reason[:300], kind=REJECTED)


def batch_failure(exc: BaseException, context: str | None = None) -> RetryLater:
    """A handler that could not run at all (a bug, a dependency down): its messages are not at fault, so they are retried."""
    prefix = f"{context}: " if context else ""
    return RetryLater(f"{prefix}handler error: {exc!r}"[:300], kind=HANDLER_ERROR)


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
