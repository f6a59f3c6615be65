"""Waiting out a refused supplier account: probe with backoff, say so once a minute, resume.

A 401 or 403 is about the account, not about any message or order, so the
workers neither retry nor dead-letter anything for it: supplier_sync stops
taking messages and status_poller stops polling, and both call
`wait_until_accepted` until the supplier accepts the credentials again (an
operator fixing the password, or the supplier enabling the account).

While it waits, `/readyz` answers 503 with the reason and the
`rewix_supplier_account_refused` gauge is 1: both are fed by every supplier
call's status (shared/observability/metrics.py, `record_supplier_call`), the
probes included, so they clear by themselves with the first accepted call.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.failures.errors import AccountRefused, ExternalError
from shared.observability.logging import get_logger

log = get_logger(__name__)

# How often the error is logged while the account stays refused.
LOG_EVERY_SECONDS = 60.0
# Probes back off from the first to the last delay, then keep to the last.
FIRST_PROBE_DELAY = 1.0
MAX_PROBE_DELAY = 30.0


def probe_delays(first: float = FIRST_PROBE_DELAY, most: float = MAX_PROBE_DELAY):
    """1, 2, 4 … seconds, then `most` for ever."""
    delay = first
    while True:
        yield min(delay, most)
        delay *= 2


def wait_until_accepted(
    probe: Callable[[], object],
    stop: threading.Event,
    *,
    worker: str,
    reason: str,
    first_delay: float = FIRST_PROBE_DELAY,
    max_delay: float = MAX_PROBE_DELAY,
    log_every: float = LOG_EVERY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Probe the supplier (a harmless read) until it accepts the account; False when `stop` came first.

    Any answer other than a refusal ends the wait: a supplier that is down but
    accepts the credentials is the retry schedule's business, not this one's.
    """
    log.error("supplier refuses the account: paused", worker=worker, reason=reason[:300])
    last_logged = clock()
    for delay in probe_delays(first_delay, max_delay):
        if stop.wait(delay):
            return False
        try:
            probe()
        except AccountRefused as exc:
            reason = exc.reason
        except ExternalError as exc:
            log.info("supplier probe failed, but not on the account: resuming", worker=worker, error=exc.reason[:200])
            return True
        else:
            log.info("supplier accepts the account again: resuming", worker=worker)
            return True
        if clock() - last_logged >= log_every:
            log.error("supplier still refuses the account: paused", worker=worker, reason=reason[:300])
            last_logged = clock()
    return False  # not reached: the delays never end
