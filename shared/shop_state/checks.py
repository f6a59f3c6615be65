"""The periodic shop checks of status_poller, and what each last found, kept for every process.

The catch-up, the verification, the webhook check and the site check each
run every interval (docs/interfaces.md, "Processes"). Each run goes through a
`PeriodicCheck`, which updates the worker's metrics (last success, runs by
result) and writes one row of `sync_state` (`shop_check:<name>`): when it
last succeeded and failed, the last error, its interval, and what the last
successful run found (`detail`: for the webhook check, the topics missing
and re-activated). `rewix-sync status` and the operator page read these rows
(`read_checks`), so they can tell a person without reaching the worker.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text

from shared.observability.logging import get_logger
from shared.observability.metrics import CATCHUP, SHOP_CHECKS, SITE_CHECK, VERIFICATION, WEBHOOK_CHECK, \
    WEBHOOKS_MISSING, WEBHOOKS_REACTIVATED

log = get_logger(__name__)

CHECKS = (CATCHUP, VERIFICATION, WEBHOOK_CHECK, SITE_CHECK)
PREFIX = "shop_check:"
# A check is overdue when it has not succeeded for this many intervals (the alert rule's 3).
OVERDUE_INTERVALS = 3


@dataclass(frozen=True)
class CheckRecord:
    name: str
    interval: float
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None
    started_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def overdue(self, now: datetime) -> bool:
        """No success for OVERDUE_INTERVALS intervals (counted from its start when it never succeeded)."""
        if self.interval <= 0:
            return False
        since = self.last_success_at or self.started_at
        return since is None or now - since > timedelta(seconds=OVERDUE_INTERVALS * self.interval)


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _as_record(name: str, value: str) -> CheckRecord:
    data = json.loads(value)
    return CheckRecord(
        name=name,
        interval=float(data.get("interval") or 0),
        last_success_at=_parse_time(data.get("last_success_at")),
        last_failure_at=_parse_time(data.get("last_failure_at")),
        last_error=data.get("last_error"),
        started_at=_parse_time(data.get("started_at")),
        detail=data.get("detail") or {},
    )


def read_checks(connection: Connection) -> dict[str, CheckRecord]:
    """Every check that has run (or started) at least once, by name."""
    rows = connection.execute(
        text("SELECT name, value FROM sync_state WHERE name LIKE :prefix"), {"prefix": PREFIX + "%"}
    )
    out = {}
    for name, value in rows:
        check = name[len(PREFIX):]
        try:
            out[check] = _as_record(check, value)
        except (ValueError, TypeError):  # a row written by a different version: ignore, it is rewritten
            continue
    return out


class PeriodicCheck:
    """One check's metrics and record: `started()` once, then `succeeded()` or `failed()` per run.

    Writing the record never fails the run: a database that is down is logged.
    """

    def __init__(self, engine: Engine, name: str, interval: float) -> None:
        assert name in CHECKS, name
        self.engine = engine
        self.name = name
        self.interval = float(interval)
        self._metrics = SHOP_CHECKS[name]

    def started(self) -> None:
        self._metrics.enable(self.interval)
        self._write({"interval": self.interval, "started_at": _now()})

    def succeeded(self, detail: dict[str, Any] | None = None) -> None:
        self._metrics.succeeded()
        values: dict[str, Any] = {"interval": self.interval, "last_success_at": _now(), "last_error": None}
        if detail is not None:
            values["detail"] = detail
        self._write(values)

    def failed(self, error: str) -> None:
        self._metrics.failed()
        self._write({"interval": self.interval, "last_failure_at": _now(), "last_error": error[:300]})

    def _write(self, values: dict[str, Any]) -> None:
        try:
            with self.engine.begin() as connection:
                # One JSON object per check; the keys given replace theirs, the others stay.
                connection.execute(
                    text(
                        """
                        INSERT INTO sync_state (name, value, updated_at) VALUES (:name, :value, now())
                        ON CONFLICT (name) DO UPDATE
                        SET value = (CAST(sync_state.value AS jsonb) || CAST(EXCLUDED.value AS jsonb))::text,
                            updated_at = now()
                        """
                    ),
                    {"name": PREFIX + self.name, "value": json.dumps(values)},
                )
        except Exception as exc:  # the check's own work is done; only its record is missing
            log.warning("shop check not recorded", check=self.name, error=str(exc)[:200])


def webhooks_checked(check: PeriodicCheck, *, missing: list[str], reactivated: list[str]) -> None:
    """The webhook check's success: topics without an active webhook, and those it re-activated."""
    WEBHOOKS_MISSING.set(len(missing))
    for topic in reactivated:
        WEBHOOKS_REACTIVATED.labels(topic=topic).inc()
    check.succeeded({"missing": sorted(missing), "reactivated": sorted(reactivated)})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
