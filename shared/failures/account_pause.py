"""Waiting out a refused account: probe with backoff, say so once a minute, resume.

A 401 or 403 is about the account, not about any message or order, so the
workers neither retry nor dead-letter anything for it (the failure policy
makes it a `retry.Paused`, shared/failures/retry.py). Two accounts can be
refused: the supplier's (supplier_sync stops taking messages, status_poller
stops polling) and the shop's REST keys (status_poller's applier stops taking
status changes, its shop loops stop writing and reading). Each worker calls
`wait_until_accepted` until the account is accepted again (an operator fixing
the credentials, the supplier enabling the account, the shop owner restoring
the key).

The workers of one process that wait on the same account share one pause:
one of them probes (a harmless read) with backoff and logs the error, at most
once a minute; the others wait for its word. So seven shop loops refused at
once cost one probe every 30 s and one log line a minute, not seven.

While it waits, `/readyz` answers 503 with the reason and the account's
gauge (`rewix_supplier_account_refused`, `rewix_shop_account_refused`) is 1:
both are fed by every call's status (shared/observability/metrics.py,
`record_supplier_call`, `record_shop_call`), the probes included, so they
clear by themselves with the first accepted call.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.failures.errors import SHOP, SUPPLIER, AccountRefused, ExternalError
from shared.observability.logging import get_logger

log = get_logger(__name__)

# How often the error is logged while the account stays refused.
LOG_EVERY_SECONDS = 60.0
# Probes back off from the first to the last delay, then keep to the last.
FIRST_PROBE_DELAY = 1.0
MAX_PROBE_DELAY = 30.0
# How often a worker waiting for another's probe looks at its stop.
FOLLOW_SECONDS = 0.5

# What the log says of each account while it is refused.
REFUSES = {SUPPLIER: "supplier refuses the account", SHOP: "shop refuses the REST keys"}
STILL_REFUSES = {SUPPLIER: "supplier still refuses the account", SHOP: "shop still refuses the REST keys"}


def probe_delays(first: float = FIRST_PROBE_DELAY, most: float = MAX_PROBE_DELAY):
    """1, 2, 4 … seconds, then `most` for ever."""
    delay = first
    while True:
        yield min(delay, most)
        delay *= 2


class _Pause:
    """One account's pause in this process: who probes, how many pauses ended, when the error was last logged."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.probing = False
        self.ended = 0  # pauses that ended in acceptance: a waiting worker sees it move
        self.last_logged: float | None = None

    def error_due(self, now: float, every: float) -> bool:
        """Log the error now? Once per `every` for the account, whichever worker finds it refused."""
        with self.changed:
            if self.last_logged is not None and 0 <= now - self.last_logged < every:
                return False
            self.last_logged = now
            return True


_PAUSES: dict[str, _Pause] = {}
_PAUSES_LOCK = threading.Lock()


def _pause_of(account: str) -> _Pause:
    with _PAUSES_LOCK:
        return _PAUSES.setdefault(account, _Pause())


def wait_until_accepted(
    probe: Callable[[], object],
    stop: threading.Event,
    *,
    worker: str,
    reason: str,
    account: str = SUPPLIER,
    beat: Callable[[], object] | None = None,
    first_delay: float = FIRST_PROBE_DELAY,
    max_delay: float = MAX_PROBE_DELAY,
    log_every: float = LOG_EVERY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Wait until `account` accepts the credentials again; False when `stop` came first.

    `probe` is a harmless read of that account. Any answer other than a
    refusal ends the wait: an outside side that is down but accepts the
    credentials is the retry schedule's business, not this one's. `beat` is
    called at least every MAX_PROBE_DELAY while waiting (a loop's /healthz
    entry: paused on purpose, not stuck).
    """
    beat = beat or (lambda: None)
    pause = _pause_of(account)
    with pause.changed:
        seen = pause.ended
        follow = pause.probing
        pause.probing = True
    if follow:
        log.info(f"{REFUSES[account]}: paused, waiting for the probe under way", worker=worker)
        if not _follow(pause, seen, stop, beat):
            return False
        if pause.ended != seen:
            log.info(f"{REFUSES[account]} no more: resuming", worker=worker)
            return True
        # The worker that probed was stopped first: this one probes now.
    accepted = False
    try:
        accepted = _probe(probe, stop, pause, beat, worker=worker, reason=reason, account=account,
                          first_delay=first_delay, max_delay=max_delay, log_every=log_every, clock=clock)
    finally:
        with pause.changed:
            pause.probing = False
            if accepted:
                pause.ended += 1
            pause.changed.notify_all()
    return accepted


def _follow(pause: _Pause, seen: int, stop: threading.Event, beat: Callable[[], object]) -> bool:
    """Wait for the probing worker's word: True once the pause ended or nobody probes any more
    (the caller then probes itself, having `probing` set), False on `stop`."""
    while not stop.is_set():
        beat()
        with pause.changed:
            if pause.ended != seen:
                return True
            if not pause.probing:
                pause.probing = True
                return True
            pause.changed.wait(FOLLOW_SECONDS)
    return False


def _probe(
    probe: Callable[[], object],
    stop: threading.Event,
    pause: _Pause,
    beat: Callable[[], object],
    *,
    worker: str,
    reason: str,
    account: str,
    first_delay: float,
    max_delay: float,
    log_every: float,
    clock: Callable[[], float],
) -> bool:
    refuses = REFUSES[account]
    if pause.error_due(clock(), log_every):
        log.error(f"{refuses}: paused", worker=worker, reason=reason[:300])
    for delay in probe_delays(first_delay, max_delay):
        beat()
        if stop.wait(delay):
            return False
        try:
            probe()
        except AccountRefused as exc:
            reason = exc.reason
        except ExternalError as exc:
            log.info(f"{account} probe failed, but not on the credentials: resuming", worker=worker,
                     error=exc.reason[:200])
            return True
        else:
            log.info(f"{refuses} no more: resuming", worker=worker)
            return True
        if pause.error_due(clock(), log_every):
            log.error(f"{STILL_REFUSES[account]}: paused", worker=worker, reason=reason[:300])
    return False  # not reached: the delays never end
