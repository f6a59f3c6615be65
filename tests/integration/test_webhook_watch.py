"""status_poller's webhook check against the shop simulator and the database, in this process."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from shared.clients.shop import WooCommerceClient
from shared.clients.shop.webhooks import ORDER_TOPICS, webhook_name
from shared.db import normalise_url
from shared.observability.metrics import REGISTRY
from shared.shop_state.webhooks import read_records
from services.status_poller import store
from services.status_poller.shop_watch.webhook_watch import WebhookWatch
from simulators.shop import ShopSimulator, start_in_thread

KEY, SECRET = "ck_watch", "cs_watch"
# Nothing needs to listen there: these tests create no orders, and a failed ping changes nothing.
URL = "http://127.0.0.1:9/webhooks/woocommerce"


@pytest.fixture
def shop() -> Iterator[ShopSimulator]:
    with start_in_thread(consumer_key=KEY, consumer_secret=SECRET) as simulator:
        yield simulator


@pytest.fixture
def engine(db: str) -> Iterator:
    engine = create_engine(normalise_url(db))
    yield engine
    engine.dispose()


def watch(db: str, shop: ShopSimulator, **kwargs) -> WebhookWatch:
    return WebhookWatch(db, WooCommerceClient(shop.url, KEY, SECRET, timeout=5), URL, 60, **kwargs)


def install(shop: ShopSimulator) -> dict[str, int]:
    return {topic: shop.webhooks.create(name=webhook_name(topic), topic=topic, delivery_url=URL, secret="s" * 32)["id"]
            for topic in ORDER_TOPICS}


def reactivated_metric(topic: str) -> float:
    return REGISTRY.get_sample_value("rewix_shop_webhooks_reactivated_total", {"topic": topic}) or 0.0


def records_of(engine) -> dict:
    with engine.connect() as conn:
        return read_records(conn)


def rewind(engine) -> datetime | None:
    found = store.get_rewind(engine)
    return found[0] if found else None


def test_a_disabled_or_paused_webhook_of_ours_is_reactivated_recorded_and_rewound(db: str, engine,
                                                                                   shop: ShopSimulator) -> None:
    ids = install(shop)
    others = shop.webhooks.create(name="CRM", topic="order.created", delivery_url="https://crm.example.com/x",
                                  secret="crm")
    woken = threading.Event()
    check = watch(db, shop, on_reactivated=woken.set)

    first = check.run_once()
    assert (first.checked, first.reactivated, first.missing) == (4, [], [])
    seen = records_of(engine)
    assert set(seen) == set(ids.values()) and all(r.status == "active" for r in seen.values())
    active_at = seen[ids["order.updated"]].last_seen_active_at
    assert active_at is not None and rewind(engine) is None and not woken.is_set()

    shop.webhooks.admin_edit(ids["order.updated"], status="disabled", failure_count=6)
    shop.webhooks.admin_edit(ids["order.deleted"], status="paused")
    shop.webhooks.admin_edit(others["id"], status="disabled")
    before = reactivated_metric("order.updated")

    second = check.run_once()
    assert sorted(second.reactivated) == ["order.deleted", "order.updated"]
    assert {h["id"]: h["status"] for h in shop.webhooks.inside()} == {**{i: "active" for i in ids.values()},
                                                                      others["id"]: "disabled"}
    # WooCommerce keeps counting: re-activation does not reset the failures.
    assert shop.webhooks.inside(ids["order.updated"])[0]["failure_count"] == 6
    records = records_of(engine)
    updated = records[ids["order.updated"]]
    assert (updated.reactivated_count, updated.last_found_status, updated.status) == (1, "disabled", "active")
    assert updated.last_off_since == active_at and updated.last_reactivated_at > active_at
    assert records[ids["order.deleted"]].last_found_status == "paused"
    assert others["id"] not in records
    assert rewind(engine) == active_at and woken.is_set()
    assert reactivated_metric("order.updated") == before + 1

    third = check.run_once()
    assert third.reactivated == [] and records_of(engine)[ids["order.updated"]].reactivated_count == 1


def test_a_missing_topic_is_reported_not_created(db: str, engine, shop: ShopSimulator) -> None:
    ids = install(shop)
    shop.webhooks.delete(ids["order.restored"])
    done = watch(db, shop).run_once()
    assert done.missing == ["order.restored"] and done.checked == 3
    assert "order.restored" not in {h["topic"] for h in shop.webhooks.inside()}
    assert ids["order.restored"] not in records_of(engine)


def test_one_never_seen_active_is_caught_up_from_its_creation(db: str, engine, shop: ShopSimulator) -> None:
    ids = install(shop)
    shop.webhooks.admin_edit(ids["order.created"], status="disabled")
    created = datetime.fromisoformat(shop.webhooks.get(ids["order.created"])["date_created_gmt"]).replace(
        tzinfo=timezone.utc)
    assert watch(db, shop).run_once().reactivated == ["order.created"]
    assert rewind(engine) == created
    # An earlier rewind already asked for stays: the earliest wins.
    with engine.begin() as conn:
        store.request_rewind(conn, created - timedelta(hours=1))
        store.request_rewind(conn, created + timedelta(hours=1))
    assert rewind(engine) == created - timedelta(hours=1)


def test_several_replicas_reactivate_a_webhook_once(db: str, engine, shop: ShopSimulator) -> None:
    ids = install(shop)
    for round_ in range(5):
        shop.webhooks.admin_edit(ids["order.created"], status="disabled")
        checks = [watch(db, shop) for _ in range(4)]
        barrier = threading.Barrier(len(checks))
        results = []

        def run(check: WebhookWatch) -> None:
            barrier.wait()
            results.append(check.run_once())

        threads = [threading.Thread(target=run, args=(c,)) for c in checks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(results) == 4
        assert sum(len(r.reactivated) for r in results) == 1, results
        assert records_of(engine)[ids["order.created"]].reactivated_count == round_ + 1


def test_the_check_is_off_for_other_urls_and_asks_with_the_signed_client(db: str, engine,
                                                                          shop: ShopSimulator) -> None:
    install(shop)
    elsewhere = WebhookWatch(db, WooCommerceClient(shop.url, KEY, SECRET), "https://other.example.com/hook", 60)
    assert elsewhere.run_once().missing == list(ORDER_TOPICS)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM shop_webhooks")).scalar() == 0


def test_the_catch_up_reads_again_from_a_requested_rewind_once(db: str, broker: str, engine,
                                                                shop: ShopSimulator) -> None:
    from shared.messaging.amqp import Publisher
    from shared.orders.intake import OrderIntake
    from services.status_poller.shop_watch.catchup import OVERLAP, ShopCatchUp

    go_live = datetime.now(timezone.utc) - timedelta(hours=2)
    client = WooCommerceClient(shop.url, KEY, SECRET, timeout=5)
    publisher = Publisher(broker)
    try:
        catchup = ShopCatchUp(db, client, OrderIntake(db, publisher), 60, go_live_at=go_live)
        store.set_watermark(engine, datetime.now(timezone.utc))
        assert catchup.run_once().since > datetime.now(timezone.utc) - timedelta(minutes=5)
        off_since = datetime.now(timezone.utc) - timedelta(minutes=30)
        with engine.begin() as conn:
            store.request_rewind(conn, off_since)
        assert catchup.run_once().since == off_since - OVERLAP
        assert rewind(engine) is None  # done: the next pass goes on from the watermark
        assert catchup.run_once().since > off_since
        # Never before going live, however far back the webhook was off.
        with engine.begin() as conn:
            store.request_rewind(conn, go_live - timedelta(days=3))
        assert catchup.run_once().since == go_live.replace(microsecond=0) - timedelta(seconds=1)
    finally:
        publisher.close()
