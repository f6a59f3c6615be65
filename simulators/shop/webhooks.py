"""The shop's webhooks, kept and delivered the way WooCommerce keeps and delivers them.

Each webhook has one topic, a status (`active`, `paused`, `disabled`), a
delivery URL, a secret and a failure count (WooCommerce's WC_Webhook):

- an order event is queued for every *active* webhook of its topic and sent
  one by one from a background thread, as Action Scheduler would; the body is
  built when the request is sent, so it shows the order as it is then; a
  paused or disabled webhook drops the event (recorded here, so tests can see
  what was lost);
- a delivery answered 200..302 is a success and sets the count to 0; anything
  else, or no answer, is a failure: `failed_delivery()` adds one while the
  count is at most 5 and otherwise sets the webhook `disabled`, so the 7th
  failure in a row disables it; nothing is ever retried; re-activating a
  webhook does not reset its count, so one more failure disables it again;
- a delivery carries the headers a real WooCommerce 9.2.5 sends: User-Agent
  `WooCommerce/9.2.5 Hookshot (WordPress/7.0)`, Content-Type
  `application/json`, `Connection: close`, and X-WC-Webhook-Source (the
  site's home URL with a trailing slash), -Topic, -Resource, -Event,
  -Signature, -ID and -Delivery-ID; its body is the order exactly as
  GET /orders/{id} answers it (`refunds` included), or `{"id":N}` for
  order.deleted;
- a ping (form body `webhook_id=N`, Content-Type
  `application/x-www-form-urlencoded` without a charset, unsigned, no
  X-WC-* header) goes out when a webhook is
  created through REST, and again whenever an active webhook is saved with a
  new delivery URL or while its last ping had failed (`pending_delivery`);
  only exactly 200 counts, and a ping never touches the failure count.

Webhook 7 is the one a shop owner made by hand before this system managed its
webhooks: the simulator's --webhook-url/--webhook-secret set it up, it covers
all four order topics, and it is not part of the REST resource; webhooks
created through REST (simulators/shop/webhook_api.py) are WooCommerce's own,
one topic each.
"""
from __future__ import annotations

import hashlib
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from shared.clients.shop.signature import sign
from simulators.shop.orders import WC_VERSION, WP_VERSION, utc_now, wc_dates
from simulators.shop.php_json import wp_json_encode

USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"
WEBHOOK_ID = 7  # the hand-made webhook of the command line
FIRST_REST_ID = 11
DELIVERY_TIMEOUT = 60.0  # WooCommerce: MINUTE_IN_SECONDS
PING_TIMEOUT = 5.0  # WordPress's default request timeout
MAX_FAILURES = 5  # woocommerce_max_webhook_delivery_failures; disabling happens once the count is above it
STATUSES = ("active", "paused", "disabled")
ORDER_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")

# Returns the order's current REST resource, or None if there is no such order.
PayloadSource = Callable[[int], dict[str, Any] | None]


@dataclass
class Webhook:
    id: int
    name: str
    topics: tuple[str, ...]
    status: str
    delivery_url: str
    secret: str
    failure_count: int = 0
    pending_delivery: bool = True  # WC_Webhook_Data_Store::create(): true until a ping succeeds
    created_gmt: Any = field(default_factory=utc_now)
    modified_gmt: Any = field(default_factory=utc_now)
    listed: bool = True  # False for the hand-made one, which REST does not show

    @property
    def topic(self) -> str:
        return self.topics[0]

    def public(self) -> dict[str, Any]:
        """The REST resource (WC_REST_Webhooks_V2_Controller::prepare_item_for_response): never the
        secret, never the failure count."""
        created, created_gmt = wc_dates(self.created_gmt)
        modified, modified_gmt = wc_dates(self.modified_gmt)
        resource, _, event = self.topic.partition(".")
        return {
            "id": self.id, "name": self.name, "status": self.status, "topic": self.topic,
            "resource": resource, "event": event, "hooks": list(TOPIC_HOOKS.get(self.topic, ())),
            "delivery_url": self.delivery_url,
            "date_created": created, "date_created_gmt": created_gmt,
            "date_modified": modified, "date_modified_gmt": modified_gmt,
        }

    def inside(self) -> dict[str, Any]:
        """Everything, for tests: what WordPress keeps in its database."""
        return {**self.public(), "topics": list(self.topics), "secret": self.secret,
                "failure_count": self.failure_count, "pending_delivery": self.pending_delivery}


