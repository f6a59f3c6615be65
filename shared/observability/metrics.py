"""Every metric the workers (supplier_sync, status_poller) serve on METRICS_PORT, defined once.

The metrics live in one registry of their own (`REGISTRY`) so a process that
only imports the clients (the `rewix-sync` commands, ingest) records into it
harmlessly and serves nothing. Counters get `_total` appended by
prometheus-client: `rewix_messages_handled` is scraped as
`rewix_messages_handled_total`. Label values come from small fixed sets
(reason classes, endpoint templates, HTTP statuses), never from ids.

Who sets what:
- shared/messaging/consumer.py: messages handled / retried / dead-lettered;
- shared/clients/rewix/client.py: supplier calls, latency, the account refused or not;
- shared/clients/shop/client.py: shop calls and their latency, the REST keys refused or not;
- supplier_sync: units short, supplier orders sent;
- status_poller: polls, status changes applied and their lag, the shop checks
  (catch-up, verification, webhook check, site check) through `SHOP_CHECKS`, webhooks
  re-activated and missing, the supplier orders waiting for payment (its payment watch), the order
  meta written;
- shared/observability/backlog.py: what waits for a person, read at scrape time.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

from shared.failures import retry
from shared.failures.errors import passed_authentication, refuses_credentials
from shared.observability.health import HEALTH
from shared.orders.vocabulary import ORDER_TOPICS

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

# The readiness components a refused supplier account and refused shop keys are reported under.
SUPPLIER_ACCOUNT = "supplier account"
SHOP_ACCOUNT = "shop account"

_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- messages (shared/messaging/consumer.py) ---------------------------------------------------

MESSAGES_HANDLED = Counter(
    "rewix_messages_handled",
    "Messages whose work is done and acknowledged, by work queue.",
    ["queue"], registry=REGISTRY,
)
MESSAGES_RETRIED = Counter(
    "rewix_messages_retried",
    "Messages sent to a wait queue for a later attempt, by work queue and reason class.",
    ["queue", "reason"], registry=REGISTRY,
)
MESSAGES_DEAD_LETTERED = Counter(
    "rewix_messages_dead_lettered",
    "Messages sent to the dead letters, by work queue and reason class (gave_up: retries used up).",
    ["queue", "reason"], registry=REGISTRY,
)

# The reason classes are the kinds of failure the failure policy gives every outcome
# (shared/failures/retry.py, `outcome_of`): counted as they come, never sorted again here.
REASON_CLASSES = retry.KINDS


def record_outcome(queue: str, outcome: retry.Outcome, *, dead: bool = False) -> None:
    """Count one settled message: acked, sent to a wait queue, or dead-lettered (`dead`), under its kind."""
    if isinstance(outcome, retry.Ack):
        MESSAGES_HANDLED.labels(queue=queue).inc()
    elif isinstance(outcome, retry.Paused):
        return  # back to its queue as it was: neither handled nor failed
    elif dead:
        gave_up = isinstance(outcome, retry.RetryLater)  # retried until its schedule ran out
        MESSAGES_DEAD_LETTERED.labels(queue=queue, reason=retry.GAVE_UP if gave_up else outcome.kind).inc()
    else:
        MESSAGES_RETRIED.labels(queue=queue, reason=outcome.kind).inc()


# --- the supplier (shared/clients/rewix/client.py) ------------------------------------------------

SUPPLIER_CALLS = Counter(
    "rewix_supplier_calls",
    "Requests to the supplier's Rewix API, by endpoint and HTTP status (or timeout / connection_error).",
    ["endpoint", "status"], registry=REGISTRY,
)
SUPPLIER_CALL_SECONDS = Histogram(
    "rewix_supplier_call_duration_seconds",
    "Time of one request to the supplier, answer read, by endpoint.",
    ["endpoint"], buckets=_CALL_BUCKETS, registry=REGISTRY,
)
SUPPLIER_ACCOUNT_REFUSED = Gauge(
    "rewix_supplier_account_refused",
    "1 while the supplier answers 401/403 to this account (nothing is taken from the queue), else 0.",
    registry=REGISTRY,
)
UNITS_SHORT = Counter(
    "rewix_units_short",
    "Units asked of the supplier's growing order that it could not lock (set by supplier_sync).",
    registry=REGISTRY,
)
SUPPLIER_ORDERS_SENT = Counter(
    "rewix_supplier_orders_sent",
    "Dropshipping orders created at the supplier (set by supplier_sync).",
    registry=REGISTRY,
)

_NUMBER = re.compile(r"/\d+(?=/|$)")
_CLIENT_KEY = re.compile(r"/clientkey/[^/]+")


def supplier_endpoint(method: str, path: str) -> str:
    """`POST /ghost/orders/sold`, `GET /ghost/clientorders/serverkey/{id}`: a path without its ids."""
    path = path.removeprefix("/restful")
    path = _CLIENT_KEY.sub("/clientkey/{key}", path)
    path = _NUMBER.sub("/{id}", path)
    return f"{method} {path.rstrip('/') or '/'}"


def record_supplier_call(endpoint: str, status: int | str, seconds: float) -> None:
    """Count one supplier call; a 401/403 marks the account refused, an accepted answer clears it."""
    SUPPLIER_CALLS.labels(endpoint=endpoint, status=str(status)).inc()
    SUPPLIER_CALL_SECONDS.labels(endpoint=endpoint).observe(seconds)
    _account_answered(SUPPLIER_ACCOUNT_REFUSED, SUPPLIER_ACCOUNT, "the supplier refuses the account", endpoint, status)


def _account_answered(gauge: Gauge, component: str, refused: str, endpoint: str, status: int | str) -> None:
    """An account's gauge and readiness after one answer: set on a refusal, cleared by an answer that passed
    authentication, left alone by a 5xx, a 429 or no answer at all (they say nothing of the credentials)."""
    if not isinstance(status, int):
        return
    if refuses_credentials(status):
        gauge.set(1)
        HEALTH.set_problem(component, f"{refused} (HTTP {status} on {endpoint})")
    elif passed_authentication(status):
        gauge.set(0)
        HEALTH.clear_problem(component)


# --- the shop (shared/clients/shop/client.py) -------------------------------------------------------

SHOP_CALLS = Counter(
    "rewix_shop_calls",
    "Requests to the shop's WooCommerce REST API, by endpoint and HTTP status (or timeout / connection_error).",
    ["endpoint", "status"], registry=REGISTRY,
)
SHOP_CALL_SECONDS = Histogram(
    "rewix_shop_call_duration_seconds",
    "Time of one request to the shop, by endpoint.",
    ["endpoint"], buckets=_CALL_BUCKETS, registry=REGISTRY,
)


def shop_endpoint(method: str, path: str) -> str:
    """`GET /orders/{id}/notes`: a path under /wp-json/wc/v3 without its ids."""
    return f"{method} {_NUMBER.sub('/{id}', path).rstrip('/') or '/'}"


SHOP_ACCOUNT_REFUSED = Gauge(
    "rewix_shop_account_refused",
    "1 while the shop answers 401/403 to the REST keys (status changes wait in their queue, the shop checks "
    "wait), else 0.",
    registry=REGISTRY,
)


def record_shop_call(endpoint: str, status: int | str, seconds: float, *, authenticated: bool = True) -> None:
    """Count one shop call; with the REST keys (`authenticated`), a 401/403 marks them refused and an
    accepted answer clears it. A public route (the REST index) says nothing of the keys."""
    SHOP_CALLS.labels(endpoint=endpoint, status=str(status)).inc()
    SHOP_CALL_SECONDS.labels(endpoint=endpoint).observe(seconds)
    if authenticated:
        _account_answered(SHOP_ACCOUNT_REFUSED, SHOP_ACCOUNT, "the shop refuses the REST keys", endpoint, status)


# --- status_poller ------------------------------------------------------------------------------

POLLS = Counter(
    "rewix_polls",
    "Supplier orders polled, by result: unchanged, changed, not_found, error.",
    ["result"], registry=REGISTRY,
)
STATUS_CHANGES_APPLIED = Counter(
    "rewix_status_changes_applied",
    "Supplier status changes written to the shop (note, or completed with tracking), by status name.",
    ["status"], registry=REGISTRY,
)
STATUS_CHANGE_LAG_SECONDS = Histogram(
    "rewix_status_change_lag_seconds",
    "Time from the poll that saw a supplier status change to its note in the shop.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
    registry=REGISTRY,
)

def status_change_applied(status: str, observed_at: datetime) -> None:
    """A status change is in the shop: count it, and the time since the poll that saw it."""
    STATUS_CHANGES_APPLIED.labels(status=status).inc()
    if observed_at.tzinfo is None:  # stored and sent as UTC
        observed_at = observed_at.replace(tzinfo=timezone.utc)
    STATUS_CHANGE_LAG_SECONDS.observe(max(0.0, (datetime.now(timezone.utc) - observed_at).total_seconds()))


# The shop checks of status_poller, each run every interval (docs/interfaces.md, "Processes").
CATCHUP = "catchup"
VERIFICATION = "verification"
WEBHOOK_CHECK = "webhook_check"
SITE_CHECK = "site_check"

SHOP_CHECK_RUNS = Counter(
    "rewix_shop_check_runs",
    "Runs of a shop check (catchup, verification, webhook_check, site_check), by result: success or failure.",
    ["check", "result"], registry=REGISTRY,
)
SHOP_CHECK_LAST_SUCCESS = Gauge(
    "rewix_shop_check_last_success_timestamp_seconds",
    "Unix time of a shop check's last successful run (its start-up time until the first one).",
    ["check"], registry=REGISTRY,
)
SHOP_CHECK_INTERVAL = Gauge(
    "rewix_shop_check_interval_seconds",
    "The configured interval of a shop check; absent when the check is turned off.",
    ["check"], registry=REGISTRY,
)
WEBHOOKS_REACTIVATED = Counter(
    "rewix_shop_webhooks_reactivated",
    "Shop webhooks delivering to ingest that the webhook check found disabled or paused and re-activated, by topic.",
    ["topic"], registry=REGISTRY,
)
WEBHOOKS_MISSING = Gauge(
    "rewix_shop_webhooks_missing",
    "Order topics without an active webhook delivering to ingest at the last webhook check.",
    registry=REGISTRY,
)


# --- supplier orders waiting for payment (status_poller's payment watch) ----------------------------

PAYMENT_WAITING = Gauge(
    "rewix_supplier_orders_awaiting_payment",
    "Supplier orders waiting for the dropshipper's payment (Booked) whose customer waits.",
    registry=REGISTRY,
)
PAYMENT_OVERDUE = Gauge(
    "rewix_supplier_orders_payment_overdue",
    "Supplier orders waiting for payment (Booked) longer than SUPPLIER_PAYMENT_ALERT_MINUTES: a person must pay them.",
    registry=REGISTRY,
)
PAYMENT_OLDEST_WAIT = Gauge(
    "rewix_supplier_order_payment_wait_oldest_seconds",
    "How long the supplier order waiting longest for payment has waited (0 when none waits).",
    registry=REGISTRY,
)


def payment_waits(waiting: int, overdue: int, oldest_seconds: float) -> None:
    """What the payment watch found at its last pass (zeros until its first)."""
    PAYMENT_WAITING.set(waiting)
    PAYMENT_OVERDUE.set(overdue)
    PAYMENT_OLDEST_WAIT.set(oldest_seconds)


class ShopCheck:
    """The metrics of one periodic shop check: `enable` at start, then `succeeded` / `failed` per run."""

    def __init__(self, name: str) -> None:
        self.name = name

    def enable(self, interval_seconds: float) -> None:
        """A check that is on: counts as just succeeded, so "3 intervals without success" starts now."""
        SHOP_CHECK_INTERVAL.labels(check=self.name).set(interval_seconds)
        SHOP_CHECK_LAST_SUCCESS.labels(check=self.name).set(time.time())
        for result in ("success", "failure"):
            SHOP_CHECK_RUNS.labels(check=self.name, result=result)

    def succeeded(self) -> None:
        SHOP_CHECK_RUNS.labels(check=self.name, result="success").inc()
        SHOP_CHECK_LAST_SUCCESS.labels(check=self.name).set(time.time())

    def failed(self) -> None:
        SHOP_CHECK_RUNS.labels(check=self.name, result="failure").inc()


SHOP_CHECKS = {name: ShopCheck(name) for name in (CATCHUP, VERIFICATION, WEBHOOK_CHECK, SITE_CHECK)}

# --- the sync status in the shop's order meta (services/status_poller/shop_watch/sync_meta.py) -------------

SHOP_META_OUTCOMES = ("written", "retry", "refused", "gone")
SHOP_META_WRITES = Counter(
    "rewix_shop_meta_writes",
    "Orders whose rewix_sync_status / rewix_supplier_order meta was written, by outcome: written, retry (a "
    "transient failure: tried again), refused (the shop refused the values), gone (the shop has no such order).",
    ["outcome"], registry=REGISTRY,
)


def _initialise() -> None:
    """Create the label sets an alert compares against, so a quiet worker serves zeros, not nothing."""
    SUPPLIER_ACCOUNT_REFUSED.set(0)
    SHOP_ACCOUNT_REFUSED.set(0)
    WEBHOOKS_MISSING.set(0)
    for topic in ORDER_TOPICS:
        WEBHOOKS_REACTIVATED.labels(topic=topic)
    for outcome in SHOP_META_OUTCOMES:
        SHOP_META_WRITES.labels(outcome=outcome)


def start_consuming(queue: str) -> None:
    """Serve zeros for a work queue's message counters from the start, so rate() and increase() see the first one."""
    MESSAGES_HANDLED.labels(queue=queue)
    for reason in REASON_CLASSES:
        MESSAGES_RETRIED.labels(queue=queue, reason=reason)
        MESSAGES_DEAD_LETTERED.labels(queue=queue, reason=reason)


_initialise()
