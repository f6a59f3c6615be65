"""The orders a page at a time, on the operator page (headless Chromium) and in `rewix-sync orders`.

130 orders: pagination newest first (50 a page), each filter, the search by
order number, the health panel, the links to each order's admin page for both
of WooCommerce's order storages, and the reservations table whole on every page.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from shared.db import normalise_url
from tests.integration.test_admin_views import WC_URL, cli_env, run
from tests.integration.web_process import TOKEN, Pages, headless_browser, new_page

ORDERS = 130
SHORT = {7, 64, 101}            # a line the supplier could not lock in full
FAILED_AT_SUPPLIER = {33}       # sent, and the supplier says Failed (2001)
ERRORED = {90}                  # an error recorded on the order
PROCESSING = set(range(10, 131, 10))


def seed(database_url: str) -> None:
    """Orders 1..130, one line each (stock 5000 + id), on-hold unless PROCESSING; sent when processing."""
    engine = create_engine(normalise_url(database_url))
    with engine.begin() as c:
        for order_id in range(1, ORDERS + 1):
            status = "processing" if order_id in PROCESSING else "on-hold"
            c.execute(text("INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids, "
                           "last_error) VALUES (:id, :number, :status, false, '', '[1]', :error)"),
                      {"id": order_id, "number": str(order_id), "status": status,
                       "error": "shop note failed" if order_id in ERRORED else None})
            line_state = "short" if order_id in SHORT else ("sent" if order_id in PROCESSING else "locked")
            c.execute(text("INSERT INTO order_lines (order_id, line_id, product_id, variation_id, stock_id, quantity, "
                           "removed, sync_status) VALUES (:id, 1, 77, 0, :stock, 1, false, :state)"),
                      {"id": order_id, "stock": 5000 + order_id, "state": line_state})
            if order_id in PROCESSING or order_id in FAILED_AT_SUPPLIER:
                failed = order_id in FAILED_AT_SUPPLIER
                c.execute(text("INSERT INTO supplier_orders (shop_order_id, key, supplier_order_id, status, final, "
                               "cancelled_in_shop) VALUES (:id, :key, :sid, :status, :final, false)"),
                          {"id": order_id, "key": str(order_id), "sid": 90000 + order_id,
                           "status": 2001 if failed else 5, "final": failed})
    engine.dispose()


def numbers(result_output: str) -> list[int]:
    return [row["order_id"] for row in json.loads(result_output)]


# --- the command line ------------------------------------------------------------------------------


def test_orders_command_filters_and_limits(db: str) -> None:
    seed(db)
    env = cli_env(db)
    everything = run(["orders", "--json"], env)
    assert everything.exit_code == 0 and numbers(everything.output) == list(range(ORDERS, 0, -1))
    assert numbers(run(["orders", "--json", "--limit", "50"], env).output) == list(range(ORDERS, 80, -1))
    assert numbers(run(["orders", "--json", "--attention"], env).output) == sorted(SHORT | FAILED_AT_SUPPLIER | ERRORED,
                                                                                     reverse=True)
    assert numbers(run(["orders", "--json", "--shop-status", "processing"], env).output) == sorted(PROCESSING,
                                                                                                    reverse=True)
    assert numbers(run(["orders", "--json", "--sync-state", "short"], env).output) == sorted(SHORT, reverse=True)
    assert numbers(run(["orders", "--json", "--search", "12"], env).output) == [129, 128, 127, 126, 125, 124, 123,
                                                                                 122, 121, 120, 12]
    assert numbers(run(["orders", "--json", "--search", "#57"], env).output) == [57]
    both = run(["orders", "--json", "--shop-status", "on-hold", "--sync-state", "short", "--limit", "2"], env)
    assert numbers(both.output) == [101, 64]
    table = run(["orders", "--search", "999"], env)
    assert table.exit_code == 0 and table.output.strip() == "no order matches"
    bad = run(["orders", "--sync-state", "nonsense"], env)
    assert bad.exit_code == 2


# --- the page, in a browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with headless_browser() as chromium:  # one Chromium for the module; each test has a page of its own
        yield chromium


@pytest.fixture
def browser_page(db: str, broker: str, request, pages: Pages, browser) -> Iterator:
    seed(db)
    storage = getattr(request, "param", "posts")
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN, WC_ORDER_STORAGE=storage)
    with new_page(browser) as page:
        page.goto(web.url + "/")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("#orders table")
        yield page, web.url


def shown(page) -> list[int]:
    """The order ids in the orders table, top to bottom, read from each row's link to the shop."""
    hrefs = page.eval_on_selector_all("#orders tbody tr td:first-child a", "links => links.map(a => a.href)")
    return [int(re.search(r"(?:post|id)=(\d+)", href).group(1)) for href in hrefs]


