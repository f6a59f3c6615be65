"""What needs a person, on one screen: `rewix-sync status` and the operator page's health panel.

Each row says how one part stands: the services (database, RabbitMQ, ingest,
the workers as consumers of their queues), the supplier account, the shop and
its webhooks, the last catch-up and verification, and what waits (dead
letters, short lines, paid orders not sent, open orders waiting for a
product map, sent orders the shop gave up afterwards that a person must
handle at the supplier). A row is `ok`, `warning` (worth
knowing, nothing to do yet), `attention` (a person must act) or `off` (turned
off by configuration). The network checks run side by side, each with a short
timeout, so the screen comes back within a few seconds even when everything
is down.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.db import get_engine
from shared.failures.errors import ExternalError
from shared.messaging import topology
from shared.observability.backlog import Backlog, read_backlog
from shared.observability.metrics import CATCHUP, SITE_CHECK, VERIFICATION, WEBHOOK_CHECK
from shared.settings import Settings
from shared.shop_state.checks import OVERDUE_INTERVALS, CheckRecord, read_checks
from shared.shop_state.site_records import WHAT_TO_DO, LearnedSite, Refused, accepted_by_settings, read_learned_site, \
    recent_refusals
from shared.products.waiting import Summary as WaitSummary
from shared.products.waiting import summary as waiting_summary
from shared.shop_state.webhooks import WebhookRecord
from shared.shop_state.webhooks import read_records as read_webhook_records
from services.admin import handled_orders
from services.admin.handled_orders import ToHandle

OK, WARNING, ATTENTION, OFF = "ok", "warning", "attention", "off"
TIMEOUT = 3.0
# Lines short, or paid orders unsent, for longer than this need a person (the alert rule's 15 min).
STUCK_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Row:
    name: str
    state: str
    text: str


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]
    checked_at: datetime

    @property
    def needs_person(self) -> bool:
        return any(row.state == ATTENTION for row in self.rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": not self.needs_person,
            "checked_at": self.checked_at,
            "rows": [{"name": r.name, "state": r.state, "text": r.text} for r in self.rows],
        }


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


# --- the services ------------------------------------------------------------------------------


def _database(settings: Settings) -> list[Row]:
    from shared.db import ping

    ping(settings.database_url)
    return [Row("database", OK, "answers")]


def _broker(settings: Settings) -> list[Row]:
    from shared.messaging.amqp import connect

    connection = connect(settings.amqp_url, connect_timeout=TIMEOUT)
    try:
        rows = [Row("RabbitMQ", OK, "answers")]
        for service, queue in (("supplier_sync", topology.ORDER_LINES), ("status_poller", topology.STATUS_CHANGES)):
            channel = connection.channel()
            try:
                consumers = channel.queue_declare(queue.name, passive=True).method.consumer_count
            except Exception:  # not declared yet: no worker has ever started
                consumers = 0
            if consumers:
                rows.append(Row(service, OK, f"{consumers} consuming {queue.name}"))
            else:
                rows.append(Row(service, ATTENTION, f"nothing consumes {queue.name}: is {service} running?"))
        return rows
    finally:
        connection.close()


def ingest_url(settings: Settings) -> str:
    return settings.ingest_url or f"http://127.0.0.1:{settings.ingest_port}"


def _ingest(settings: Settings) -> list[Row]:
    url = ingest_url(settings).rstrip("/") + "/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            response.read()
        return [Row("ingest", OK, f"ready ({url})")]
    except urllib.error.HTTPError as exc:
        return [Row("ingest", ATTENTION, f"not ready: HTTP {exc.code} ({url})")]
    except OSError as exc:
        return [Row("ingest", ATTENTION, f"unreachable at {url}: {getattr(exc, 'reason', exc)}")]


def _supplier(settings: Settings) -> list[Row]:
    if not (settings.rewix_api_url and settings.rewix_api_key and settings.rewix_api_password):
        return [Row("supplier account", ATTENTION, "REWIX_API_URL / REWIX_API_KEY / REWIX_API_PASSWORD not set")]
    from shared.clients.rewix import RewixClient

    client = RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password"),
                         timeout=TIMEOUT)
    try:
        client.get_growing_order()
        return [Row("supplier account", OK, "accepted")]
    except ExternalError as exc:
        if exc.refuses_credentials:
            return [Row("supplier account", ATTENTION, f"refused (HTTP {exc.status}): nothing is sent until it is accepted")]
        return [Row("supplier account", ATTENTION, f"supplier unavailable: {exc.reason[:150]}")]
    finally:
        client.close()


def _shop(settings: Settings) -> list[Row]:
    if not (settings.wc_url and settings.wc_consumer_key and settings.wc_consumer_secret):
        return [Row("shop", ATTENTION, "WC_URL / WC_CONSUMER_KEY / WC_CONSUMER_SECRET not set")]
    from shared.clients.shop import WooCommerceClient

    client = WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"),
                               timeout=TIMEOUT)
    try:
        client.count_orders_modified_since(datetime.now(timezone.utc) - timedelta(minutes=1))
        return [Row("shop", OK, "REST API answers")]
    except ExternalError as exc:
        if exc.refuses_credentials:
            return [Row("shop", ATTENTION, f"REST keys refused (HTTP {exc.status})")]
        return [Row("shop", ATTENTION, f"shop unavailable: {exc.reason[:150]}")]


# --- what the store records ----------------------------------------------------------------------


def _check_row(label: str, record: CheckRecord | None, interval: float, now: datetime) -> Row:
    if interval <= 0:
        return Row(label, OFF, "turned off")
    if record is None:
        return Row(label, WARNING, "has not run yet (status_poller not started?)")
    every = f"every {ago(record.interval or interval)}"
    if record.overdue(now):
        since = record.last_success_at or record.started_at
        when = f"last success {ago((now - since).total_seconds())} ago" if record.last_success_at else "never succeeded"
        error = f"; last error: {record.last_error[:150]}" if record.last_error else ""
        return Row(label, ATTENTION, f"{when}, over {OVERDUE_INTERVALS} intervals ({every}){error}")
    if record.last_success_at is None:
        return Row(label, WARNING, f"started, no pass finished yet ({every})")
    return Row(label, OK, f"last success {ago((now - record.last_success_at).total_seconds())} ago ({every})")


def _webhooks_row(settings: Settings, record: CheckRecord | None, now: datetime) -> Row:
    interval = getattr(settings, "shop_webhook_check_interval_seconds", 300.0)
    if not getattr(settings, "wc_webhook_delivery_url", None) or interval <= 0:
        return Row("webhooks", OFF, "not checked (WC_WEBHOOK_DELIVERY_URL unset or the check turned off)")
    if record is None or record.last_success_at is None:
        row = _check_row("webhooks", record, interval, now)
        return Row("webhooks", row.state, "not checked yet" if row.state != ATTENTION else row.text)
    missing = record.detail.get("missing") or []
    reactivated = record.detail.get("reactivated") or []
    checked = f"checked {ago((now - record.last_success_at).total_seconds())} ago"
    if missing:
        return Row("webhooks", ATTENTION, f"missing or not active: {', '.join(missing)} ({checked}); "
                                          "run `rewix-sync webhooks install`")
    if record.overdue(now):
        return _check_row("webhooks", record, interval, now)
    if reactivated:
        return Row("webhooks", WARNING, f"re-activated: {', '.join(reactivated)} ({checked}); deliveries had failed")
    return Row("webhooks", OK, f"all four active ({checked})")


def _with_last_reactivation(row: Row, webhooks: dict[int, WebhookRecord]) -> Row:
    """The webhook check's record (shop_webhooks) says when it last had to re-activate one: worth
    knowing even once all are active again (ingest failed long enough for WooCommerce to give up)."""
    done = [r for r in webhooks.values() if r.last_reactivated_at is not None]
    if row.state == OFF or not done:
        return row
    last = max(done, key=lambda r: r.last_reactivated_at)
    when = last.last_reactivated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Row(row.name, row.state, f"{row.text}; last re-activated: {last.topic} at {when} "
                                    f"(found {last.last_found_status})")


def describe_refused(refused: Refused, now: datetime) -> str:
    """`http://staging.example.com/: 12 refused, first 2026-12-06 09:14 UTC, last 3 min ago`."""
    first = refused.first_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = refused.source or "(no X-WC-Webhook-Source header)"
    return f"{name}: {refused.count} refused, first {first}, last {ago((now - refused.last_at).total_seconds())} ago"


def sources_row(settings: Settings, learned: LearnedSite | None, refused: list[Refused], check: CheckRecord | None,
                now: datetime) -> Row:
    """Signed deliveries refused because they came from another site than the shop's need a person
    while the last is younger than a day (shared/shop_state/site_records.py RECENT) and the configuration still
    refuses them; otherwise the row says which sites are accepted."""
    accepted = accepted_by_settings(settings, learned)
    if refused:
        return Row("webhook sources", ATTENTION,
                   "signed deliveries refused, not from the shop's site: "
                   + "; ".join(describe_refused(r, now) for r in refused) + f". {WHAT_TO_DO}")
    text = f"deliveries accepted from {accepted.describe()}"
    if check is not None and check.overdue(now) and check.last_error:
        return Row("webhook sources", WARNING, f"{text}; the shop's home could not be read from its REST index "
                                               f"(GET /wp-json/): {check.last_error[:150]}")
    if learned is None:
        return Row("webhook sources", OK, f"{text}; the shop's home not read yet (status_poller reads it)")
    return Row("webhook sources", OK, text)


def _backlog_rows(backlog: Backlog) -> list[Row]:
    rows = []
    dead = backlog.dead_letters_waiting
    unread = "" if backlog.dead_in_queue is not None else " (the dead-letter queues were not read: RabbitMQ down)"
    rows.append(Row("dead letters", ATTENTION if dead else OK,
                    (f"{dead} waiting: `rewix-sync dlq list`" if dead else "none waiting") + unread))
    if backlog.lines_short:
        stuck = backlog.oldest_short_seconds > STUCK_AFTER.total_seconds()
        rows.append(Row("short lines", ATTENTION if stuck else WARNING,
                        f"{backlog.lines_short} the supplier could not lock in full, oldest for "
                        f"{ago(backlog.oldest_short_seconds)}: `rewix-sync reservations`"))
    else:
        rows.append(Row("short lines", OK, "none"))
    waiting = backlog.orders_waiting_to_be_sent
    if waiting:
        stuck = backlog.oldest_waiting_seconds > STUCK_AFTER.total_seconds()
        rows.append(Row("orders to send", ATTENTION if stuck else WARNING,
                        f"{waiting} paid, not sent to the supplier yet, oldest for {ago(backlog.oldest_waiting_seconds)}"))
    else:
        rows.append(Row("orders to send", OK, "none waiting"))
    if backlog.orders_held:
        rows.append(Row("held orders", WARNING,
                        f"{backlog.orders_held} paid orders locked but held by backfill for the owner: "
                        "`rewix-sync backfill --order ID --send-paid` sends one, completing it in the shop releases it"))
    return rows


def _waiting_for_map_row(waiting: WaitSummary, now: datetime) -> Row:
    """Open orders with lines that matched nothing: only a person can map the product or mark it the shop's own."""
    if not waiting.orders:
        return Row("product map", OK, "no open order waits for a product map")
    oldest = f"#{waiting.oldest_number}" + (
        f" for {ago((now - waiting.oldest_since).total_seconds())}" if waiting.oldest_since else "")
    many = waiting.orders != 1
    return Row("product map", ATTENTION,
               f"{waiting.orders} open order{'s' if many else ''} {'wait' if many else 'waits'} for a product map "
               f"(lines that match no supplier model), the oldest {oldest}: `rewix-sync products unmatched` lists "
               "the products; map them (`products import`, `products match --import`) or mark the shop's own "
               "(`products own`), and the orders go on by themselves")
