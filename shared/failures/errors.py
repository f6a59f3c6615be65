"""Typed failures of the outside world.

The retry policy (shared/failures/retry.py) decides on the *type* of an error, never on
strings or status codes spread through handlers: a TransientError goes to a
wait queue, a PermanentError straight to the dead letters.
"""
from __future__ import annotations

# The statuses with which the supplier and the shop both say "these credentials are
# refused": nothing is sent until an operator fixes them, so no retry can help.
CREDENTIALS_REFUSED = frozenset({401, 403})


def refuses_credentials(status: int | None) -> bool:
    return status in CREDENTIALS_REFUSED


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


class PermanentError(ExternalError):
    """400, 404, 412 and the like: repeating the call cannot help."""


class AccountRefused(ExternalError):
    """401 or 403: the supplier refuses the account itself, not one order or model.

    Neither transient nor permanent for a message: no message is to blame, so
    none is retried or dead-lettered for it. The workers pause instead, probe
    the supplier and resume once it accepts the credentials (docs/interfaces.md,
    "Order lifecycle", retries).
    """


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
