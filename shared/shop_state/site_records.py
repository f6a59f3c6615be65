"""What the system keeps about the shop's site: the home the shop reports, and the deliveries refused.

The shop's site is what the shop itself says it is: `home` (and `url`) in
WordPress's REST index, GET /wp-json/. status_poller reads it at start and
every 5 minutes (services/status_poller/shop_watch/site_check.py), and `rewix-sync
webhooks install|status` read it too; each records it in the `sync_state`
row `shop_site`. Ingest accepts deliveries from that site, from
WC_URL's and from WC_WEBHOOK_SOURCES (`accepted_sites`).

Deliveries refused for their source are added up per source in
`refused_sources` (ingest writes them, services/ingest/sources.py);
`rewix-sync status` and `webhooks status` name those refused within
RECENT that the configuration does not accept now.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text

from shared.shop_state.sites import AcceptedSites, configured_sites, site_key, sites_from

LEARNED_ROW = "shop_site"
HOME_ORIGIN = "the shop's home"
SITE_URL_ORIGIN = "the shop's WordPress address"
# A refused source needs a person while its last refusal is younger than this (`status` shows it).
RECENT = timedelta(days=1)
# The column's width; a longer header is cut (it is only a name for people).
SOURCE_WIDTH = 200


# --- the site the shop reports -------------------------------------------------------------------


@dataclass(frozen=True)
class LearnedSite:
    home: str
    url: str | None
    read_at: datetime

    def sites(self) -> AcceptedSites:
        # `url` (siteurl, where WordPress itself lives) is the same shop: a plugin that
        # filters home_url may make WooCommerce send it.
        return AcceptedSites(sites_from([self.home], HOME_ORIGIN)).with_sites(sites_from([self.url], SITE_URL_ORIGIN))


class NoHome(ValueError):
    """The shop's REST index does not say where the shop is."""


def site_from_index(index: Any, read_at: datetime) -> LearnedSite:
    """`home` and `url` of GET /wp-json/; NoHome when `home` is not a site address."""
    home = index.get("home") if isinstance(index, dict) else None
    if not isinstance(home, str) or site_key(home) is None:
        raise NoHome(f"the shop's REST index (GET /wp-json/) reports no usable home: {str(home)[:100]!r}")
    url = index.get("url")
    return LearnedSite(home.strip(), url.strip() if isinstance(url, str) and site_key(url) else None, read_at)


def read_learned_site(connection: Connection) -> LearnedSite | None:
    value = connection.execute(text("SELECT value FROM sync_state WHERE name = :name"),
                               {"name": LEARNED_ROW}).scalar()
    if not value:
        return None
    try:
        data = json.loads(value)
        return LearnedSite(str(data["home"]), data.get("url"), datetime.fromisoformat(data["read_at"]))
    except (ValueError, TypeError, KeyError):  # written by another version: read again at the next check
        return None


def record_learned_site(connection: Connection, site: LearnedSite) -> LearnedSite | None:
    """Keep `site`; returns what was kept before (None the first time)."""
    before = read_learned_site(connection)
    connection.execute(
        text(
            """
            INSERT INTO sync_state (name, value, updated_at) VALUES (:name, :value, now())
            ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
            """
        ),
        {"name": LEARNED_ROW,
         "value": json.dumps({"home": site.home, "url": site.url, "read_at": site.read_at.isoformat()})},
    )
    return before


def learn_site(engine: Engine, shop: Any) -> tuple[LearnedSite, LearnedSite | None]:
    """Ask the shop's REST index where the shop is (`shop` is a WooCommerceClient) and keep it.
    Returns what it said and what was kept before; shop errors and NoHome leave as they are."""
    site = site_from_index(shop.site_index(), datetime.now(timezone.utc))
    with engine.begin() as connection:
        return site, record_learned_site(connection, site)


def home_changed(site: LearnedSite, before: LearnedSite | None) -> bool:
    """The shop reports another site than it did (not only another scheme or slash)."""
    return before is not None and site_key(before.home) != site_key(site.home)


def accepted_sites(configured: AcceptedSites, learned: LearnedSite | None) -> AcceptedSites:
    """The shop's home as it reports it, then what the configuration names."""
    return (learned.sites() if learned else AcceptedSites()).with_sites(configured.sites)


def accepted_by_settings(settings: Any, learned: LearnedSite | None) -> AcceptedSites:
    return accepted_sites(configured_sites(settings.wc_url, settings.wc_webhook_sources), learned)


# --- deliveries refused for their source ---------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    source: str  # as sent; "" when the header was missing
    count: int
    first_at: datetime
    last_at: datetime


def source_name(header: str | None) -> str:
    """The key a refusal is counted under: the header as sent, cut to the column ("" when absent)."""
    return (header or "").strip()[:SOURCE_WIDTH]


def record_refusals(connection: Connection, refusals: Iterable[Refused]) -> None:
    """Add these counts to each source's record, keeping its first and last time."""
    rows = [{"source": r.source, "count": r.count, "first": r.first_at, "last": r.last_at} for r in refusals]
    if not rows:
        return
    connection.execute(
        text(
            """
            INSERT INTO refused_sources (source, refused_count, first_refused_at, last_refused_at)
            VALUES (:source, :count, :first, :last)
            ON CONFLICT (source) DO UPDATE SET
                refused_count = refused_sources.refused_count + EXCLUDED.refused_count,
                first_refused_at = LEAST(refused_sources.first_refused_at, EXCLUDED.first_refused_at),
                last_refused_at = GREATEST(refused_sources.last_refused_at, EXCLUDED.last_refused_at)
            """
        ),
        rows,
    )


def read_refused(connection: Connection, since: datetime) -> list[Refused]:
    """The sources refused at or after `since`, the latest first."""
    rows = connection.execute(
        text(
            "SELECT source, refused_count, first_refused_at, last_refused_at FROM refused_sources"
            " WHERE last_refused_at >= :since ORDER BY last_refused_at DESC, source"
        ),
        {"since": since},
    )
    return [Refused(row.source, row.refused_count, row.first_refused_at, row.last_refused_at) for row in rows]


def needing_person(refused: Iterable[Refused], accepted: AcceptedSites) -> list[Refused]:
    """The refused sources the configuration still refuses: one since added to WC_WEBHOOK_SOURCES
    (or become the shop's home) needs nothing more."""
    return [r for r in refused if not (r.source and accepted.accepts(r.source))]


def recent_refusals(connection: Connection, accepted: AcceptedSites, now: datetime) -> list[Refused]:
    """What `status` and `webhooks status` name: refused within RECENT, and still refused now."""
    return needing_person(read_refused(connection, now - RECENT), accepted)


# What a person does about a refused source, wherever one is named (status, webhooks status, ingest's log).
WHAT_TO_DO = ("A copy of the shop (staging) that kept the webhooks and their secret: on that copy, change its "
              "webhooks' secret or disable them (WooCommerce > Settings > Advanced > Webhooks). "
              "An address of the shop itself: add it to WC_WEBHOOK_SOURCES")
