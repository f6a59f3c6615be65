"""The loop every periodic shop check runs in: a pass, a wait, a failed pass retried sooner.

The catch-up (catchup.py), the verification sweep (verification.py), the
webhook check (webhook_watch.py) and the site check (site_check.py) each run a
pass every interval. A pass that fails (shop, broker or database down) is
recorded on the check (shared/shop_state/checks.py) and tried again after a
growing backoff; the first pass that succeeds again starts the backoff over.
A pass the shop refuses the REST keys for is recorded on the check too, and
then the loop waits until the shop takes them again (key_pause.py) and runs
a pass at once. The loop beats its /healthz entry once per round and retires
it when stopped.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from shared.clients.shop import WooCommerceClient
from shared.messaging.amqp import backoff_delays
from shared.observability.health import HEALTH
from shared.observability.logging import get_logger
from shared.shop_state.checks import PeriodicCheck
from services.status_poller.shop_watch.key_pause import wait_if_keys_refused

log = get_logger(__name__)


def run_check_loop(
    stop: threading.Event,
    check: PeriodicCheck,
    shop: WooCommerceClient,
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
            if after_failure is not None:
                after_failure()
            if wait_if_keys_refused(exc, shop, stop, worker=loop, loop=loop):
                delays = backoff_delays(first=retry_first, cap=retry_cap)
                continue  # the shop takes the keys again (or we stop): a pass at once
            wait = next(delays)
            log.warning(f"{label} failed", check=check.name, error=repr(exc)[:300], retry_in=round(wait, 2))
        wait_for(wait)
    HEALTH.retire_loop(loop)
