"""The webhook check: the system's shop webhooks are kept active.

WooCommerce disables a webhook after its 7th failed delivery in a row and then
drops every event of its topic, silently and for good (docs/woocommerce.md
§1.5). Every SHOP_WEBHOOK_CHECK_INTERVAL_SECONDS this lists the shop's
webhooks; each one delivering to WC_WEBHOOK_DELIVERY_URL that is `disabled`
or `paused` is set `active` again (PUT /webhooks/{id}), logged as a warning
with its topic, counted (rewix_shop_webhooks_reactivated_total), recorded in
shop_webhooks, and the catch-up is asked to read the shop again from when the
webhook was last seen active, so the orders it dropped arrive. Re-activating
does not reset WooCommerce's failure count: if ingest still fails, one more
failure disables the webhook again, and the next check says so again.

A topic with no webhook of ours is reported (a warning, the
rewix_shop_webhooks_missing gauge, `rewix-sync status`), never created behind
the shop owner's back: `rewix-sync webhooks install` is how they are made.

With several status_poller replicas, one check runs at a time: a pass holds a
PostgreSQL advisory lock for its transaction, and a replica that cannot take
it skips that round.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text

from shared.clients.shop import WooCommerceClient
from shared.clients.shop.webhooks import INACTIVE, missing_topics, ours
from shared.db import get_engine
from shared.observability.logging import get_logger
from shared.observability.metrics import WEBHOOK_CHECK
from shared.orders.events import InvalidOrder, parse_gmt
from shared.shop_state.checks import PeriodicCheck, webhooks_checked
from shared.shop_state.webhooks import forget_others, read_records, record_reactivated, record_seen
from services.status_poller import store
from services.status_poller.shop_watch.check_loop import run_check_loop

log = get_logger(__name__)

# pg_advisory_xact_lock key of the webhook check ("rewixwhk" as a number); no other lock uses it.
LOCK_KEY = 0x7265776978776B
# The check's loop name in /healthz.
LOOP = "status_poller.webhook_check"


@dataclass(frozen=True)
class WatchPass:
    checked: int = 0
    reactivated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: bool = False  # another replica was checking


class WebhookWatch:
    def __init__(self, database_url: str, shop: WooCommerceClient, delivery_url: str, interval: float, *,
                 on_reactivated: Callable[[], None] | None = None) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop
        self.delivery_url = delivery_url
        self.interval = float(interval)
        # Wakes this process's catch-up, so the rewind is read at once rather than at its next pass.
        self.on_reactivated = on_reactivated
        # Metrics and the record `rewix-sync status` reads (shared/shop_state/checks.py).
        self.check = PeriodicCheck(self.engine, WEBHOOK_CHECK, self.interval)

    def run(self, stop: threading.Event) -> None:
        """A check at start, then one every interval until `stop`; a failed check is retried sooner."""
        log.info("shop webhook check started", interval=self.interval, delivery_url=self.delivery_url)

        def run_pass() -> float:
            self.run_once()
            return self.interval

        run_check_loop(stop, self.check, self.shop, loop=LOOP, label="shop webhook check",
                       max_silence=self.interval + 120.0, retry_first=2.0, retry_cap=min(60.0, self.interval),
                       run_pass=run_pass)
        log.info("shop webhook check stopped")

    def run_once(self) -> WatchPass:
        with self.engine.begin() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}).scalar():
                log.info("shop webhook check skipped: another status_poller is checking")
                return WatchPass(skipped=True)
            mine = ours(self.shop.list_webhooks(), self.delivery_url)
            records = read_records(conn)
            reactivated = []
            warnings: list[dict[str, Any]] = []
            for webhook in mine:
                now = datetime.now(timezone.utc)
                found = webhook.get("status")
                if found not in INACTIVE:
                    record_seen(conn, webhook, status=str(found), at=now)
                    continue
                self.shop.update_webhook(webhook["id"], {"status": "active"})
                record = records.get(webhook["id"])
                off_since = (record.last_seen_active_at if record and record.last_seen_active_at
                             else _created(webhook) or now)
                record_reactivated(conn, webhook, found_status=str(found), off_since=off_since, at=now)
                store.request_rewind(conn, off_since)
                reactivated.append(str(webhook.get("topic")))
                warnings.append(dict(webhook_id=webhook["id"], topic=webhook.get("topic"), found_status=found,
                                     off_since=off_since.isoformat()))
            forget_others(conn, [w["id"] for w in mine])
        # Logged once the record is committed, so what the warning says is already in the database.
        for fields in warnings:
            log.warning("shop webhook re-activated", **fields,
                        hint="WooCommerce disables a webhook after 7 failed deliveries in a row; "
                             "the catch-up reads the shop again from off_since")
        if reactivated and self.on_reactivated is not None:
            self.on_reactivated()
        missing = missing_topics(mine)
        if missing:
            log.warning("shop webhooks missing", topics=missing, delivery_url=self.delivery_url,
                        hint="run `rewix-sync webhooks install`")
        webhooks_checked(self.check, missing=missing, reactivated=reactivated)
        return WatchPass(checked=len(mine), reactivated=reactivated, missing=missing)


def _created(webhook: dict[str, Any]) -> datetime | None:
    """When the webhook was made: it cannot have been on before (for one never seen active)."""
    try:
        return parse_gmt(webhook.get("date_created_gmt"))
    except InvalidOrder:
        return None
