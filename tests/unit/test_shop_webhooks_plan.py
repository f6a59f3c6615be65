"""Which of the shop's webhooks are the system's, and what `webhooks install` plans for them (no services)."""
from __future__ import annotations

from shared.clients.shop.webhooks import ORDER_TOPICS, missing_topics, ours, plan_install, same_url, webhook_name
from shared.observability import metrics

URL = "https://sync.example.com/webhooks/woocommerce"
SECRET = "S" * 40


def hook(id_: int, topic: str, url: str = URL, status: str = "active", name: str | None = None) -> dict:
    return {"id": id_, "topic": topic, "delivery_url": url, "status": status, "name": name or webhook_name(topic)}


def test_urls_compare_without_case_of_host_or_trailing_slash() -> None:
    assert same_url("HTTPS://Sync.Example.com/webhooks/woocommerce/", URL)
    assert not same_url("https://sync.example.com/webhooks/other", URL)
    assert not same_url(None, URL)


def test_nothing_there_plans_four_creations_with_name_url_and_secret() -> None:
    steps = plan_install([], URL, SECRET)
    assert [s.topic for s in steps] == list(ORDER_TOPICS) and all(s.creates for s in steps)
    assert steps[0].changes == {"name": webhook_name("order.created"), "topic": "order.created",
                                "delivery_url": URL, "secret": SECRET}


def test_existing_ones_are_kept_set_right_and_duplicates_reported() -> None:
    existing = [
        hook(11, "order.created"),
        hook(12, "order.updated", status="disabled"),
        hook(13, "order.deleted", url="https://old.example.com/x"),  # recognised by its name
        hook(14, "order.restored", status="paused"), hook(15, "order.restored"),  # two: the active one is kept
        hook(16, "order.created", url="https://crm.example.com/x", name="CRM"),  # not ours
    ]
    created, updated, deleted, restored = plan_install(existing, URL, SECRET)
    assert (created.webhook_id, created.changes, created.repairs) == (11, {"secret": SECRET}, [])
    assert (updated.webhook_id, updated.changes["status"], updated.repairs) == (12, "active", ["status disabled"])
    assert (deleted.webhook_id, deleted.changes["delivery_url"]) == (13, URL)
    assert deleted.repairs == ["delivered to https://old.example.com/x"]
    assert (restored.webhook_id, restored.duplicates, "status" in restored.changes) == (15, [14], False)


def test_ours_and_missing_go_by_the_delivery_url() -> None:
    mine = ours([hook(12, "order.updated"), hook(11, "order.created"),
                 hook(13, "order.deleted", url="https://elsewhere.example.com/")], URL)
    assert [w["id"] for w in mine] == [11, 12]
    assert missing_topics(mine) == ["order.deleted", "order.restored"]


def test_the_reactivated_counter_serves_every_topic_the_system_installs_from_the_start() -> None:
    # The alert on re-activated webhooks compares per topic: each must exist before the first re-activation.
    served = {topic: metrics.REGISTRY.get_sample_value("rewix_shop_webhooks_reactivated_total", {"topic": topic})
              for topic in ORDER_TOPICS}
    assert None not in served.values(), served
    assert set(served) == {"order.created", "order.updated", "order.deleted", "order.restored"}
