"""The loop every periodic shop check runs in: status_poller's loop (services/status_poller/loop.py),
with each run and each failure recorded on the check.

The catch-up (catchup.py), the verification sweep (verification.py), the
webhook check (webhook_watch.py) and the site check (site_check.py) each run a
pass every interval. A pass that fails is recorded on the check
(shared/shop_state/checks.py), a refused key included, so `rewix-sync status`
shows when each last ran and why it failed.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from shared.clients.shop import WooCommerceClient
from shared.shop_state.checks import PeriodicCheck
from services.status_poller.loop import run_loop


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
    def failed(exc: BaseException) -> None:
        check.failed(repr(exc)[:300])
        if after_failure is not None:
            after_failure()

    check.started()
    run_loop(stop, loop=loop, label=label, max_silence=max_silence, run_pass=run_pass, shop=shop,
             retry_first=retry_first, retry_cap=retry_cap, on_failure=failed, sleep=sleep)