# Sent orders given up in the shop named on the row; the rest are counted.
TO_HANDLE_NAMED = 5


def _to_handle_rows(to_handle: list[ToHandle], now: datetime) -> list[Row]:
    """A sent order the shop cancelled, refunded or trashed afterwards: a person must act at the
    supplier, whatever its status there, until `orders handled` records it (handled_orders.py)."""
    if not to_handle:
        return []

    def one(order: ToHandle) -> str:
        since = f", since {ago((now - order.since).total_seconds())}" if order.since else ""
        return f"#{order.number} ({order.shop_status} in the shop, supplier order {order.supplier_order}{since})"

    named = ", ".join(one(order) for order in to_handle[:TO_HANDLE_NAMED])
    more = f" and {len(to_handle) - TO_HANDLE_NAMED} more (`rewix-sync orders --attention`)" \
        if len(to_handle) > TO_HANDLE_NAMED else ""
    return [Row("cancelled after sending", ATTENTION,
                f"{len(to_handle)} sent order(s) given up in the shop afterwards: {named}{more}; cancel each "
                "on the supplier's platform (or change it, for a partial refund), then "
                "`rewix-sync orders handled NUMBER`")]


def _records(settings: Settings) -> list[Row]:
    now = datetime.now(timezone.utc)
    backlog = read_backlog(settings.database_url, settings.amqp_url)
    with get_engine(settings.database_url).connect() as connection:
        checks = read_checks(connection)
        webhooks = read_webhook_records(connection)
        learned = read_learned_site(connection)
        refused = recent_refusals(connection, accepted_by_settings(settings, learned), now)
        waiting = waiting_summary(connection)
        to_handle = handled_orders.waiting(connection)
    rows = [
        _with_last_reactivation(_webhooks_row(settings, checks.get(WEBHOOK_CHECK), now), webhooks),
        sources_row(settings, learned, refused, checks.get(SITE_CHECK), now),
        _check_row("catch-up", checks.get(CATCHUP), settings.shop_catchup_interval_seconds, now),
        _check_row("verification", checks.get(VERIFICATION),
                   getattr(settings, "shop_verify_interval_seconds", 900.0), now),
    ]
    return rows + _backlog_rows(backlog) + [_waiting_for_map_row(waiting, now)] + _to_handle_rows(to_handle, now)


