"""The loop every periodic pass of status_poller runs in: a pass, a wait, a failed pass retried sooner.

The shop checks (shop_watch/check_loop.py), the problem notes, the sync
status meta, the mapping pickup and the payment watch each run a pass, then
wait what the pass says. A pass that fails (the shop, the broker or the
database down) is logged and tried again after a growing backoff; the first
pass that succeeds again starts the backoff over. Where the loop talks to the
shop, a pass the shop refuses the REST keys for is not a failure to back off
from: the loop waits until the shop takes them again (shop_watch/key_pause.py)
and runs a pass at once. Nothing is counted against an order meanwhile. The
loop beats its /healthz entry once per round and retires it when stopped.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from shared.clients.shop import WooCommerceClient
from shared.messaging.amqp import backoff_delays
from shared.observability.health import HEALTH
from shared.observability.logging import get_logger
from services.status_poller.shop_watch.key_pause import wait_if_keys_refused

log = get_logger(__name__)


def run_loop(
    stop: threading.Event,
    *,
    loop: str,
    label: str,
    max_silence: float,
    run_pass: Callable[[], float],
    shop: WooCommerceClient | None = None,
    retry_first: float = 2.0,
    retry_cap: float = 60.0,
    on_failure: Callable[[BaseException], None] | None = None,
    sleep: Callable[[float], object] | None = None,
) -> None:
    """Run `run_pass` (it returns how long to wait before the next) until `stop`.

    `label` names the loop in the failure log ("problem notes pass failed"),
    `on_failure` records or undoes what a failed pass leaves, `shop` is the
    shop the passes talk to (its refused keys are waited out), and `sleep`
    waits between passes (default: `stop.wait`).
    """
    wait_for = sleep or stop.wait
    HEALTH.register_loop(loop, max_silence=max_silence)
    delays = backoff_delays(first=retry_first, cap=retry_cap)
    while not stop.is_set():
        HEALTH.beat(loop)
        try:
            wait = run_pass()
            delays = backoff_delays(first=retry_first, cap=retry_cap)
        except Exception as exc:  # the shop, the broker or the database down, keys refused: nothing is lost
            if on_failure is not None:
                on_failure(exc)
            if shop is not None and wait_if_keys_refused(exc, shop, stop, worker=loop, loop=loop):
                delays = backoff_delays(first=retry_first, cap=retry_cap)
                continue  # the shop takes the keys again (or we stop): a pass at once
            wait = next(delays)
            log.warning(f"{label} failed", loop=loop, error=repr(exc)[:300], retry_in=round(wait, 2))
        wait_for(wait)
    HEALTH.retire_loop(loop)
