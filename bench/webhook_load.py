"""Posting signed webhooks at a receiver: as fast as it answers, or at a fixed rate.

The senders use http.client on keep-alive connections (one per thread): its
cost per request is a fraction of what requests' costs, so on a small machine
the load generator takes less of the CPU the receiver is measured on.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.burst import SHOP_URL

USER_AGENT = "WooCommerce/9.9.0 Hookshot (WordPress/6.8)"
TIMEOUT_SECONDS = 30.0

# (order_id, body, signature)
Webhook = tuple[int, bytes, str]


@dataclass
class Answer:
    order_id: int
    sent_at: float  # when it was (due to be) sent, time.time()
    answered_at: float
    status: int
    messages: int | None


class _Sender:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, url: str, topic: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path.rstrip("/") + "/webhooks/woocommerce"
        self.topic = topic
        self.connection: http.client.HTTPConnection | None = None

    def post(self, webhook: Webhook) -> tuple[int, int | None]:
        order_id, body, signature = webhook
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": SHOP_URL + "/",  # home_url('/') of the shop ingest's WC_URL names
            "X-WC-Webhook-Topic": self.topic,
            "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": self.topic.split(".", 1)[1],
            "X-WC-Webhook-Signature": signature,
            "X-WC-Webhook-ID": "7",
            "X-WC-Webhook-Delivery-ID": f"bench-{order_id}",
        }
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
            self.connection.request("POST", self.path, body=body, headers=headers)
            response = self.connection.getresponse()
            payload = response.read()
            if response.will_close:
                self.close()
            return response.status, _messages_of(payload)
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _messages_of(payload: bytes) -> int | None:
    try:
        return int(json.loads(payload).get("messages"))
    except (ValueError, TypeError, AttributeError):
        return None


def send_burst(url: str, webhooks: list[Webhook], senders: int, topic: str = "order.created") -> list[Answer]:
    """Post every webhook from `senders` threads, each sending its next one as soon as it has an answer."""
    return _send(url, webhooks, senders, topic, schedule=None)


def send_paced(url: str, webhooks: list[Webhook], rate: float, senders: int,
               topic: str = "order.created") -> list[Answer]:
    """Post the webhooks at `rate` per second (open loop).

    Each answer's time counts from when its webhook was due, not from when a
    sender got to it: a receiver that falls behind is charged for the queue.
    """
    start = time.time() + 0.2
    schedule = iter([start + n / rate for n in range(len(webhooks))])
    return _send(url, webhooks, senders, topic, schedule=schedule)


def _send(url: str, webhooks: list[Webhook], senders: int, topic: str,
          schedule: Iterator[float] | None) -> list[Answer]:
    local = threading.local()
    lock = threading.Lock()
    items = iter(webhooks)
    answers: list[Answer] = []

    def worker() -> list[Answer]:
        sender = local.sender = _Sender(url, topic)
        mine: list[Answer] = []
        try:
            while True:
                with lock:  # the webhook and its due time, taken together
                    webhook = next(items, None)
                    due = next(schedule) if schedule is not None and webhook is not None else None
                if webhook is None:
                    return mine
                if due is not None:
                    delay = due - time.time()
                    if delay > 0:
                        time.sleep(delay)
                sent = due if due is not None else time.time()
                status, messages = sender.post(webhook)
                mine.append(Answer(webhook[0], sent, time.time(), status, messages))
        finally:
            sender.close()

    with ThreadPoolExecutor(max_workers=senders, thread_name_prefix="sender") as pool:
        for result in [pool.submit(worker) for _ in range(senders)]:
            answers.extend(result.result())
    answers.sort(key=lambda a: a.sent_at)
    return answers
