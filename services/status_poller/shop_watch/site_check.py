"""The site check: where the shop says it is, kept for ingest's source check.

WooCommerce sends `X-WC-Webhook-Source: home_url('/')` with every delivery,
and ingest refuses a signed delivery from any other site (a staging copy of
the shop that kept the webhooks and their secret). The shop's site is what
the shop itself reports: `home` (and `url`) in WordPress's REST index,
GET /wp-json/. Every INTERVAL_SECONDS (and at start) this asks it and
records it (shared/shop_state/site_records.py), so a shop that moves to a new address
is followed without a setting changed; ingest reads the record at most
every half a minute and never calls the shop per delivery.

A failed check changes nothing: ingest goes on with the site last read (and
WC_URL's). It is retried sooner, recorded on the check (`shop_check:site_check`
in sync_state) and counted like the other shop checks. Every replica checks:
one small request, and each writes the same value.
"""
from __future__ import annotations

import threading

from shared.clients.shop import WooCommerceClient
from shared.db import get_engine
from shared.observability.logging import get_logger
from shared.observability.metrics import SITE_CHECK
from shared.shop_state.checks import PeriodicCheck
from shared.shop_state.site_records import LearnedSite, home_changed, learn_site
from services.status_poller.shop_watch.check_loop import run_check_loop

log = get_logger(__name__)

INTERVAL_SECONDS = 300.0
# The check's loop name in /healthz.
LOOP = "status_poller.site_check"


class SiteCheck:
    def __init__(self, database_url: str, shop: WooCommerceClient, interval: float = INTERVAL_SECONDS) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop
        self.interval = float(interval)
        self.check = PeriodicCheck(self.engine, SITE_CHECK, self.interval)

    def run(self, stop: threading.Event) -> None:
        """A check at start, then one every interval until `stop`; a failed check is retried sooner."""
        log.info("shop site check started", interval=self.interval)

        def run_pass() -> float:
            self.run_once()
            return self.interval

        run_check_loop(stop, self.check, self.shop, loop=LOOP, label="shop site check",
                       max_silence=self.interval + 120.0, retry_first=2.0, retry_cap=min(60.0, self.interval),
                       run_pass=run_pass)
        log.info("shop site check stopped")

    def run_once(self) -> LearnedSite:
        site, before = learn_site(self.engine, self.shop)
        if before is None:
            log.info("the shop's site learned", home=site.home, url=site.url)
        elif home_changed(site, before):
            log.warning("the shop reports another site", home=site.home, before=before.home,
                        hint="webhook deliveries are accepted from the new home from now on; if this is not "
                             "the live shop, WC_URL points at the wrong one")
        self.check.succeeded({"home": site.home})
        return site
