"""Typed failures of the outside world.

The clients turn every failure into one of these types, with its status,
Retry-After and whether the call may have been carried out; the failure
policy (shared/failures/retry.py) decides on that data alone, never on
strings or status codes spread through handlers: a TransientError goes to a
wait queue, a PermanentError straight to the dead letters, an AccountRefused
pauses the workers that need the account.
"""
from __future__ import annotations

# The outside accounts whose refusal pauses work (AccountRefused.account).
SUPPLIER = "supplier"
SHOP = "shop"

# The statuses with which the supplier and the shop both say "these credentials are
# refused": nothing is sent until an operator fixes them, so no retry can help.
CREDENTIALS_REFUSED = frozenset({401, 403})


def refuses_credentials(status: int | None) -> bool:
    return status in CREDENTIALS_REFUSED


def passed_authentication(status: int) -> bool:
    """An answer that says the credentials were accepted: anything below 500 but a refusal
    or a 429 (a 5xx or a 429 may come before the account is even looked at)."""
    return status < 500 and status != 429 and not refuses_credentials(status)


class ExternalError(Exception):
    """A call to the supplier or the shop did not do what was asked."""

    def __init__(self, reason: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        # Only an excerpt: bodies can be large and end up in message headers.
        self.body = (body or "")[:500]

    @property
    def refuses_credentials(self) -> bool:
        return refuses_credentials(self.status)


class TransientError(ExternalError):
    """Timeouts, connection errors, 5xx, 429: the same call may succeed later."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(reason, status=status, body=body)
        # Seconds the other side asked us to wait (Retry-After), if it said.
        self.retry_after = retry_after
        # True when the request may have been carried out (a timeout or a
        # connection dropped after sending): the caller must look before
        # repeating a non-idempotent call.
        self.outcome_unknown = outcome_unknown


class TimedOut(TransientError):
    """No answer in time (connecting or reading)."""


class ConnectionFailed(TransientError):
    """The connection was refused, reset, or cut short before the whole answer came."""


class PermanentError(ExternalError):
    """400, 404, 412 and the like: repeating the call cannot help."""


class AccountRefused(ExternalError):
    """401 or 403: the supplier refuses the account, or the shop the REST keys; not one order or model.

    Neither transient nor permanent for a message: no message is to blame, so
    none is retried or dead-lettered for it. The workers that need the account
    pause instead, probe it and resume once it accepts the credentials
    (shared/failures/account_pause.py; docs/interfaces.md, "Order lifecycle", retries).
    """

    def __init__(self, reason: str, *, status: int | None = None, body: str = "", account: str = SUPPLIER) -> None:
        super().__init__(reason, status=status, body=body)
        # Whose credentials: SUPPLIER or SHOP.
        self.account = account


class AmbiguousLookup(TransientError):
    """The key lookup answered 500: older servers say so for an unknown key, and
    any server for a failure of its own. Whether the order exists is not known,
    so nothing may be sent on this answer; look again later."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only; an HTTP date is rare here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None
