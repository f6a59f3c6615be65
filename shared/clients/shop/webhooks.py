"""The shop's webhooks that belong to this system: which they are, and what `webhooks install` must do.

The system owns one webhook per order topic, delivering to its ingest URL
(WC_WEBHOOK_DELIVERY_URL). It knows its own by that URL; `install` also
recognises one by the name it gives them, so a webhook whose URL was changed
by hand is repaired rather than doubled. Nothing here talks to the shop.

What WooCommerce does that shapes this (docs/woocommerce.md §1.4-1.5): a
created webhook is always active and is pinged at once; no answer ever shows
a webhook's secret, so install cannot tell a wrong one from a right one and
sets it on every webhook it keeps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.orders.vocabulary import ORDER_TOPICS

INACTIVE = ("disabled", "paused")


def webhook_name(topic: str) -> str:
    """What a person sees in WooCommerce > Settings > Advanced > Webhooks."""
    return f"rewix-sync: {topic.replace('.', ' ')} (do not delete: orders reach the supplier through it)"


def same_url(a: Any, b: Any) -> bool:
    """Equal once the scheme and host are lower-cased and a trailing slash is dropped."""
    return isinstance(a, str) and isinstance(b, str) and _normal(a) == _normal(b)


def _normal(url: str) -> str:
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


def ours(webhooks: list[dict[str, Any]], delivery_url: str) -> list[dict[str, Any]]:
    """The webhooks that deliver to this system, by id."""
    return sorted((w for w in webhooks if same_url(w.get("delivery_url"), delivery_url)), key=lambda w: w["id"])


def missing_topics(mine: list[dict[str, Any]]) -> list[str]:
    """Order topics that no webhook of ours covers."""
    present = {w.get("topic") for w in mine}
    return [topic for topic in ORDER_TOPICS if topic not in present]


@dataclass
class InstallStep:
    """What install does for one topic: create a webhook, or update `webhook_id` with `changes`."""

    topic: str
    webhook_id: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    # What was wrong with the existing webhook, for the operator ("status paused", "delivery URL ...").
    repairs: list[str] = field(default_factory=list)
    # Other webhooks of ours for the same topic, left alone and reported.
    duplicates: list[int] = field(default_factory=list)

    @property
    def creates(self) -> bool:
        return self.webhook_id is None


def plan_install(existing: list[dict[str, Any]], delivery_url: str, secret: str) -> list[InstallStep]:
    """One step per order topic. An existing webhook of the topic is ours when it delivers to
    `delivery_url` or carries our name; the first of them (an active one delivering to the URL
    first, then the lowest id) is kept and repaired: status active, our URL, our name, the secret."""
    steps = []
    for topic in ORDER_TOPICS:
        name = webhook_name(topic)
        candidates = [w for w in existing if w.get("topic") == topic
                      and (same_url(w.get("delivery_url"), delivery_url) or w.get("name") == name)]
        if not candidates:
            steps.append(InstallStep(topic, changes={"name": name, "topic": topic, "delivery_url": delivery_url,
                                                     "secret": secret}))
            continue
        candidates.sort(key=lambda w: (not same_url(w.get("delivery_url"), delivery_url),
                                       w.get("status") != "active", w["id"]))
        keep, others = candidates[0], candidates[1:]
        step = InstallStep(topic, webhook_id=keep["id"], changes={"secret": secret},
                           duplicates=[w["id"] for w in others if same_url(w.get("delivery_url"), delivery_url)])
        if keep.get("status") != "active":
            step.changes["status"] = "active"
            step.repairs.append(f"status {keep.get('status')}")
        if not same_url(keep.get("delivery_url"), delivery_url):
            step.changes["delivery_url"] = delivery_url
            step.repairs.append(f"delivered to {keep.get('delivery_url')}")
        if keep.get("name") != name:
            step.changes["name"] = name
        steps.append(step)
    return steps
