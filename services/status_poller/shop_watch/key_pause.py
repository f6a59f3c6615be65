"""Refused shop keys, for every loop that talks to the shop: wait until the shop takes them again.

A 401 or 403 to the REST keys blames no order (shared/failures/retry.py makes
it a `Paused` of the shop's account). The loop that met it stops where it is,
records nothing against any order, and waits in the shop's account pause
(shared/failures/account_pause.py: one probe with backoff for the whole
process, one error a minute, `/readyz` 503 and `rewix_shop_account_refused`
at 1 meanwhile); then it goes round again at once.
"""
from __future__ import annotations

import threading

from shared.clients.shop import WooCommerceClient
from shared.failures import account_pause, retry
from shared.failures.errors import SHOP
from shared.observability.health import HEALTH


def wait_if_keys_refused(exc: BaseException, shop: WooCommerceClient, stop: threading.Event, *, worker: str,
                         loop: str | None = None) -> bool:
    """True when `exc` was the shop refusing the keys, once they are taken again (or on `stop`);
    False for any other failure, which is the caller's to back off from. `loop` is the caller's
    /healthz entry, kept beating while it waits on purpose."""
    outcome = retry.outcome_of(exc)
    if not (isinstance(outcome, retry.Paused) and outcome.account == SHOP):
        return False
    account_pause.wait_until_accepted(
        shop.probe_keys, stop, worker=worker, reason=outcome.reason, account=SHOP,
        beat=(lambda: HEALTH.beat(loop)) if loop else None,
    )
    return True