@pytest.mark.browser
def test_page_pages_through_the_orders_newest_first_and_keeps_the_reservations_whole(browser_page) -> None:
    page, _ = browser_page
    assert shown(page) == list(range(130, 80, -1))
    assert "page 1 of 3 (130 orders, 50 a page)" in page.inner_text(".pages")
    assert page.locator(".pages a[rel=prev]").count() == 0
    # Every held line is in the reservations table, not just this page's orders.
    held = page.locator("#reservations tbody tr").count()
    assert held == ORDERS - len(PROCESSING) - len(FAILED_AT_SUPPLIER)

    page.click(".pages a[rel=next]")
    page.wait_for_selector("text=page 2 of 3")
    assert shown(page) == list(range(80, 30, -1))
    assert page.locator("#reservations tbody tr").count() == held
    page.click(".pages a[rel=next]")
    page.wait_for_selector("text=page 3 of 3")
    assert shown(page) == list(range(30, 0, -1))
    assert page.locator(".pages a[rel=next]").count() == 0
    page.click(".pages a[rel=prev]")
    page.wait_for_selector("text=page 2 of 3")
    assert shown(page)[0] == 80


@pytest.mark.browser
def test_each_filter_and_the_search(browser_page) -> None:
    page, url = browser_page

    def apply(action) -> list[int]:
        page.goto(url + "/")
        action()
        page.click("#order-filters button[type=submit]")
        page.wait_for_load_state("load")
        return shown(page)

    assert apply(lambda: page.check("#order-filters input[name=attention]")) == \
        sorted(SHORT | FAILED_AT_SUPPLIER | ERRORED, reverse=True)
    assert "5 orders matching" in page.inner_text(".pages")
    assert apply(lambda: page.select_option("#order-filters select[name=shop_status]", "processing")) == \
        sorted(PROCESSING, reverse=True)
    assert apply(lambda: page.select_option("#order-filters select[name=sync_state]", "short")) == \
        sorted(SHORT, reverse=True)
    assert apply(lambda: page.fill("#order-filters input[name=q]", "57")) == [57]
    assert apply(lambda: page.fill("#order-filters input[name=q]", "12")) == [129, 128, 127, 126, 125, 124, 123,
                                                                              122, 121, 120, 12]

    # Filters combine, and survive paging.
    page.goto(url + "/")
    page.select_option("#order-filters select[name=shop_status]", "on-hold")
    page.click("#order-filters button[type=submit]")
    page.wait_for_load_state("load")
    on_hold = sorted(set(range(1, 131)) - PROCESSING, reverse=True)
    assert shown(page) == on_hold[:50]
    page.click(".pages a[rel=next]")
    page.wait_for_selector("text=page 2 of 3")
    assert shown(page) == on_hold[50:100]
    assert page.input_value("#order-filters select[name=shop_status]") == "on-hold"

    page.goto(url + "/?q=9999")
    assert page.locator("#orders tbody tr").count() == 0
    assert "No order matches." in page.inner_text("#orders")


@pytest.mark.browser
def test_health_panel_shows_what_status_shows(browser_page) -> None:
    page, _ = browser_page
    parts = page.locator("#health tbody tr")
    names = [parts.nth(i).get_attribute("data-part") for i in range(parts.count())]
    for name in ("database", "RabbitMQ", "ingest", "supplier account", "shop", "webhooks", "catch-up",
                 "verification", "dead letters", "short lines", "orders to send"):
        assert name in names
    assert "ok" in page.inner_text('#health tr[data-part="database"]')
    # No supplier credentials in this environment, and no worker runs: a person must act.
    assert "ACT" in page.inner_text('#health tr[data-part="supplier account"]')
    assert "nothing consumes rewix.order_lines" in page.inner_text('#health tr[data-part="supplier_sync"]')
    assert "3 the supplier could not lock in full" in page.inner_text('#health tr[data-part="short lines"]')
    assert "Something needs a person" in page.inner_text("#health")


@pytest.mark.browser
@pytest.mark.parametrize("browser_page", ["posts", "hpos"], indirect=True)
def test_each_order_links_to_its_admin_page(browser_page) -> None:
    page, _ = browser_page
    hrefs = page.eval_on_selector_all("#orders tbody tr td:first-child a", "links => links.map(a => a.href)")
    assert len(hrefs) == 50
    storage_hpos = "wc-orders" in hrefs[0]
    for order_id, href in zip(range(130, 80, -1), hrefs):
        if storage_hpos:
            assert href == f"{WC_URL}/wp-admin/admin.php?page=wc-orders&action=edit&id={order_id}"
        else:
            assert href == f"{WC_URL}/wp-admin/post.php?post={order_id}&action=edit"
    reservation_links = page.eval_on_selector_all("#reservations tbody a", "links => links.map(a => a.href)")
    assert reservation_links and all(("wc-orders" in h) == storage_hpos for h in reservation_links)
