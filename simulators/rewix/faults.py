"""Injected misbehaviour of the supplier: latency, error windows, rate limits, cut connections.

Not thread-safe by itself: SimulatorState calls it under its one lock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one /restful/ request before (or instead of) answering it."""

    latency: float = 0.0
    status: int | None = None  # answer with this instead of doing the work
    body: str | None = None  # the error body of that answer (a default text when None)
    retry_after: float | None = None
    drop: bool = False  # cut the connection in the middle of the answer
    refuse_account: int | None = None  # answer 401/403 as if the credentials were wrong
    maintenance: bool = False  # answer 200 with an HTML maintenance page


@dataclass
class TokenBucket:
    per_second: float
    retry_after: float
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        # A full second's worth of burst, so a steady client at the rate never trips.
        self.tokens = max(1.0, self.per_second)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(max(1.0, self.per_second), self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Faults:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.latency_ms = 0
        self.window_status: int | None = None
        self.window_until = 0.0
        self.fail_status = 500
        self.fail_count = 0
        self.fail_body: str | None = None
        self.bucket: TokenBucket | None = None
        self.drop_count = 0
        self.poisoned: set[int] = set()
        # Faults of the account or the server rather than of one order.
        self.refuse_status: int | None = None
        self.refuse_until: float | None = None  # None: until switched back
        self.maintenance_until = 0.0
        self.failing_models: dict[int, int] = {}  # stock_id -> 5xx answered to a set naming it
        self.clientkey_errors: set[str] = set()  # keys whose lookup answers 500
        self.drop_after_create = 0  # dropshipping POSTs carried out, then the connection cut

    def configure(self, spec: dict[str, Any]) -> None:
        """Apply the keys present in `spec`; a key left out keeps its fault, null turns it off."""
        if "latency_ms" in spec:
            self.latency_ms = int(spec["latency_ms"] or 0)
        if "status_window" in spec:
            window = spec["status_window"]
            self.window_status = int(window["status"]) if window else None
            self.window_until = time.monotonic() + float(window.get("seconds", 0)) if window else 0.0
        if "fail_next" in spec:
            fail = spec["fail_next"] or {}
            self.fail_status = int(fail.get("status", 500))
            self.fail_count = int(fail.get("count", 1)) if fail else 0
            # A real platform's error page can say anything: NULs, e-mails, control characters.
            self.fail_body = fail.get("body")
        if "rate_limit" in spec:
            limit = spec["rate_limit"]
            self.bucket = TokenBucket(float(limit["per_second"]), float(limit.get("retry_after", 1))) if limit else None
        if "drop_next" in spec:
            self.drop_count = int(spec["drop_next"] or 0)
        if "poisoned_stock_ids" in spec:
            self.poisoned = {int(s) for s in spec["poisoned_stock_ids"] or []}
        if "refuse_account" in spec:
            # {"status": 401|403, "seconds": N}; without seconds, until switched back with null.
            refuse = spec["refuse_account"]
            self.refuse_status = int(refuse.get("status", 401)) if refuse else None
            seconds = refuse.get("seconds") if refuse else None
            self.refuse_until = time.monotonic() + float(seconds) if seconds is not None else None
        if "maintenance" in spec:
            maintenance = spec["maintenance"]
            self.maintenance_until = time.monotonic() + float(maintenance.get("seconds", 0)) if maintenance else 0.0
        if "failing_stock_ids" in spec:
            failing = spec["failing_stock_ids"] or {}
            status = int(failing.get("status", 503)) if failing else 503
            self.failing_models = {int(s): status for s in failing.get("stock_ids", [])} if failing else {}
        if "clientkey_errors" in spec:
            self.clientkey_errors = {str(k) for k in spec["clientkey_errors"] or []}
        if "drop_after_create" in spec:
            self.drop_after_create = int(spec["drop_after_create"] or 0)

    def account_refused(self) -> int | None:
        """The 401/403 every request meets while the account is switched to refused."""
        if self.refuse_status is None:
            return None
        if self.refuse_until is not None and time.monotonic() >= self.refuse_until:
            self.refuse_status = self.refuse_until = None
            return None
        return self.refuse_status

    def failing_status(self, stock_ids: list[int]) -> tuple[int, int] | None:
        """(stock_id, 5xx) for the first model of a set that is switched to fail, else None."""
        for stock_id in stock_ids:
            if stock_id in self.failing_models:
                return stock_id, self.failing_models[stock_id]
        return None

    def take_drop_after_create(self) -> bool:
        if self.drop_after_create > 0:
            self.drop_after_create -= 1
            return True
        return False

    def decide(self) -> FaultDecision:
        """Consume the faults one request is due; returns what the handler must do."""
        latency = self.latency_ms / 1000.0
        refused = self.account_refused()
        if refused is not None:
            return FaultDecision(latency, refuse_account=refused)
        if time.monotonic() < self.maintenance_until:
            return FaultDecision(latency, maintenance=True)
        if self.bucket is not None and not self.bucket.take():
            return FaultDecision(latency, 429, retry_after=self.bucket.retry_after)
        if self.window_status is not None and time.monotonic() < self.window_until:
            return FaultDecision(latency, self.window_status)
        if self.fail_count > 0:
            self.fail_count -= 1
            return FaultDecision(latency, self.fail_status, body=self.fail_body)
        drop = self.drop_count > 0
        if drop:
            self.drop_count -= 1
        return FaultDecision(latency, drop=drop)

    def describe(self) -> dict[str, Any]:
        window_left = max(0.0, self.window_until - time.monotonic()) if self.window_status else 0.0
        return {
            "latency_ms": self.latency_ms,
            "status_window": {"status": self.window_status, "seconds_left": round(window_left, 3)}
            if window_left
            else None,
            "fail_next": {"status": self.fail_status, "count": self.fail_count} if self.fail_count else None,
            "rate_limit": {"per_second": self.bucket.per_second, "retry_after": self.bucket.retry_after}
            if self.bucket
            else None,
            "drop_next": self.drop_count,
            "poisoned_stock_ids": sorted(self.poisoned),
            "refuse_account": {"status": self.refuse_status} if self.refuse_status else None,
            "maintenance": time.monotonic() < self.maintenance_until,
            "failing_stock_ids": {str(s): c for s, c in sorted(self.failing_models.items())},
            "clientkey_errors": sorted(self.clientkey_errors),
            "drop_after_create": self.drop_after_create,
        }
