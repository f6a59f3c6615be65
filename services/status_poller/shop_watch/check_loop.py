"""The loop every periodic shop check runs in: a pass, a wait, a failed pass retried sooner.

The catch-up (catchup.py), the verification sweep (verification.py) and the
webhook check (webhook_watch.py) each run a pass every interval. A pass that
fails (shop, broker or database down, key refused) is recorded on the check
(shared/shop_state/checks.py) and tried again after a growing backoff; the first
pass that succeeds again starts the backoff over. The loop beats its /healthz
entry once per round and retires it when stopped.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from shared.messaging.amqp import backoff_delays
from shared.observability.health import HEALTH
from shared.observability.logging import get_logger
from shared.shop_state.checks import PeriodicCheck

log = get_logger(__name__)


def run_check_loop(
    stop: threading.Event,
    check: PeriodicCheck,
    *,
    loop: str,
    label: str,
    max_silence: float,
    retry_first: float,
    retry_cap: float,
    run_pass: Callable[[], float],
    after_failure: Callable[[], None] | None = None,
    sleep: Callable[[float], object] | None = None,
) -> None:
    """Run `run_pass` until `stop`; it records its own success and returns how long to wait.

    `label` names the check in the failure log ("shop catch-up failed"),
    `after_failure` undoes what a failed pass may leave held, and `sleep`
    waits between passes (default: `stop.wait`).
    """
    wait_for = sleep or stop.wait
    check.started()
    HEALTH.register_loop(loop, max_silence=max_silence)
    delays = backoff_delays(first=retry_first, cap=retry_cap)
    while not stop.is_set():
        HEALTH.beat(loop)
        try:
            wait = run_pass()
            delays = backoff_delays(first=retry_first, cap=retry_cap)
        except Exception as exc:  # shop, broker or database down, key refused: try again soon
            check.failed(repr(exc)[:300])
            wait = next(delays)
            log.warning(f"{label} failed", check=check.name, error=repr(exc)[:300], retry_in=round(wait, 2))
            if after_failure is not None:
                after_failure()
        wait_for(wait)
    HEALTH.retire_loop(loop)
