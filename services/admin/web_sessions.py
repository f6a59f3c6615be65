"""Who may use the operator page: sessions that expire and can be revoked, and throttled logins.

Both live in the database (tables admin_sessions and admin_login_failures), so
every gunicorn worker and every replica of the page agrees: a logout revokes
the session everywhere, and failures count per client address whichever
worker answered them. The cookie carries a random session id; only its
SHA-256 is stored, so a copy of the table opens nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select

from shared.db import session_scope
from shared.db.models import AdminLoginFailure, AdminSession

# Wrong tokens a client address may send within THROTTLE_WINDOW before its logins are refused (429).
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=1)


def derived(token: str, purpose: str) -> str:
    """A value derived from the admin token for one purpose (the CSRF token, the sessions' owner)."""
    return hmac.new(token.encode("utf-8"), f"rewix-admin {purpose}".encode(), hashlib.sha256).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets (False when either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Sessions:
    database_url: str
    token: str
    lifetime: timedelta

    @property
    def _owner(self) -> str:
        return derived(self.token, "session owner")

    def open(self) -> str:
        """A new session; returns the id for the cookie. Sessions that expired go at the same time."""
        session_id = secrets.token_urlsafe(32)
        now = _now()
        with session_scope(self.database_url) as db:
            db.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
            db.add(AdminSession(id_hash=_hash(session_id), token_fingerprint=self._owner, created_at=now,
                                expires_at=now + self.lifetime))
        return session_id

    def valid(self, session_id: str | None) -> bool:
        """The id belongs to a session opened with the current token that has neither expired nor been revoked."""
        if not session_id or len(session_id) > 200:
            return False
        with session_scope(self.database_url) as db:
            found = db.get(AdminSession, _hash(session_id))
            return bool(found and found.expires_at > _now() and same(found.token_fingerprint, self._owner))

    def revoke(self, session_id: str | None) -> None:
        if not session_id:
            return
        with session_scope(self.database_url) as db:
            db.execute(delete(AdminSession).where(AdminSession.id_hash == _hash(session_id)))


@dataclass(frozen=True)
class LoginThrottle:
    database_url: str
    failures: int = THROTTLE_FAILURES
    window: timedelta = THROTTLE_WINDOW

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again, or None when it may now."""
        since = _now() - self.window
        with session_scope(self.database_url) as db:
            count, oldest = db.execute(
                select(func.count(), func.min(AdminLoginFailure.failed_at))
                .where(AdminLoginFailure.address == address[:64], AdminLoginFailure.failed_at > since)
            ).one()
        if count < self.failures:
            return None
        return max(1, int((oldest + self.window - _now()).total_seconds()) + 1)

    def failed(self, address: str) -> None:
        with session_scope(self.database_url) as db:
            db.execute(delete(AdminLoginFailure).where(AdminLoginFailure.failed_at <= _now() - self.window))
            db.add(AdminLoginFailure(address=address[:64], failed_at=_now()))

    def succeeded(self, address: str) -> None:
        with session_scope(self.database_url) as db:
            db.execute(delete(AdminLoginFailure).where(AdminLoginFailure.address == address[:64]))