def _payments(settings: Settings) -> list[Row]:
    """Supplier orders waiting for payment (imported here: that module builds on this one's rows)."""
    from services.admin.payment_health import payment_rows

    return payment_rows(settings)


# --- all of it ---------------------------------------------------------------------------------------

# (what it is called when it cannot even be asked, how to ask)
PARTS: tuple[tuple[str, Callable[[Settings], list[Row]]], ...] = (
    ("database", _database),
    ("RabbitMQ", _broker),
    ("ingest", _ingest),
    ("supplier account", _supplier),
    ("shop", _shop),
    ("records", _records),
    ("payments", _payments),
)


def gather(settings: Settings) -> Report:
    """Ask every part at once; a part that fails is one `attention` row saying why."""
    with ThreadPoolExecutor(max_workers=len(PARTS), thread_name_prefix="status") as pool:
        futures = [(name, pool.submit(ask, settings)) for name, ask in PARTS]
        rows: list[Row] = []
        for name, future in futures:
            try:
                rows += future.result()
            except Exception as exc:  # unreachable, refused, not migrated: say so on its row
                text = str(exc).strip().splitlines()
                reason = text[0] if text else type(exc).__name__
                rows.append(Row(name, ATTENTION, f"cannot be read: {reason[:200]}"))
    return Report(tuple(rows), datetime.now(timezone.utc))


class HealthPanel:
    """The operator page's health panel: `gather` at most every `ttl` seconds (each look costs
    a call to the supplier and to the shop), one refresh at a time."""

    def __init__(self, settings: Settings, ttl: float = 30.0) -> None:
        import threading

        self.settings = settings
        self.ttl = ttl
        self._lock = threading.Lock()
        self._report: Report | None = None

    def current(self) -> Report:
        with self._lock:
            now = datetime.now(timezone.utc)
            if self._report is None or (now - self._report.checked_at).total_seconds() >= self.ttl:
                self._report = gather(self.settings)
            return self._report
