"""Whether a webhook delivery comes from the shop's own site (pure: no I/O).

WooCommerce sends `X-WC-Webhook-Source: home_url('/')` with every delivery
(WC_Webhook::deliver, since 2.6; never with a ping). A hosting "staging" copy
of the shop keeps the webhooks and their secret, so its deliveries are signed
like the shop's own and carry the live order ids: this header is what tells
them apart.

Two addresses are the same site when their host, port and path agree:

- the host case-insensitively, an internationalised name as its ASCII
  (punycode) form, percent-escapes decoded, a final dot dropped;
- the port only when it is not 80 or 443: the scheme is not compared (a shop
  reached over http and https is one site), so neither are its default ports;
- the path percent-decoded, without its trailing slash (case-sensitive, as
  WordPress's paths are).

The scheme, user info, query and fragment are not compared: `home_url('/')`
carries none of the last three, and a shop moved to https is the same shop.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SOURCE_HEADER = "X-WC-Webhook-Source"
# The ports a site is reached on when its address names none (http, https).
DEFAULT_PORTS = frozenset({80, 443})


@dataclass(frozen=True, order=True)
class SiteKey:
    """What identifies a site: compare these, never the addresses as written."""

    host: str
    port: int | None
    path: str


def site_key(address: str | None) -> SiteKey | None:
    """The site `address` names, or None when it names none (empty, no host, a bad port).

    A bare `host[:port][/path]` (as a person may write it in WC_WEBHOOK_SOURCES) is read as an address too.
    """
    text = (address or "").strip()
    if not text:
        return None
    if "://" not in text:
        text = "//" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname  # lower-cased, without the user info and an IPv6 address's brackets
    except ValueError:  # a port that is not a number, or out of range; a broken IPv6 literal
        return None
    if not host:
        return None
    host = _ascii_host(unquote(host).rstrip("."))
    if not host:
        return None
    return SiteKey(host, None if port in DEFAULT_PORTS else port, unquote(parts.path).rstrip("/"))


def _ascii_host(host: str) -> str:
    if host.isascii():
        return host.lower()
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:  # not a valid international name: compared as written, lower-cased
        return host.lower()


@dataclass(frozen=True)
class Site:
    """One address whose deliveries are the shop's own, and where the system got it from."""

    address: str
    origin: str  # for people: "the shop's home", "WC_URL", "WC_WEBHOOK_SOURCES"
    key: SiteKey


class AcceptedSites:
    """The sites a delivery may come from; compares by SiteKey."""

    def __init__(self, sites: Iterable[Site] = ()) -> None:
        self.sites: tuple[Site, ...] = tuple(sites)
        self._keys = frozenset(site.key for site in self.sites)

    def accepts(self, source: str | None) -> bool:
        key = site_key(source)
        return key is not None and key in self._keys

    def with_sites(self, more: Iterable[Site]) -> AcceptedSites:
        """These sites and `more`, an address already here kept once (under its first origin)."""
        sites = list(self.sites)
        seen = set(self._keys)
        for site in more:
            if site.key not in seen:
                seen.add(site.key)
                sites.append(site)
        return AcceptedSites(sites)

    def describe(self) -> str:
        """`https://shop.example.com (the shop's home), https://www.example.com (WC_WEBHOOK_SOURCES)`."""
        return ", ".join(f"{site.address} ({site.origin})" for site in self.sites) or "none"

    def __bool__(self) -> bool:
        return bool(self.sites)

    def __repr__(self) -> str:
        return f"AcceptedSites({self.describe()})"


def sites_from(addresses: Iterable[str | None], origin: str) -> list[Site]:
    """A Site for each address that names one (the others are left out)."""
    out = []
    for address in addresses:
        key = site_key(address)
        if key is not None and address is not None:
            out.append(Site(address.strip(), origin, key))
    return out


def configured_sites(wc_url: str | None, extra_sources: Iterable[str] = ()) -> AcceptedSites:
    """The sites the configuration names: WC_URL's and every one of WC_WEBHOOK_SOURCES."""
    return AcceptedSites(sites_from([wc_url], "WC_URL")).with_sites(sites_from(extra_sources, "WC_WEBHOOK_SOURCES"))


def parse_sources(text: str) -> list[str]:
    """WC_WEBHOOK_SOURCES: comma-separated addresses; ValueError naming the first that names no site."""
    sources = [part.strip() for part in text.split(",") if part.strip()]
    for source in sources:
        if site_key(source) is None:
            raise ValueError(f"{source!r} is not a site address (like https://www.example.com/)")
    return sources


# Why a signed delivery is refused, as its 403 says it (the source is given beside it).
NO_SOURCE = (f"no {SOURCE_HEADER} header: WooCommerce sends the shop's address with every delivery, so this "
             "did not come from the shop's WooCommerce")
NOT_THE_SHOP = (f"{SOURCE_HEADER} is not the shop's site: a copy of the shop (a staging site) that kept the "
                "webhooks and their secret, or a second address of the shop missing from WC_WEBHOOK_SOURCES")


def refusal(source: str | None, accepted: AcceptedSites) -> str | None:
    """Why a signed delivery from `source` (the header as sent, None when absent) is refused; None: it is not."""
    if source is None or not source.strip():
        return NO_SOURCE
    return None if accepted.accepts(source) else NOT_THE_SHOP
