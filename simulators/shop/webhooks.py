"""The shop's order webhook, delivered the way WooCommerce delivers it (docs/woocommerce.md §1-2).

One webhook (id 7) for the order topics. Events are queued and sent one by one
from a background thread, as Action Scheduler would; the body is built when the
request is sent, so it shows the order as it is then, not as it was at the event.
A failed delivery is never retried, and the 7th consecutive failure disables the
webhook, after which events are dropped until it is enabled again.
"""
from __future__ import annotations

import hashlib
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from shared.shop.signature import sign, wp_json_encode
from simulators.shop.orders import utc_now

USER_AGENT = "WooCommerce/9.9.0 Hookshot (WordPress/6.8)"
WEBHOOK_ID = 7
DELIVERY_TIMEOUT = 60.0  # WooCommerce: MINUTE_IN_SECONDS
PING_TIMEOUT = 5.0  # WordPress's default request timeout
MAX_FAILURES = 5  # woocommerce_max_webhook_delivery_failures; disabling happens once the count is above it

# Returns the order's current REST resource, or None if there is no such order.
PayloadSource = Callable[[int], dict[str, Any] | None]


class WebhookSender:
    def __init__(
        self,
        source_url: str,
        payload_for: PayloadSource,
        *,
        url: str | None = None,
        secret: str | None = None,
    ) -> None:
        if url and not secret:
            raise ValueError("a webhook needs a secret to sign with")
        self.source = source_url.rstrip("/") + "/"
        self._payload_for = payload_for
        self._url = url
        self._secret = secret or ""
        self._active = True
        self._failure_count = 0
        self._deliveries: list[dict[str, Any]] = []
        self._seq = itertools.count(1)
        # Events from before a reset must not be recorded after it.
        self._generation = 0
        self._pending = 0
        self._idle = threading.Condition()
        self._queue: queue.Queue[tuple[int, str, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="shop-webhooks", daemon=True)
        self._thread.start()

    # -- configuration --------------------------------------------------------------------

    def configure(self, *, enabled: bool | None = None, url: str | None = None, secret: str | None = None) -> None:
        """Enabling does not reset the failure count (as in WooCommerce): one more failure disables it again."""
        with self._idle:
            if url is not None:
                self._url = url
            if secret is not None:
                self._secret = secret
            if enabled is not None:
                self._active = enabled

    def status(self) -> dict[str, Any]:
        with self._idle:
            return {
                "id": WEBHOOK_ID,
                "status": "active" if self._active else "disabled",
                "delivery_url": self._url,
                "failure_count": self._failure_count,
                "pending": self._pending,
            }

    def reset(self) -> None:
        """Forget pending events, records and failures; the webhook is active again."""
        with self._idle:
            self._generation += 1
            # An event being sent right now finishes under the old generation and is not counted.
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._pending = 0
            self._deliveries.clear()
            self._failure_count = 0
            self._active = True
            self._idle.notify_all()

    # -- events ---------------------------------------------------------------------------

    def enqueue(self, topic: str, order_id: int) -> None:
        """An order event happened. Like WooCommerce's should_deliver(), an inactive webhook drops it;
        the simulator records the drop so tests can see which events were lost."""
        with self._idle:
            if not self._url:
                return
            if not self._active:
                self._record(topic, order_id, delivery_id=None, status=None, error="not sent: webhook disabled", body=None)
                return
            self._pending += 1
            self._queue.put((self._generation, topic, order_id))

    def deliveries(self) -> list[dict[str, Any]]:
        with self._idle:
            return [dict(record) for record in self._deliveries]

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued event has been delivered (or failed); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def send_ping(self) -> dict[str, Any]:
        """The ping WooCommerce sends when a webhook is saved: form body, no X-WC headers, no signature.
        Only HTTP 200 counts as success, and the result never touches the failure count."""
        with self._idle:
            url = self._url
        if not url:
            raise ValueError("no webhook url set")
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
        try:
            response = requests.post(
                url, data=f"webhook_id={WEBHOOK_ID}".encode(), headers=headers,
                timeout=PING_TIMEOUT, allow_redirects=False,
            )
        except requests.RequestException as exc:
            return {"ok": False, "status": None, "error": f"Delivery URL cannot be reached: {exc}"}
        ok = response.status_code == 200
        error = None if ok else f"Delivery URL returned response code: {response.status_code}"
        return {"ok": ok, "status": response.status_code, "error": error}

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # -- delivery -------------------------------------------------------------------------

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            generation, topic, order_id = item
            try:
                self._deliver(generation, topic, order_id)
            finally:
                with self._idle:
                    if generation == self._generation:
                        self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, generation: int, topic: str, order_id: int) -> None:
        with self._idle:
            url, secret = self._url, self._secret
        if topic == "order.deleted":
            # build_payload skips the REST call for deletions.
            payload: dict[str, Any] | None = {"id": order_id}
        else:
            payload = self._payload_for(order_id)
        if payload is None or not url:
            return
        body = wp_json_encode(payload)
        delivery_id = _delivery_id()
        resource, _, event = topic.partition(".")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": self.source,
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": sign(body, secret),
            "X-WC-Webhook-ID": str(WEBHOOK_ID),
            "X-WC-Webhook-Delivery-ID": delivery_id,
        }
        status: int | None = None
        error: str | None = None
        try:
            # Redirects are not followed (WooCommerce sets redirection 0); 301/302 still count as success.
            response = requests.post(url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT, allow_redirects=False)
            status = response.status_code
            if not 200 <= status < 303:
                error = f"HTTP {status}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._idle:
            if generation != self._generation:
                return
            self._count(ok=error is None)
            self._record(topic, order_id, delivery_id=delivery_id, status=status, error=error, body=payload)

    def _count(self, *, ok: bool) -> None:
        """WooCommerce's failed_delivery(): counts 1..6, and the failure after that disables the webhook."""
        if ok:
            self._failure_count = 0
        elif self._failure_count > MAX_FAILURES:
            self._active = False
        else:
            self._failure_count += 1

    def _record(
        self, topic: str, order_id: int, *, delivery_id: str | None, status: int | None,
        error: str | None, body: dict[str, Any] | None,
    ) -> None:
        self._deliveries.append({
            "seq": next(self._seq),
            "topic": topic,
            "order_id": order_id,
            "delivery_id": delivery_id,
            "sent": delivery_id is not None,
            "status": status,
            "error": error,
            "date_modified_gmt": (body or {}).get("date_modified_gmt"),
            "at": utc_now().isoformat(),
        })


def _delivery_id() -> str:
    """wp_hash(webhook_id . time()): 32 hex characters, the same for deliveries within one second."""
    return hashlib.md5(f"simulated-salt{WEBHOOK_ID}{int(time.time())}".encode()).hexdigest()
