"""Shop catch-up: orders modified since the last look go down the webhook path.

WooCommerce never retries a failed webhook delivery and disables a webhook
after a few failures in a row, so every SHOP_CATCHUP_INTERVAL_SECONDS the
shop is asked for the orders modified since the newest `date_modified_gmt`
seen (less a minute of overlap, for saves landing in a second already read),
and each is submitted exactly as a webhook would be. Everything downstream is
idempotent, so an order seen twice costs nothing. The watermark lives in the
sync_state table and survives restarts.

The listing names every status the shop has plus `trash` (shop_statuses.py),
so an order trashed without a webhook reaching us is caught up too, and it is
read by keyset on (date_modified_gmt, id) (WooCommerceClient.iter_changes_since),
so an order saved while the pass reads cannot make another one slip past
unread. The watermark only moves to the newest change actually read. With
nothing changed a pass is one request.

When the webhook check finds one of the system's webhooks disabled or paused,
it asks (store.request_rewind) for the next pass to read again from when the
webhook was last seen active, so what WooCommerce dropped meanwhile arrives.

It never looks before the go-live moment: SHOP_GO_LIVE_AT when set, else the
moment of its very first start (recorded in sync_state once and kept). An
order modified before the system went live was the owner's to handle; the
first start must not send it to the supplier a second time. `rewix-sync
backfill` is the deliberate way to bring older orders in.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.clients.shop import WooCommerceClient
from shared.failures.errors import PermanentError
from shared.observability.health import HEALTH
from shared.observability.logging import bound_ids, get_logger
from shared.observability.metrics import CATCHUP
from shared.orders.events import InvalidOrder, not_in_future, parse_gmt
from shared.orders.intake import OrderIntake
from shared.shop_state.checks import PeriodicCheck
from services.status_poller import store
from services.status_poller.shop_watch.check_loop import run_check_loop
from services.status_poller.shop_watch.order_reader import ShopOrderReader

log = get_logger(__name__)

OVERLAP = timedelta(seconds=60)
# The watermark is saved every this many orders, so a long pass that fails keeps its progress.
SAVE_EVERY = 100
# The catch-up loop's name in /healthz.
LOOP = "status_poller.catchup"


@dataclass(frozen=True)
class CatchUpPass:
    since: datetime
    seen: int
    submitted: int
    invalid: int
    watermark: datetime


class ShopCatchUp(ShopOrderReader):
    def __init__(
        self,
        database_url: str,
        shop: WooCommerceClient,
        intake: OrderIntake,
        interval: float,
        *,
        go_live_at: datetime | None = None,
    ) -> None:
        super().__init__(database_url, shop, intake, interval)
        self.go_live_at = go_live_at
        # Set by the webhook check after asking for a rewind: the next pass starts at once.
        self.wake = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """A pass at start, then one every interval until `stop`; a failed pass is retried sooner."""
        log.info("shop catch-up started", interval=self.interval)
        check = PeriodicCheck(self.engine, CATCHUP, self.interval)

        def run_pass() -> float:
            done = self.run_once(stop)
            check.succeeded({"seen": done.seen, "submitted": done.submitted})
            return self.interval

        # Silent for an interval between passes; a pass beats once per order it reads.
        run_check_loop(stop, check, self.shop, loop=LOOP, label="shop catch-up",
                       max_silence=self.interval + 120.0, retry_first=2.0, retry_cap=min(60.0, self.interval),
                       run_pass=run_pass, sleep=lambda seconds: self._sleep(stop, seconds))
        log.info("shop catch-up stopped")

    def _sleep(self, stop: threading.Event, seconds: float) -> None:
        """Until the next pass: `seconds`, or less when stopped or woken."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and not self.wake.is_set() and (left := deadline - time.monotonic()) > 0:
            self.wake.wait(min(left, 0.5))
        self.wake.clear()

    def run_once(self, stop: threading.Event | None = None) -> CatchUpPass:
        started = datetime.now(timezone.utc)
        go_live = self.go_live_at or store.go_live_moment(self.engine, started)
        stored = store.get_watermark(self.engine)
        # The overlap re-reads the last minute, but never reaches back before going live.
        # WooCommerce's modified_after is exclusive and counts whole seconds: one second
        # less takes in the orders modified in the go-live second itself.
        floor = go_live.replace(microsecond=0) - timedelta(seconds=1)
        since = floor if stored is None else max(stored - OVERLAP, floor)
        # A webhook found off (services/status_poller/shop_watch/webhook_watch.py): read again from when it was on.
        rewind = store.get_rewind(self.engine)
        if rewind is not None:
            since = max(min(since, rewind[0] - OVERLAP), floor)
        watermark = stored or go_live
        newest, saved = watermark, watermark
        seen = submitted = invalid = 0
        try:
            statuses = self.statuses.current()
            for order in self._changes(since, statuses):
                if stop is not None and stop.is_set():
                    break
                seen += 1
                HEALTH.beat(LOOP)
                modified = _modified(order)
                with bound_ids(order_id=order.get("id") if isinstance(order, dict) else None):
                    try:
                        conversion = self.intake.submit(order, "order.updated", source="catchup")
                    except InvalidOrder as exc:
                        invalid += 1
                        log.warning("catch-up skipped an order that is not valid", error=str(exc)[:300])
                    else:
                        submitted += bool(conversion.messages)
                if modified is not None and modified > newest:
                    newest = modified
                if seen % SAVE_EVERY == 0 and newest > saved:
                    store.set_watermark(self.engine, newest)
                    saved = newest
        finally:
            # Orders come oldest change first: everything up to `newest` has been submitted.
            if newest > saved:
                store.set_watermark(self.engine, newest)
        if rewind is not None and not (stop is not None and stop.is_set()):
            store.clear_rewind(self.engine, rewind[1])
        log.info("shop catch-up pass done", since=since.isoformat(), seen=seen, submitted=submitted,
                 invalid=invalid, watermark=newest.isoformat())
        return CatchUpPass(since, seen, submitted, invalid, newest)

    def _changes(self, since: datetime, statuses: list[str]) -> Any:
        try:
            yield from self.shop.iter_changes_since(since, statuses)
        except PermanentError as exc:
            # A 400 naming the status list: a plugin's status went away. Ask again next pass.
            if exc.status == 400:
                self.statuses.forget()
            raise


def _modified(order: Any) -> datetime | None:
    """The order's date as a watermark may take it: never one more than a day ahead."""
    if not isinstance(order, dict):
        return None
    try:
        return not_in_future(parse_gmt(order.get("date_modified_gmt")))
    except InvalidOrder:
        return None
