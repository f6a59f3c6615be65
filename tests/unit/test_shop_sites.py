"""Which X-WC-Webhook-Source is the shop's site (shared/shop_state/sites.py), WC_WEBHOOK_SOURCES, and what ingest
keeps of the sites and of what it refused (services/ingest/sources.py), without a database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.settings import ConfigurationError, load_settings
from services.ingest.sources import MAX_SOURCES, OTHER_SOURCES, SiteCache, SourceRefusals
from shared.shop_state.sites import NO_SOURCE, NOT_THE_SHOP, AcceptedSites, SiteKey, configured_sites, parse_sources, \
    refusal, site_key
from shared.shop_state.site_records import LearnedSite, NoHome, Refused, accepted_sites, home_changed, needing_person, \
    site_from_index

SHOP = "https://shop.example.com"


# -- one site, however it is written ----------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "https://shop.example.com/",             # what WooCommerce sends: home_url('/')
    "https://shop.example.com",              # WordPress's `home` option: no slash
    "http://shop.example.com/",              # the scheme is not compared
    "HTTPS://Shop.Example.COM/",             # nor the case of scheme and host
    "https://shop.example.com:443/",         # a default port written out
    "http://shop.example.com:80",
    "https://shop.example.com:80/",          # 80 and 443 both mean "no port": the scheme is not compared
    "https://shop.example.com./",            # a fully qualified name's final dot
    "https://shop.example.com/?lang=en",     # a query (a language plugin's home_url) is not the site
    "https://shop.example.com/#top",
    "https://user:pw@shop.example.com/",     # user info is not the site
    "  https://shop.example.com/  ",
    "shop.example.com",                      # a bare host, as a person may write one
    "//shop.example.com/",
])
def test_the_same_site_written_differently_is_accepted(source: str) -> None:
    assert configured_sites(SHOP).accepts(source)


@pytest.mark.parametrize("source", [
    "https://staging.shop.example.com/",     # a hosting company's staging copy
    "https://shop.example.com.staging.host/",
    "https://shop.example.org/",
    "https://shop.example.com:8443/",        # another port is another site
    "https://shop.example.com/staging/",     # another path is another site (WordPress in a folder)
    "https://shop.example.com/Shop/",
    "https://example.com/",
    "not a url at all",
    "https://",
    "https://shop.example.com:99999/",       # no such port
    "",
    "   ",
])
def test_another_site_is_not_accepted(source: str) -> None:
    assert not configured_sites(SHOP).accepts(source)


def test_a_site_in_a_folder_compares_its_path_without_the_trailing_slash() -> None:
    sites = configured_sites("https://example.com/shop")
    assert sites.accepts("https://example.com/shop/") and sites.accepts("http://example.com/shop")
    assert sites.accepts("https://example.com/%73hop/")  # percent-encoded, same path
    assert not sites.accepts("https://example.com/") and not sites.accepts("https://example.com/shop/en/")


def test_explicit_ports_other_than_the_defaults_are_compared() -> None:
    sites = configured_sites("http://127.0.0.1:8090")
    assert sites.accepts("http://127.0.0.1:8090/") and sites.accepts("https://127.0.0.1:8090")
    assert not sites.accepts("http://127.0.0.1:8091/") and not sites.accepts("http://127.0.0.1/")


def test_an_international_name_matches_its_punycode() -> None:
    sites = configured_sites("https://bücher.example")
    assert sites.accepts("https://xn--bcher-kva.example/")
    assert sites.accepts("https://BÜCHER.example/")
    assert sites.accepts("https://b%C3%BCcher.example/")
    assert configured_sites("https://xn--bcher-kva.example").accepts("https://bücher.example/")
    assert not sites.accepts("https://bucher.example/")


def test_ipv6_hosts() -> None:
    sites = configured_sites("http://[::1]:8080")
    assert sites.accepts("http://[::1]:8080/") and not sites.accepts("http://[::1]:8081/")
    assert site_key("http://[::1/") is None


def test_site_key_is_host_port_path() -> None:
    assert site_key("https://Shop.Example.com:8443/Store/") == SiteKey("shop.example.com", 8443, "/Store")
    assert site_key("http://shop.example.com") == SiteKey("shop.example.com", None, "")
    assert site_key(None) is None


# -- refusals ------------------------------------------------------------------------------------------


def test_a_missing_or_empty_header_is_refused_naming_it() -> None:
    sites = configured_sites(SHOP)
    assert refusal(None, sites) == NO_SOURCE
    assert refusal(" ", sites) == NO_SOURCE
    assert "X-WC-Webhook-Source" in NO_SOURCE


def test_another_site_is_refused_with_the_reason() -> None:
    sites = configured_sites(SHOP)
    assert refusal("https://staging.shop.example.com/", sites) == NOT_THE_SHOP
    assert refusal(SHOP + "/", sites) is None
    assert "staging" in NOT_THE_SHOP and "WC_WEBHOOK_SOURCES" in NOT_THE_SHOP


def test_nothing_configured_accepts_nothing() -> None:
    assert not configured_sites(None)
    assert refusal(SHOP + "/", configured_sites(None)) == NOT_THE_SHOP


# -- the sites, from the configuration and from the shop ------------------------------------------------


def test_configured_sites_name_where_each_comes_from_and_keep_one_of_each() -> None:
    sites = configured_sites(SHOP, ["https://www.shop.example.com", "http://shop.example.com/", "shop.example.it"])
    assert sites.describe() == ("https://shop.example.com (WC_URL), https://www.shop.example.com (WC_WEBHOOK_SOURCES), "
                                "shop.example.it (WC_WEBHOOK_SOURCES)")
    assert sites.accepts("https://shop.example.it/") and sites.accepts("https://www.shop.example.com/")


def test_the_learned_home_and_url_are_accepted_beside_the_configured_sites() -> None:
    learned = LearnedSite("https://www.shop.example.com", "https://www.shop.example.com/wp", datetime.now(timezone.utc))
    sites = accepted_sites(configured_sites("http://10.0.0.5:8080"), learned)
    assert sites.accepts("https://www.shop.example.com/")       # home_url('/')
    assert sites.accepts("https://www.shop.example.com/wp/")    # siteurl: the same WordPress
    assert sites.accepts("http://10.0.0.5:8080/")               # WC_URL's site: known without the database
    assert not sites.accepts("https://staging.shop.example.com/")
    assert sites.describe().startswith("https://www.shop.example.com (the shop's home)")


def test_the_rest_index_must_name_a_home() -> None:
    now = datetime.now(timezone.utc)
    site = site_from_index({"name": "Shop", "url": "https://shop.example.com", "home": "https://shop.example.com"}, now)
    assert (site.home, site.url, site.read_at) == ("https://shop.example.com", "https://shop.example.com", now)
    assert site_from_index({"home": "https://shop.example.com", "url": 7}, now).url is None
    for index in ({}, {"home": ""}, {"home": None}, {"home": "https://"}, [], "html"):
        with pytest.raises(NoHome):
            site_from_index(index, now)


def test_a_new_home_is_another_site_not_another_spelling() -> None:
    now = datetime.now(timezone.utc)
    before = LearnedSite("http://shop.example.com", None, now)
    assert not home_changed(LearnedSite("https://shop.example.com/", None, now), before)
    assert home_changed(LearnedSite("https://www.shop.example.com", None, now), before)
    assert not home_changed(before, None)  # the first one learned is not a change


def test_refused_sources_the_configuration_accepts_now_need_nobody() -> None:
    now = datetime.now(timezone.utc)
    refused = [Refused("https://staging.shop.example.com/", 3, now, now), Refused("https://www.shop.example.com/", 2, now, now),
               Refused("", 1, now, now)]
    sites = configured_sites(SHOP, ["https://www.shop.example.com"])
    assert [r.source for r in needing_person(refused, sites)] == ["https://staging.shop.example.com/", ""]


# -- WC_WEBHOOK_SOURCES ------------------------------------------------------------------------------


def test_sources_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WC_WEBHOOK_SOURCES", " https://www.shop.example.com/ , shop.example.it,, ")
    assert load_settings().wc_webhook_sources == ["https://www.shop.example.com/", "shop.example.it"]
    monkeypatch.setenv("WC_WEBHOOK_SOURCES", "")
    assert load_settings().wc_webhook_sources == []
    monkeypatch.delenv("WC_WEBHOOK_SOURCES")
    assert load_settings().wc_webhook_sources == []


def test_a_source_that_names_no_site_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WC_WEBHOOK_SOURCES", "https://www.shop.example.com,https://:8080/")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value.code)
    assert "WC_WEBHOOK_SOURCES" in message and "https://:8080/" in message and "\n" not in message


def test_parse_sources() -> None:
    assert parse_sources("a.example,b.example") == ["a.example", "b.example"]
    with pytest.raises(ValueError):
        parse_sources("a.example, http://")


# -- ingest's cache of the sites ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def learned(home: str) -> LearnedSite:
    return LearnedSite(home, None, datetime.now(timezone.utc))


def test_the_learned_home_is_read_again_after_the_refresh_interval_only() -> None:
    clock, reads = Clock(), []
    homes = iter(["https://a.example", "https://b.example"])

    def read() -> LearnedSite:
        reads.append(clock.now)
        return learned(next(homes))

    cache = SiteCache(configured_sites(SHOP), read, refresh=30, retry=5, clock=clock)
    assert cache.current().accepts("https://a.example/") and len(reads) == 1
    clock.now += 29
    assert cache.current().accepts("https://a.example/") and len(reads) == 1
    clock.now += 1
    sites = cache.current()
    assert sites.accepts("https://b.example/") and not sites.accepts("https://a.example/") and len(reads) == 2
    assert sites.accepts(SHOP + "/")


def test_a_failed_read_keeps_what_was_cached_and_is_retried_soon() -> None:
    clock, fail = Clock(), [False]

    def read() -> LearnedSite:
        if fail[0]:
            raise ConnectionError("database down")
        return learned("https://a.example")

    cache = SiteCache(configured_sites(SHOP), read, refresh=30, retry=5, clock=clock)
    assert cache.current().accepts("https://a.example/")
    fail[0] = True
    clock.now += 30
    assert cache.current().accepts("https://a.example/")  # the failed read keeps the cached sites
    fail[0] = False
    clock.now += 4
    assert cache.current().accepts("https://a.example/")
    clock.now += 1  # the retry is due
    assert cache.current().accepts("https://a.example/")


def test_without_any_read_only_the_configured_sites_are_known() -> None:
    clock = Clock()

    def read() -> LearnedSite:
        raise ConnectionError("database down")

    cache = SiteCache(configured_sites(SHOP), read, refresh=30, retry=5, clock=clock)
    assert cache.current() is None
    assert cache.configured.accepts(SHOP + "/")


def test_no_learned_home_yet_means_the_configured_sites() -> None:
    cache = SiteCache(configured_sites(SHOP), lambda: None)
    sites = cache.current()
    assert sites is not None and sites.accepts(SHOP) and len(sites.sites) == 1


# -- what ingest keeps of the refusals --------------------------------------------------------------


class Written:
    def __init__(self) -> None:
        self.batches: list[list[Refused]] = []
        self.fail = False

    def __call__(self, batch: list[Refused]) -> None:
        if self.fail:
            raise ConnectionError("database down")
        self.batches.append(batch)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for batch in self.batches:
            for refused in batch:
                out[refused.source] = out.get(refused.source, 0) + refused.count
        return out


def make_refusals(written: Written, clock: Clock) -> SourceRefusals:
    moment = [datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)]

    def now() -> datetime:
        moment[0] += timedelta(seconds=1)
        return moment[0]

    return SourceRefusals(written, every=60, background=False, clock=clock, now=now)


def test_the_first_refusal_of_a_source_is_written_at_once_then_once_a_minute_with_the_count() -> None:
    written, clock = Written(), Clock()
    refusals = make_refusals(written, clock)
    staging = "https://staging.shop.example.com/"
    refusals.refused(staging)
    assert [(r.source, r.count) for r in refusals.flush()] == [(staging, 1)]
    for _ in range(5):
        refusals.refused(staging)
    clock.now += 59
    assert refusals.flush() == []  # not a minute yet: counted, not written
    clock.now += 1
    [batch] = [refusals.flush()]
    assert [(r.source, r.count) for r in batch] == [(staging, 5)]
    assert batch[0].first_at < batch[0].last_at
    assert written.counts() == {staging: 6} and len(written.batches) == 2


def test_sources_are_counted_apart_and_a_missing_header_under_its_own_name() -> None:
    written, clock = Written(), Clock()
    refusals = make_refusals(written, clock)
    refusals.refused("https://a.example/")
    refusals.refused(None)
    refusals.refused("https://a.example/")
    refusals.flush()
    assert written.counts() == {"https://a.example/": 2, "": 1}


def test_a_failed_write_keeps_the_counts_for_the_next_one() -> None:
    written, clock = Written(), Clock()
    refusals = make_refusals(written, clock)
    written.fail = True
    refusals.refused("https://a.example/")
    refusals.refused("https://a.example/")
    refusals.flush()
    refusals.refused("https://a.example/")
    written.fail = False
    clock.now += 60
    [refused] = refusals.flush()
    assert refused.count == 3 and refused.first_at < refused.last_at
    assert written.counts() == {"https://a.example/": 3}


def test_close_writes_what_is_still_counted() -> None:
    written, clock = Written(), Clock()
    refusals = make_refusals(written, clock)
    refusals.refused("https://a.example/")
    refusals.flush()
    refusals.refused("https://a.example/")
    refusals.close()
    assert written.counts() == {"https://a.example/": 2}


def test_a_flood_of_distinct_sources_is_counted_in_bounded_memory() -> None:
    written, clock = Written(), Clock()
    refusals = make_refusals(written, clock)
    for n in range(MAX_SOURCES + 50):
        refusals.refused(f"https://copy-{n}.example/")
    refusals.flush()
    counts = written.counts()
    assert len(counts) == MAX_SOURCES + 1 and counts[OTHER_SOURCES] == 50


def test_a_long_source_is_cut_to_the_column() -> None:
    written, clock = Written(), Clock()
    refusals = make_refusals(written, clock)
    refusals.refused("https://" + "x" * 500 + ".example/")
    refusals.flush()
    [name] = written.counts()
    assert len(name) == 200


def test_accepted_sites_is_falsy_only_when_empty() -> None:
    assert not AcceptedSites() and configured_sites(SHOP)