# WC_Webhook::get_default_topic_hooks() for the order topics (docs/woocommerce.md §2.1), as WooCommerce
# 9.2.5 lists them in a webhook's `hooks`.
TOPIC_HOOKS = {
    "order.created": ("woocommerce_new_order",),
    "order.updated": ("woocommerce_update_order", "woocommerce_order_refunded"),
    "order.deleted": ("wp_trash_post", "woocommerce_trash_order"),
    "order.restored": ("untrashed_post", "woocommerce_untrash_order"),
}


def _post(url: str, **kwargs: Any) -> requests.Response:
    """POST as WordPress's HTTP API does: proxies come from its own settings, never from the environment.

    (Not reading the environment also keeps a delivery thread clear of os.environ while another thread
    changes it, which a test runner does between tests.)
    """
    with requests.Session() as http:
        http.trust_env = False
        return http.post(url, **kwargs)


class WebhookSender:
    def __init__(
        self,
        site_url: str,
        payload_for: PayloadSource,
        *,
        url: str | None = None,
        secret: str | None = None,
    ) -> None:
        if url and not secret:
            raise ValueError("a webhook needs a secret to sign with")
        # X-WC-Webhook-Source: home_url('/'), the shop's home with one trailing slash.
        self.source = site_url.rstrip("/") + "/"
        self._payload_for = payload_for
        self._initial = (url, secret)
        self._hooks: dict[int, Webhook] = {}
        self._deliveries: list[dict[str, Any]] = []
        self._seq = itertools.count(1)
        self._ids = itertools.count(FIRST_REST_ID)
        # Events from before a reset must not be recorded after it.
        self._generation = 0
        self._pending = 0
        self._idle = threading.Condition()
        self._queue: queue.Queue[tuple[int, int, str, int] | None] = queue.Queue()
        self._install_hand_made(url, secret)
        self._thread = threading.Thread(target=self._run, name="shop-webhooks", daemon=True)
        self._thread.start()

    # -- the hand-made webhook (id 7) -----------------------------------------------------

    def configure(self, *, enabled: bool | None = None, url: str | None = None, secret: str | None = None) -> None:
        """The shop owner edits webhook 7 in WP admin (made when first given a URL). Enabling does not
        reset the failure count (as in WooCommerce): one more failure disables it again."""
        with self._idle:
            hook = self._hooks.get(WEBHOOK_ID)
            if hook is None:
                if not url:
                    return
                hook = self._install_hand_made(url, secret or "")
            if url is not None:
                hook.delivery_url = url
            if secret is not None:
                hook.secret = secret
            if enabled is not None:
                hook.status = "active" if enabled else "disabled"

    def status(self) -> dict[str, Any]:
        with self._idle:
            hook = self._hooks.get(WEBHOOK_ID)
            return {
                "id": WEBHOOK_ID,
                "status": hook.status if hook else "disabled",
                "delivery_url": hook.delivery_url if hook else None,
                "failure_count": hook.failure_count if hook else 0,
                "pending": self._pending,
            }

    def send_ping(self) -> dict[str, Any]:
        """Ping webhook 7."""
        if WEBHOOK_ID not in self._hooks:
            raise ValueError("no webhook url set")
        return self.ping(WEBHOOK_ID)

    def _install_hand_made(self, url: str | None, secret: str | None) -> Webhook:
        hook = Webhook(WEBHOOK_ID, "Orders", ORDER_TOPICS, "active", url or "", secret or "",
                       pending_delivery=False, listed=False)
        if url:
            self._hooks[WEBHOOK_ID] = hook
        return hook

    # -- the REST resource's store --------------------------------------------------------

    def create(self, *, name: str, topic: str, delivery_url: str, secret: str) -> dict[str, Any]:
        """A new webhook, always `active` whatever was asked (the REST controller sets 'publish')."""
        with self._idle:
            hook = Webhook(next(self._ids), name, (topic,), "active", delivery_url, secret)
            self._hooks[hook.id] = hook
            return hook.public()

    def listed(self, status: str | None = None) -> list[dict[str, Any]]:
        with self._idle:
            return [h.public() for h in self._hooks.values() if h.listed and status in (None, h.status)]

    def get(self, webhook_id: int) -> dict[str, Any] | None:
        with self._idle:
            hook = self._hooks.get(webhook_id)
            return hook.public() if hook and hook.listed else None

    def update(self, webhook_id: int, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Saves `fields` (name, topic, delivery_url, secret, status); pings when the data store would.
        None when there is no such webhook."""
        with self._idle:
            hook = self._hooks.get(webhook_id)
            if hook is None or not hook.listed:
                return None
            url_changed = "delivery_url" in fields and fields["delivery_url"] != hook.delivery_url
            for name in ("name", "delivery_url", "secret", "status"):
                if fields.get(name):
                    setattr(hook, name, fields[name])
            if fields.get("topic"):
                hook.topics = (fields["topic"],)
            hook.modified_gmt = utc_now()
            must_ping = hook.status == "active" and (url_changed or hook.pending_delivery)
        if must_ping:
            self.ping(webhook_id)
        return self.get(webhook_id)

    def delete(self, webhook_id: int) -> dict[str, Any] | None:
        with self._idle:
            hook = self._hooks.get(webhook_id)
            if hook is None or not hook.listed:
                return None
            del self._hooks[webhook_id]
            return hook.public()

    def inside(self, webhook_id: int | None = None) -> list[dict[str, Any]]:
        """Every webhook (or one) with its secret and failure count: what a test may look at."""
        with self._idle:
            return [h.inside() for h in self._hooks.values() if webhook_id in (None, h.id)]

    def admin_edit(self, webhook_id: int, *, status: str | None = None, delivery_url: str | None = None,
                   secret: str | None = None, failure_count: int | None = None) -> dict[str, Any]:
        """The shop owner edits a webhook in WP admin (or a plugin writes the table): no ping, no checks."""
        with self._idle:
            hook = self._hooks[webhook_id]
            if status is not None:
                if status not in STATUSES:
                    raise ValueError(f"status must be one of {', '.join(STATUSES)}")
                hook.status = status
            if delivery_url is not None:
                hook.delivery_url = delivery_url
            if secret is not None:
                hook.secret = secret
            if failure_count is not None:
                hook.failure_count = int(failure_count)
            hook.modified_gmt = utc_now()
            return hook.inside()

    # -- everything ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget pending events, records, failures and every REST-made webhook; webhook 7 is as started."""
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
            self._hooks.clear()
            self._ids = itertools.count(FIRST_REST_ID)
            self._install_hand_made(*self._initial)
            self._idle.notify_all()

    def enqueue(self, topic: str, order_id: int) -> None:
        """An order event happened. Like WooCommerce's should_deliver(), an inactive webhook drops it;
        the simulator records the drop so tests can see which events were lost."""
        with self._idle:
            for hook in sorted(self._hooks.values(), key=lambda h: h.id):
                if topic not in hook.topics or not hook.delivery_url:
                    continue
                if hook.status != "active":
                    self._record(hook.id, topic, order_id, delivery_id=None, status=None,
                                 error=f"not sent: webhook {hook.status}", body=None)
                    continue
                self._pending += 1
                self._queue.put((self._generation, hook.id, topic, order_id))

    def deliveries(self) -> list[dict[str, Any]]:
        with self._idle:
            return [dict(record) for record in self._deliveries]

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued event has been delivered (or failed); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def ping(self, webhook_id: int) -> dict[str, Any]:
        """WC_Webhook::deliver_ping(): form body, no X-WC headers, no signature. Only HTTP 200 is
        success (which clears pending_delivery); the result never touches the failure count."""
        with self._idle:
            hook = self._hooks[webhook_id]
            url = hook.delivery_url
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded", "Connection": "close"}
        try:
            response = _post(
                url, data=f"webhook_id={webhook_id}".encode(), headers=headers,
                timeout=PING_TIMEOUT, allow_redirects=False,
            )
        except requests.RequestException as exc:
            return {"ok": False, "status": None, "error": f"Delivery URL cannot be reached: {exc}"}
        ok = response.status_code == 200
        if ok:
            with self._idle:
                if webhook_id in self._hooks:
                    self._hooks[webhook_id].pending_delivery = False
        error = None if ok else f"Delivery URL returned response code: {response.status_code}"
        return {"ok": ok, "status": response.status_code, "error": error}

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # -- delivery -------------------------------------------------------------------------

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            generation, webhook_id, topic, order_id = item
            try:
                self._deliver(generation, webhook_id, topic, order_id)
            finally:
                with self._idle:
                    if generation == self._generation:
                        self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, generation: int, webhook_id: int, topic: str, order_id: int) -> None:
        with self._idle:
            hook = self._hooks.get(webhook_id)
            # A queued action runs even if the webhook was paused meanwhile; a deleted one is gone.
            snapshot = replace(hook) if hook else None
        if snapshot is None or not snapshot.delivery_url:
            return
        if topic == "order.deleted":
            # build_payload skips the REST call for deletions.
            payload: dict[str, Any] | None = {"id": order_id}
        else:
            payload = self._payload_for(order_id)
        if payload is None:
            return
        body = wp_json_encode(payload)
        delivery_id = _delivery_id(webhook_id)
        resource, _, event = topic.partition(".")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Connection": "close",  # WordPress's HTTP API opens one connection per request
            "X-WC-Webhook-Source": self.source,
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": sign(body, snapshot.secret),
            "X-WC-Webhook-ID": str(webhook_id),
            "X-WC-Webhook-Delivery-ID": delivery_id,
        }
        status: int | None = None
        error: str | None = None
        try:
            # Redirects are not followed (WooCommerce sets redirection 0); 301/302 still count as success.
            response = _post(snapshot.delivery_url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT,
                                     allow_redirects=False)
            status = response.status_code
            if not 200 <= status < 303:
                error = f"HTTP {status}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._idle:
            if generation != self._generation:
                return
            hook = self._hooks.get(webhook_id)
            ping_again = hook is not None and self._count(hook, ok=error is None)
            self._record(webhook_id, topic, order_id, delivery_id=delivery_id, status=status, error=error,
                         body=payload)
        if ping_again:
            self.ping(webhook_id)

    @staticmethod
    def _count(hook: Webhook, *, ok: bool) -> bool:
        """WooCommerce's log_delivery()/failed_delivery(): counts 1..6, and the failure after that
        disables the webhook. True when the save that follows a success would ping (see the module doc)."""
        if ok:
            hook.failure_count = 0
            return hook.status == "active" and hook.pending_delivery
        if hook.failure_count > MAX_FAILURES:
            hook.status = "disabled"
        else:
            hook.failure_count += 1
        return False

    def _record(
        self, webhook_id: int, topic: str, order_id: int, *, delivery_id: str | None, status: int | None,
        error: str | None, body: dict[str, Any] | None,
    ) -> None:
        self._deliveries.append({
            "seq": next(self._seq),
            "webhook_id": webhook_id,
            "topic": topic,
            "order_id": order_id,
            "delivery_id": delivery_id,
            "sent": delivery_id is not None,
            "status": status,
            "error": error,
            "date_modified_gmt": (body or {}).get("date_modified_gmt"),
            "at": utc_now().isoformat(),
        })


def _delivery_id(webhook_id: int) -> str:
    """wp_hash(webhook_id . time()): 32 hex characters, the same for deliveries within one second."""
    return hashlib.md5(f"simulated-salt{webhook_id}{int(time.time())}".encode()).hexdigest()
