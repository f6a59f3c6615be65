"""Prometheus metrics of the webhook receiver (GET /metrics).

Ingest runs several worker processes: with PROMETHEUS_MULTIPROC_DIR set
(services/ingest/metrics_directory.py) every process writes its counts to
files there and render() adds up the files of all of them.
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector

# Every answer POST /webhooks/woocommerce can give, by what it meant.
OUTCOMES = (
    "ping",                  # 200: WooCommerce's ping when a webhook is saved
    "published",             # 200: every message confirmed by RabbitMQ
    "ignored",               # 200: nothing to do (draft, an order without supplier lines)
    "other_topic",           # 202: a topic that is not an order event
    "invalid",               # 400: not JSON, or not an order resource
    "unauthorized",          # 401: missing or wrong signature
    "wrong_source",          # 403: signed, but not from the shop's site (a staging copy), or no source header
    "too_large",             # 413: body over the limit
    "broker_unavailable",    # 503: RabbitMQ unreachable or did not confirm
    "database_unavailable",  # 503: PostgreSQL unreachable
    "error",                 # 500: a bug
)

# The topic header is not signed: a label taken from it as sent would let one signed
# body, resent under many invented topics, create as many series. Only WooCommerce's
# own topics get a series of their own; anything else counts as "other".
KNOWN_TOPICS = frozenset(
    f"{resource}.{event}"
    for resource in ("coupon", "customer", "order", "product")
    for event in ("created", "updated", "deleted", "restored")
)
OTHER_TOPIC = "other"


def topic_label(topic: str) -> str:
    return topic if topic in KNOWN_TOPICS else OTHER_TOPIC


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if not self.multiprocess:  # process figures of whichever worker answered would mislead
            ProcessCollector(registry=self.registry)
        self.webhooks = Counter(
            "rewix_ingest_webhooks",
            "Webhook deliveries received, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.other_topics = Counter(
            "rewix_ingest_other_topics",
            "Signed deliveries of a topic other than the order events, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.messages = Counter(
            "rewix_ingest_messages_published",
            "Order-line messages confirmed by RabbitMQ.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "rewix_ingest_webhook_duration_seconds",
            "Time from a webhook's arrival to its answer.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.webhooks.labels(outcome=outcome)

    def observe(self, outcome: str, seconds: float, published: int = 0) -> None:
        self.webhooks.labels(outcome=outcome).inc()
        self.latency.observe(seconds)
        if published:
            self.messages.inc(published)

    def other_topic(self, topic: str) -> None:
        self.other_topics.labels(topic=topic_label(topic)).inc()

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker)
            return generate_latest(every_worker), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
